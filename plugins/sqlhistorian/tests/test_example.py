"""The minimal example deployment runs with the historian and stores into var/minimal.db."""

from __future__ import annotations

from pathlib import Path

import dms_console.plugin
import dms_replay.plugin
import dms_sqlhistorian.plugin
from dms_kernel.config import load_deployment
from dms_kernel.testing import build_kernel
from dms_sqlhistorian import query

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "minimal" / "deployment.toml"


async def test_minimal_example_stores_in_var_relative_to_the_working_directory(tmp_path, monkeypatch, wait_until):
    monkeypatch.chdir(tmp_path)  # the example's sqlite:///var/minimal.db is relative to the CWD
    kernel = build_kernel(
        dms_replay.plugin, dms_console.plugin, dms_sqlhistorian.plugin, deployment=load_deployment(EXAMPLE)
    )
    database = tmp_path / "var" / "minimal.db"
    async with kernel:
        await wait_until(lambda: database.exists() and query.count("sqlite:///var/minimal.db") >= 30, what="first values")
    assert kernel.bus.stats()["sink:historian"].errors == 0
    assert len(query.counts_by_point(f"sqlite:///{database}")) == 30  # 20 + 10 analogue points
