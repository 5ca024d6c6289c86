"""Protocol ingest benchmark: updates/s from each protocol's simulator server into the point database.

For every protocol plugin, ``bench/protocols/<protocol>.py`` measures in one run (a) the
plugin: the simulator server → the plugin's source in a kernel → point database, and (b) the
protocol library's own client loop against the same server. Target: plugin ≤ 1.3× the raw
loop's cost (raw / plugin updates-per-second ratio ≤ 1.3).

    .venv/bin/python bench/ingest_protocols.py [--seconds 8] [--only iec104,opcua]

Each protocol runs in its own subprocess (the libraries keep process-wide state).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTOCOLS = ("iec104", "dnp3", "iec61850", "opcua", "dlms")

_RUNNER = """
import json, sys, importlib.util
spec = importlib.util.spec_from_file_location("bench_protocol", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print("RESULT " + json.dumps(module.measure(float(sys.argv[2])), default=str))
"""


def measure(protocol: str, seconds: float) -> dict:
    """Run ``bench/protocols/<protocol>.py``'s ``measure`` in a subprocess (outside this folder)."""
    limit = 60 + 6 * seconds
    try:
        process = subprocess.run(
            [sys.executable, "-c", _RUNNER, str(HERE / "protocols" / f"{protocol}.py"), str(seconds)],
            capture_output=True, text=True, timeout=limit, cwd=HERE.parent,
        )
    except subprocess.TimeoutExpired:
        return {"protocol": protocol, "error": f"no result within {limit:g} s (run bench/protocols/{protocol}.py alone)"}
    for line in process.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"protocol": protocol, "error": (process.stderr.strip().splitlines() or ["no result"])[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--only", default=",".join(PROTOCOLS))
    args = parser.parse_args()
    rows = [measure(protocol, args.seconds) for protocol in args.only.split(",")]
    print(f"\nProtocol ingest: simulator server → source plugin → point database ({args.seconds:g} s per protocol)\n")
    print(f"| {'protocol':<9} | {'plugin updates/s':>16} | {'raw client updates/s':>20} | {'raw/plugin':>10} | {'≤ 1.3':>5} |")
    print(f"|{'-' * 11}|{'-' * 18}|{'-' * 22}|{'-' * 12}|{'-' * 7}|")
    for row in rows:
        if "error" in row:
            print(f"| {row['protocol']:<9} | {'error: ' + row['error'][:60]} |")
            continue
        plugin, raw = float(row["plugin_updates_per_s"]), float(row["raw_updates_per_s"])
        if not plugin or not raw:  # a side that received nothing gives no comparison
            print(f"| {row['protocol']:<9} | {plugin:>16,.0f} | {raw:>20,.0f} | {'n/a':>10} | {'n/a':>5} |")
            continue
        ratio = raw / plugin
        print(f"| {row['protocol']:<9} | {plugin:>16,.0f} | {raw:>20,.0f} | {ratio:>9.2f}x | {'yes' if ratio <= 1.3 else 'NO':>5} |")
    notes = [f"- {row['protocol']}: {row['notes']}" for row in rows if row.get("notes")]
    if notes:
        print("\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
