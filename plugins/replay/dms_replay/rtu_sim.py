"""Simulated RTUs for scale tests: many RTUs, each with many analogue points, at a set change rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import numpy as np

from dms_hookspecs import MeasurementBatch, PointKind, PointSpec, Setting, SettingsSchema, Source, SourceContext

__all__ = ["RtuSimSource"]


class RtuSimSource(Source):
    """``rtus`` simulated RTUs of ``points`` analogue points each; every point changes ``rate``
    times per second on average.

    Point names are ``<prefix>R<r>/P<n>``. Every ``period_s`` each RTU sends one batch (as an
    RTU sends one spontaneous-transmission frame per cycle) with the changes due since its last
    one: the next points of the RTU in turn (round-robin, so each point changes at the same rate),
    each a random-walk step. The number of changes follows the elapsed time, so the offered rate
    holds when a cycle is late (at most one second is caught up). Every value's source time is
    the wall-clock time at which the batch was generated, so a consumer can measure the latency
    ``ingest time - source_time``.

    :ivar generated: updates published so far.
    """

    settings_schema = SettingsSchema(
        (
            Setting("rtus", int, 10, "number of simulated RTUs"),
            Setting("points", int, 100, "analogue points per RTU"),
            Setting("rate", float, 1.0, "changes per point per second (0: no changes after the first full report)"),
            Setting("period_s", float, 0.1, "transmission cycle of each RTU"),
            Setting("prefix", str, "", "point name prefix (default: '<source name>/')"),
            Setting("nominal", float, 100.0, "value the walks start from"),
            Setting("step", float, 0.5, "standard deviation of one step"),
            Setting("unit", str, "A", "engineering unit"),
            Setting("seed", int, None, "random seed for reproducible runs"),
        )
    )

    def __init__(self, name: str, settings) -> None:  # noqa: ANN001 - the validated settings mapping
        super().__init__(name, settings)
        if settings["rtus"] < 1 or settings["points"] < 1:
            raise ValueError(f"rtu_sim {name!r}: rtus and points must be at least 1")
        if settings["rate"] < 0 or settings["period_s"] <= 0:
            raise ValueError(f"rtu_sim {name!r}: rate must not be negative and period_s must be positive")
        self.prefix = settings["prefix"] or f"{name}/"
        self.generated = 0
        self._rng = np.random.default_rng(settings["seed"])

    def names(self) -> list[str]:
        return [f"{self.prefix}R{r}/P{n}" for r in range(self.settings["rtus"]) for n in range(self.settings["points"])]

    def points(self) -> Sequence[PointSpec]:
        unit = self.settings["unit"]
        return [PointSpec(name, PointKind.ANALOG, unit=unit) for name in self.names()]

    async def run(self, context: SourceContext) -> None:
        rtus, size = self.settings["rtus"], self.settings["points"]
        period, rate, step = self.settings["period_s"], self.settings["rate"], self.settings["step"]
        numbers = np.asarray(context.point_numbers(self.names()), dtype=np.int64).reshape(rtus, size)
        values = np.full((rtus, size), self.settings["nominal"], dtype=np.float64)
        quality = np.zeros(size, dtype=np.uint16)
        cursor = np.zeros(rtus, dtype=np.int64)
        due = np.zeros(rtus, dtype=np.float64)
        for r in range(rtus):  # the general interrogation: every point once
            self._send(context, numbers[r], values[r], quality)
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(max(0.0, last + period - loop.time()))
            now = loop.time()
            due += min(now - last, 1.0) * rate * size
            last = now
            for r in range(rtus):
                count = min(int(due[r]), size)
                if count == 0:
                    continue
                due[r] -= count
                index = (cursor[r] + np.arange(count)) % size
                cursor[r] = (cursor[r] + count) % size
                values[r, index] += self._rng.normal(0.0, step, count)
                self._send(context, numbers[r, index], values[r, index], quality[:count])

    def _send(self, context: SourceContext, numbers: np.ndarray, values: np.ndarray, quality: np.ndarray) -> None:
        now = time.time()
        context.publish(MeasurementBatch(self.name, numbers, values, quality, np.full(numbers.size, now), now))
        self.generated += numbers.size
