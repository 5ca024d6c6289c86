"""Console and JSON-lines sinks."""

from __future__ import annotations

import enum
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import attrs

from dms_hookspecs import (
    REQUIRED,
    Alarm,
    AuditEntry,
    Command,
    CommandResult,
    ControlAction,
    Event,
    MeasurementBatch,
    Quality,
    Setting,
    SettingsSchema,
    Sink,
    StudyResult,
)


def event_record(event: Event) -> list[dict[str, Any]]:
    """Plain JSON-able dicts for one event (a batch gives one record per measurement)."""
    if isinstance(event, MeasurementBatch):
        return [
            {
                "event": "measurement",
                "source": event.source,
                "point": str(name),
                "value": float(value),
                "quality": str(Quality.from_bits(int(bits))),
                "source_time": float(stamp),
                "receive_time": event.receive_time,
            }
            for name, value, bits, stamp in zip(event.names, event.values, event.quality, event.source_time, strict=True)
        ]
    record = attrs.asdict(event, value_serializer=_serialise)
    return [{"event": type(event).__name__, **record}]


def _serialise(instance: Any, field: Any, value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, int) else value.name.lower()
    if hasattr(value, "name") and type(value).__name__ == "PointId":
        return value.name
    return value


def describe(event: Event) -> str:
    """One line of operator text for a non-measurement event."""
    if isinstance(event, Command):
        return f"{event.target} := {event.value:g} by {event.originator}" + (f" ({event.reason})" if event.reason else "")
    if isinstance(event, CommandResult):
        return f"{event.status.value} at {event.step}" + (f": {event.reason}" if event.reason else "")
    if isinstance(event, AuditEntry):
        return f"{event.actor} {event.action} {event.subject}" + (f": {event.detail}" if event.detail else "")
    if isinstance(event, Alarm):
        return f"[{event.priority.name}] {event.message}"
    if isinstance(event, StudyResult):
        state = "converged" if event.converged else "NOT converged"
        detail = event.message.removeprefix("converged").strip() if event.converged else event.message
        return f"{event.study} by {event.solver}: {state} {detail}".rstrip()
    if isinstance(event, ControlAction):
        return f"{event.controller} proposes {event.command.target} := {event.command.value:g}: {event.rationale}"
    return repr(event)


class ConsoleSink(Sink):
    """Prints events for an operator watching a terminal; measurements summarised per batch."""

    settings_schema = SettingsSchema(
        (
            Setting("measurements", str, "summary", "how to show measurements", choices=("summary", "all", "none")),
            Setting("max_lines", int, 5, "with measurements='all': values shown per batch"),
        )
    )

    def __init__(self, name: str, settings, stream: TextIO | None = None) -> None:
        super().__init__(name, settings)
        self.stream = stream or sys.stdout

    async def write(self, events: Sequence[Event]) -> None:
        mode = self.settings["measurements"]
        for event in events:
            stamp = time.strftime("%H:%M:%S")
            if isinstance(event, MeasurementBatch):
                if mode == "none" or not len(event):
                    continue
                print(f"{stamp} {event.source}: {len(event)} changed values", file=self.stream)
                if mode == "all":
                    for record in event_record(event)[: self.settings["max_lines"]]:
                        print(f"         {record['point']} = {record['value']:.4g} [{record['quality']}]", file=self.stream)
            else:
                print(f"{stamp} {type(event).__name__}: {describe(event)}", file=self.stream)
        self.stream.flush()


class JsonLinesSink(Sink):
    """Appends every event as one JSON object per line (one line per measurement)."""

    settings_schema = SettingsSchema((Setting("path", str, REQUIRED, "output file, appended to"),))

    async def open(self) -> None:
        path = Path(self.settings["path"])
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")

    async def write(self, events: Sequence[Event]) -> None:
        for event in events:
            for record in event_record(event):
                self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    async def close(self) -> None:
        if getattr(self, "_file", None) is not None:
            self._file.close()
