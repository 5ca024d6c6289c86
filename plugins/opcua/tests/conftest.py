"""Fixtures for the OPC UA plugin tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dms_opcua.testing import POINTS, make_twin
from dms_simulator import StaticTwin, write_point_map


@pytest.fixture
def points_file(tmp_path: Path) -> Path:
    path = tmp_path / "opcua_points.csv"
    write_point_map(path, POINTS)
    return path


@pytest.fixture
def twin() -> StaticTwin:
    return make_twin()


@pytest.fixture(autouse=True)
def quiet_asyncua():
    """asyncua logs every request at DEBUG; formatting them slows the tests down a lot."""
    import logging

    logger = logging.getLogger("asyncua")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)
