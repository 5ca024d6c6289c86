"""Every example deployment validates, and the grid example runs its cyclic power flow."""

from __future__ import annotations

import pytest

from subprocess_helpers import REPO, run_leitstand

EXAMPLES = sorted(p for p in (REPO / "examples").glob("*/deployment.toml") if p.parent.name != "thirdparty-plugin")


@pytest.mark.parametrize("deployment", EXAMPLES, ids=lambda p: p.parent.name)
def test_example_deployment_checks(deployment):
    result = run_leitstand(["check", str(deployment.relative_to(REPO))])
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


def test_grid_example_runs_power_flow_on_replayed_measurements(tmp_path):
    result = run_leitstand(["run", str(REPO / "examples/grid/deployment.toml"), "--duration", "3"], timeout=120)
    assert result.returncode == 0, result.stderr
    assert "job 'power_flow' primed" in result.stderr
    assert "14 measurements bound to points" in result.stderr
    assert "StudyResult: power_flow by pandapower: converged" in result.stdout
    assert "overran" not in result.stdout + result.stderr  # conversion and numba compilation happened at startup


def test_demo_reads_every_protocol_from_the_simulator():
    """The README's demo: the CIGRE MV twin behind IEC 104, IEC 61850, DNP3, OPC UA and DLMS."""
    result = run_leitstand(["run", str(REPO / "examples/cigre_mv/deployment.toml"), "--duration", "8"], timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    for source in ("substation-rtu", "bay-ied", "feeder-rtu", "pv-park", "meter-r11", "meter-r12", "meter-ci7"):
        assert f"{source}: " in result.stdout, f"no values from {source}"
    assert "StudyResult: power_flow by pandapower: converged" in result.stdout
    assert "25 measurements bound to points" in result.stderr
    assert "Traceback" not in result.stderr
