"""Synchrophasor benchmark: C37.118.2 simulator servers → ``c37118`` source → point database.

    .venv/bin/python bench/pmu.py [--seconds 4] [--streams 20]

Measured (the simulated PMUs run in their own thread and event loop, the kernel with the
``c37118`` source in the main one; everything over loopback TCP in one process):

* **one stream at increasing rates** (50, 120, 240 frames/s, the simulator's limit): frames/s
  that reach the point database per frame rate offered, and the latency;
* **one stream flooded**: the server stalls its clock-driven stream and writes pre-built data
  frames (consecutive timestamps) as fast as the socket takes them — the source's ceiling in
  frames/s for one stream;
* **20 streams at 50 frames/s**: 20 servers, one source reading (and time-aligning) all;
  frames/s in total, complete aligned sets, missing/late frames;
* **latency** from the frame timestamp (SOC + FRACSEC, the slot the PMU sampled) to the point
  database: a point-database subscription takes ``time.time() - source_time`` of every
  reported ``freq_hz`` update (frequency carries noise, so every frame is a reported change).
  It includes the PDC's alignment (a set is released when every live PMU has delivered).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time

import numpy as np

import dms_pmu.plugin
from dms_hookspecs import PointSpec
from dms_kernel.testing import build_kernel
from dms_pmu.server import C37118Server
from dms_pmu.testing import free_port
from dms_simulator import StaticTwin

TWIN_POINTS = [PointSpec("n/U"), PointSpec("n/ang")]


class ServerThread:
    """PMU simulator servers in their own thread and event loop (as a separate device would be)."""

    def __init__(self, count: int, rate: int) -> None:
        self.twin = StaticTwin(TWIN_POINTS, {"n/U": 20.0, "n/ang": -1.0})
        self.servers = [
            C37118Server(f"pmu{i}", {"port": free_port(), "id_code": i + 1, "rate": rate, "seed": i,
                                      "phasors": [{"name": "V1", "magnitude_point": "n/U", "angle_point": "n/ang"}]}, self.twin)
            for i in range(count)
        ]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def call(self, coroutine, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        for server in self.servers:
            self.call(server.start())
        return self

    def __exit__(self, *exc) -> None:
        for server in self.servers:
            self.call(server.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def deployment(self) -> dict:
        pmus = [{"name": s.name, "host": "127.0.0.1", "port": s.settings["port"], "id_code": s.settings["id_code"], "phasors": ["V1"],
                 "magnitude_scale": 0.001, "magnitude_unit": "kV"} for s in self.servers]
        return {"deployment": {"name": "bench-pmu"},
                "sources": [{"name": "pdc", "type": "c37118", "settings": {"pmus": pmus, "wait_window_s": 0.1, "freq_limit_hz": 0.0,
                                                                            "rocof_limit_hz_s": 0.0}}]}


class Latency:
    """Point-database subscription: ``receive - source_time`` of every reported freq_hz update."""

    def __init__(self, kernel, names: list[str]) -> None:
        self.db = kernel.points
        self.samples: list[float] = []
        self.recording = False
        self.subscription = self.db.subscribe(self.db.numbers(names), self._changed)

    def _changed(self, changed: np.ndarray) -> None:
        if self.recording:
            now = time.time()
            self.samples += [now - self.db.read(int(n)).source_time for n in changed]


async def _connected(kernel, names: list[str], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(kernel.points.read(n).quality.is_good for n in names):
        if time.monotonic() > deadline:
            raise RuntimeError("PMU streams not connected")
        await asyncio.sleep(0.02)


async def run_streams(count: int, rate: int, seconds: float) -> dict:
    """``count`` servers at ``rate`` frames/s, one source; frames/s and latency over ``seconds``."""
    with ServerThread(count, rate) as rig:
        async with build_kernel(("pmu", dms_pmu.plugin), deployment=rig.deployment()) as kernel:
            source = kernel.sources["pdc"]
            names = [f"{s.name}/freq_hz" for s in rig.servers]
            await _connected(kernel, names)
            await asyncio.sleep(0.3)
            latency = Latency(kernel, names)
            counters = source.aligner.counters
            frames0 = sum(c.frames for c in counters.values())
            lost0 = sum(c.missing + c.late for c in counters.values())
            sets0, complete0 = source.published_sets, source.complete_sets
            latency.recording = True
            started = time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - started
            latency.recording = False
            latency.subscription.cancel()
            frames = sum(c.frames for c in counters.values()) - frames0
            sets = source.published_sets - sets0
            return {
                "case": f"{count} × {rate} frames/s",
                "offered": count * rate,
                "frames_per_s": frames / elapsed,
                "sets": sets,
                "complete": source.complete_sets - complete0,
                "lost": sum(c.missing + c.late for c in counters.values()) - lost0,
                "latency": latency.samples,
            }


async def run_flood(frames: int) -> dict:
    """One stream, pre-built data frames written back to back: the source's frames/s ceiling."""
    with ServerThread(1, 50) as rig:
        server = rig.servers[0]
        async with build_kernel(("pmu", dms_pmu.plugin), deployment=rig.deployment()) as kernel:
            source = kernel.sources["pdc"]
            await _connected(kernel, ["pmu0/freq_hz"])
            server.stall()
            await asyncio.sleep(0.2)
            start_ts = (int(time.time() * 50) + 50) / 50
            chunk = b"".join(server.frame(start_ts + i / 50) for i in range(frames))
            counter = source.aligner.counters["pmu0"]
            before, sets0 = counter.frames, source.published_sets
            started = time.perf_counter()
            rig.loop.call_soon_threadsafe(server.send_raw, chunk)
            deadline = started + 30
            while counter.frames - before < frames and time.perf_counter() < deadline:
                await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - started
            return {"case": f"1 stream, flood of {frames}", "offered": None, "frames_per_s": (counter.frames - before) / elapsed,
                    "sets": source.published_sets - sets0, "complete": None, "lost": None, "latency": []}


