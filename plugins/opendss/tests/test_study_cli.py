"""`leitstand study powerflow` on the IEEE 13-node feeder, as an engineer runs it."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import dms_opendss

PUBLISHED = Path(dms_opendss.__file__).parent / "data" / "ieee13_published.csv"


def read(path: Path) -> dict[tuple[str, int], tuple[float, float]]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return {(r["node"], int(r["phase"])): (float(r["vm_pu"]), float(r["va_deg"])) for r in csv.DictReader(lines)}


def test_study_command_writes_csv_matching_published_results(tmp_path):
    output = tmp_path / "ieee13.csv"
    result = subprocess.run(
        [sys.executable, "-m", "dms_kernel", "study", "powerflow", "ieee13", "--solver", "opendss", "--output", str(output)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "powerflow: converged" in result.stdout and "(solver opendss, unbalanced)" in result.stdout
    assert "total losses: 0.1" in result.stdout  # IEEE 13: about 111 kW
    header = output.read_text().splitlines()[0]
    assert header == "node,phase,vm_pu,va_deg"
    ours = read(output)
    published = read(PUBLISHED)
    for key, (vm, _) in published.items():
        assert key in ours, f"node {key} missing"
        assert abs(ours[key][0] - vm) / vm < 0.005, f"{key}: {ours[key][0]} vs published {vm}"
    # phases exist only where the feeder has them
    assert ("611", 1) not in ours and ("611", 3) in ours


def test_study_command_unknown_model_is_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dms_kernel", "study", "powerflow", str(tmp_path / "missing.xml")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "no loaded plugin can load model" in result.stderr
