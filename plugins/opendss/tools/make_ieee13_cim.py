"""Regenerate ``dms_opendss/data/ieee13.xml`` (CIM100) from the IEEE 13-node OpenDSS script.

Runs EPRI's IEEE13Nodeckt.dss (shipped in ``dms_opendss/data/ieee13/``) in dss-python, sets the
three single-phase regulators to the tap positions of the published IEEE solution (steps 10, 8,
11 of 0.625 %: EPRI's "alternate solution script" in the upstream file), solves, and writes the
circuit with OpenDSS's own ``export cim100``. The mRIDs are kept stable across runs through
``ieee13/ieee13_uuids.csv`` (OpenDSS ``uuids`` / ``export uuids``).

Usage: ``python plugins/opendss/tools/make_ieee13_cim.py [OUTPUT.xml]``
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "dms_opendss" / "data"
MASTER = DATA / "ieee13" / "IEEE13Nodeckt.dss"
UUIDS = DATA / "ieee13" / "ieee13_uuids.csv"

#: published regulator taps (per unit ratio of winding 2): +10, +8, +11 steps of 0.625 %
PUBLISHED_TAPS = {"reg1": 1.0625, "reg2": 1.05, "reg3": 1.06875}


def build(output: Path) -> Path:
    from dss import DSS

    dss = DSS.NewContext() if hasattr(DSS, "NewContext") else DSS
    text = dss.Text
    text.Command = "clear"
    text.Command = f'redirect "{MASTER}"'
    if UUIDS.exists():
        text.Command = f'uuids "{UUIDS}"'
    for name, tap in PUBLISHED_TAPS.items():
        text.Command = f"Transformer.{name}.Taps=[1.0 {tap}]"
    text.Command = "Set ControlMode=OFF"
    dss.ActiveCircuit.Solution.Solve()
    if not dss.ActiveCircuit.Solution.Converged:
        raise RuntimeError("IEEE 13-node feeder did not converge in OpenDSS")
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "ieee13.xml"
        text.Command = f'export cim100 file="{target}"'
        if not UUIDS.exists():
            text.Command = f'export uuids "{UUIDS}"'
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(target, output)
    return output


if __name__ == "__main__":
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA / "ieee13.xml"
    print(build(out))