def _ms(samples: list[float], q: float) -> str:
    return f"{np.percentile(samples, q) * 1000:.1f}" if samples else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measuring window per case")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--flood", type=int, default=20000, help="frames of the flood case")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [asyncio.run(run_streams(1, rate, args.seconds)) for rate in (50, 120, 240)]
    rows.append(asyncio.run(run_flood(args.flood)))
    rows.append(asyncio.run(run_streams(args.streams, 50, args.seconds * 2)))
    if args.json:
        print(json.dumps([{k: v for k, v in r.items() if k != "latency"} for r in rows]))
    print(f"\nSynchrophasors: C37.118.2 simulator → c37118 source → point database (loopback, {args.seconds:g} s windows)\n")
    print(f"| {'case':<30} | {'offered/s':>9} | {'frames/s':>9} | {'sets':>6} | {'lost':>4} | {'latency median ms':>17} | {'p99 ms':>7} |")
    print(f"|{'-' * 32}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 6}|{'-' * 19}|{'-' * 9}|")
    for r in rows:
        offered = f"{r['offered']:,}" if r["offered"] else "max"
        lost = "-" if r["lost"] is None else str(r["lost"])
        sets = f"{r['sets']:,}" if r["complete"] is None else f"{r['complete']:,}"
        print(f"| {r['case']:<30} | {offered:>9} | {r['frames_per_s']:>9,.0f} | {sets:>6} | {lost:>4} | "
              f"{_ms(r['latency'], 50):>17} | {_ms(r['latency'], 99):>7} |")
    print("\nsets: complete aligned sets (all streams of the timestamp) in the window; lost: missing + late frames;"
          "\nlatency: frame timestamp (SOC + FRACSEC) → stored in the point database, freq_hz of every stream.")


if __name__ == "__main__":
    main()
