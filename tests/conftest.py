"""Shared helpers for the kernel's tests (fixtures come from dms_kernel.testing)."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake_distribution(tmp_path, monkeypatch):
    """Create an installed distribution (dist-info + entry point) on sys.path.

    ``fake_distribution(name, module_source, entry_point=None)`` returns the site directory.
    The kernel discovers it through ``importlib.metadata`` exactly like a pip-installed one.
    """
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    created = []

    def make(name: str, source: str, version: str = "1.0", entry: str | None = None) -> Path:
        module = f"{name}_plugin"
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{name}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        (info / "entry_points.txt").write_text(f"[dms.plugins]\n{entry or name} = {module}\n")
        created.append(module)
        return site

    yield make
    for module in created:
        sys.modules.pop(module, None)


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
