"""Ingest benchmark: point updates per second through source → point database → one subscriber.

Runs a real kernel with a bench source that publishes as fast as it can, and a subscription
on all points that counts the changes it is handed. Compares, in the same run, against a
reference: the obvious pure-Python store (a dict of attrs Measurement objects with a
subscriber callback per change), which is what a point database without numpy looks like.

    .venv/bin/python bench/ingest.py [--points 100000] [--seconds 3]

The "+ sink" rows add a sink behind the bus (changed values copied into a MeasurementBatch
event with names, queued, delivered in batches): the full path a historian sees.

Targets on a 2-core machine: >= 1,000,000 updates/s batched (1,000 per batch) and
>= 100,000 single updates/s.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import numpy as np

from dms_hookspecs import Measurement, MeasurementBatch, PointId, PointSpec, Quality, Sink, Source, hookimpl
from dms_kernel.testing import build_kernel


class BenchSource(Source):
    """Publishes random values for its points in batches (or one by one) for a fixed time."""

    mode = "batch"
    batch_size = 1000
    seconds = 3.0
    points_count = 100_000
    result: tuple[int, float] = (0, 0.0)

    def points(self):
        return [PointSpec(f"B{n}") for n in range(self.points_count)]

    async def run(self, context):
        numbers = np.asarray(context.point_numbers([f"B{n}" for n in range(self.points_count)]))
        rng = np.random.default_rng(1)
        size = self.batch_size
        quality = np.zeros(size, dtype=np.uint16)
        stamps = np.full(size, time.time())
        updates = 0
        started = time.perf_counter()
        deadline = started + self.seconds
        if self.mode == "batch":
            offsets = np.arange(0, self.points_count - size + 1, size)
            values = rng.normal(10.0, 1.0, (64, size))
            index = 0
            while time.perf_counter() < deadline:
                for _ in range(100):  # check the clock every 100 batches
                    start = offsets[index % offsets.size]
                    context.publish(MeasurementBatch(self.name, numbers[start : start + size], values[index % 64], quality, stamps))
                    index += 1
                updates += 100 * size
        else:
            values = rng.normal(10.0, 1.0, 4096).tolist()
            publish_one = context.publish_one
            number_list = numbers.tolist()
            count = len(number_list)
            index = 0
            while time.perf_counter() < deadline:
                for _ in range(1000):
                    publish_one(number_list[index % count], values[index & 4095])
                    index += 1
                updates += 1000
        BenchSource.result = (updates, time.perf_counter() - started)


class CountingSink(Sink):
    """Counts the changed values it receives through the bus."""

    received = 0

    async def write(self, events):
        CountingSink.received += sum(len(event) for event in events)


class bench_plugin:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("bench", BenchSource)

    @staticmethod
    @hookimpl
    def dms_add_sink_types(registry):
        registry.add("count", CountingSink)


async def run_kernel(mode: str, points: int, seconds: float, with_sink: bool = False) -> tuple[float, int]:
    BenchSource.mode, BenchSource.points_count, BenchSource.seconds = mode, points, seconds
    sinks = [{"name": "count", "type": "count", "queue_size": 100_000}] if with_sink else []
    kernel = build_kernel(
        ("bench", bench_plugin),
        deployment={
            "deployment": {"name": "bench"},
            "kernel": {"point_capacity": points},
            "sources": [{"name": "bench", "type": "bench"}],
            "sinks": sinks,
        },
    )
    changes = 0

    def subscriber(changed: np.ndarray) -> None:
        nonlocal changes
        changes += changed.size

    await kernel.prepare()
    kernel.points.subscribe(None, subscriber)
    async with kernel:
        await asyncio.sleep(seconds + 0.5)
    updates, elapsed = BenchSource.result
    return updates / elapsed, changes


def reference(mode: str, points: int, seconds: float) -> float:
    """Pure-Python point store: dict of Measurement objects, callback per change."""
    store: dict[str, Measurement] = {}
    names = [f"B{n}" for n in range(points)]
    changes = 0

    def subscriber(measurement: Measurement) -> None:
        nonlocal changes
        changes += 1

    good = Quality()
    values = np.random.default_rng(1).normal(10.0, 1.0, 4096).tolist()
    updates = 0
    index = 0
    started = time.perf_counter()
    deadline = started + seconds
    batch = 1000 if mode == "batch" else 1
    while time.perf_counter() < deadline:
        for _ in range(1000 // batch or 1):
            now = time.time()
            for k in range(batch):
                name = names[index % points]
                new = Measurement(PointId(name), values[index & 4095], good, now, now)
                old = store.get(name)
                store[name] = new
                if old is None or old.value != new.value or old.quality != new.quality:
                    subscriber(new)
                index += 1
            updates += batch
    return updates / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()

    rows = []
    cases = (
        ("batch", False, "batches of 1,000", 1_000_000),
        ("single", False, "single updates", 100_000),
        ("batch", True, "batches + sink", 1_000_000),
        ("single", True, "single + sink", 100_000),
    )
    references: dict[str, float] = {}
    for mode, with_sink, label, target in cases:
        rate, changes = asyncio.run(run_kernel(mode, args.points, args.seconds, with_sink))
        if mode not in references:
            references[mode] = reference(mode, args.points, args.seconds)
        rows.append((label, rate, references[mode], target, changes))

    print(f"\nIngest: source → point database → one subscriber ({args.points:,} points, {args.seconds:g} s per run)\n")
    print(f"| {'mode':<18} | {'Leitstand updates/s':>20} | {'reference (dict) /s':>20} | {'speed-up':>8} | {'target':>10} | {'met':>4} |")
    print(f"|{'-' * 20}|{'-' * 22}|{'-' * 22}|{'-' * 10}|{'-' * 12}|{'-' * 6}|")
    for label, rate, ref, target, _ in rows:
        print(f"| {label:<18} | {rate:>20,.0f} | {ref:>20,.0f} | {rate / ref:>7.1f}x | {target:>10,} | {'yes' if rate >= target else 'NO':>4} |")


if __name__ == "__main__":
    main()
