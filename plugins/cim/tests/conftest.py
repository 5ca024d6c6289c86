"""Fixtures of the CIM plugin tests."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cim_models import build_full_model  # noqa: E402


@pytest.fixture
def full_model():
    return build_full_model()
