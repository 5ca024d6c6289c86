"""Replay source: plays recorded measurements from a CSV file at their original pace (or faster).

CSV columns: ``time`` (seconds, any origin), ``point``, ``value`` and optionally ``quality``
(packed IEC 61850 bits, default 0 = good). Rows must be ordered by time. Rows with the
same time are published as one batch.
"""

from __future__ import annotations

import asyncio
import csv
import itertools
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dms_hookspecs import REQUIRED, MeasurementBatch, PointKind, PointSpec, Setting, SettingsSchema, Source, SourceContext


class ReplayError(ValueError):
    """The recording cannot be replayed; names file and line."""


class ReplaySource(Source):
    """Replays a CSV recording; ``speed`` compresses time, ``loop`` repeats it."""

    settings_schema = SettingsSchema(
        (
            Setting("file", str, REQUIRED, "CSV file with columns time, point, value[, quality]"),
            Setting("speed", float, 1.0, "time compression factor (10 = ten times faster)"),
            Setting("loop", bool, False, "start again at the end"),
            Setting("unit", str, "", "engineering unit of all points"),
        )
    )

    def __init__(self, name: str, settings) -> None:
        super().__init__(name, settings)
        if settings["speed"] <= 0:
            raise ValueError("speed must be positive")
        self.rows = self._read(Path(settings["file"]))

    @staticmethod
    def _read(path: Path) -> list[tuple[float, str, float, int]]:
        rows = []
        try:
            handle = path.open(newline="", encoding="utf-8")
        except OSError as exc:
            raise ReplayError(f"cannot open recording {str(path)!r}: {exc.strerror}") from exc
        with handle:
            reader = csv.DictReader(handle)
            missing = {"time", "point", "value"} - set(reader.fieldnames or ())
            if missing:
                raise ReplayError(f"{path}: missing column(s) {sorted(missing)}")
            last = -float("inf")
            for line, row in enumerate(reader, start=2):
                try:
                    entry = (float(row["time"]), row["point"].strip(), float(row["value"]), int(row.get("quality") or 0))
                except (TypeError, ValueError) as exc:
                    raise ReplayError(f"{path}:{line}: {exc}") from exc
                if entry[0] < last:
                    raise ReplayError(f"{path}:{line}: time {entry[0]} goes backwards")
                last = entry[0]
                rows.append(entry)
        return rows

    def points(self) -> Sequence[PointSpec]:
        names = dict.fromkeys(row[1] for row in self.rows)
        return [PointSpec(name, PointKind.ANALOG, unit=self.settings["unit"]) for name in names]

    async def run(self, context: SourceContext) -> None:
        names = list(dict.fromkeys(row[1] for row in self.rows))
        number = dict(zip(names, (int(n) for n in context.point_numbers(names)), strict=True))
        speed = self.settings["speed"]
        while True:
            start_wall = time.monotonic()
            start_time = self.rows[0][0] if self.rows else 0.0
            for stamp, group in itertools.groupby(self.rows, key=lambda row: row[0]):
                delay = (stamp - start_time) / speed - (time.monotonic() - start_wall)
                if delay > 0:
                    await asyncio.sleep(delay)
                group = list(group)
                now = time.time()
                context.publish(
                    MeasurementBatch(
                        self.name,
                        np.array([number[row[1]] for row in group], dtype=np.int64),
                        np.array([row[2] for row in group]),
                        np.array([row[3] for row in group], dtype=np.uint16),
                        np.full(len(group), now),
                    )
                )
            if not self.settings["loop"]:
                return
