"""Turning events into table rows: one group of plain-Python rows per table."""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from sqlalchemy import Table

from dms_hookspecs import (
    Alarm,
    AuditEntry,
    Command,
    CommandResult,
    ControlAction,
    Event,
    MeasurementBatch,
    StudyResult,
)

from . import schema

__all__ = ["STORED_TYPES", "group_rows", "to_json"]

log = logging.getLogger("leitstand.sqlhistorian")

Row = dict[str, Any]


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def to_json(data: Any) -> str:
    """JSON text for study data; numpy arrays become lists, unknown objects their ``str``."""
    return json.dumps(data, default=_json_default)


def _measurements(batch: MeasurementBatch) -> list[Row]:
    size = len(batch)
    if size == 0:
        return []
    if len(batch.names) != size:
        # only the kernel fills names; a batch emitted without them cannot be attributed
        log.warning("measurement batch from %r without point names (%d values) not stored", batch.source, size)
        return []
    names = [str(name) for name in batch.names]
    values = np.asarray(batch.values, dtype=np.float64).tolist()
    quality = np.asarray(batch.quality, dtype=np.int64).tolist()
    source_time = np.asarray(batch.source_time, dtype=np.float64).tolist()
    receive_time = float(batch.receive_time)
    source = batch.source
    return [
        {"point": n, "value": v, "quality": q, "source_time": t, "receive_time": receive_time, "source": source}
        for n, v, q, t in zip(names, values, quality, source_time, strict=True)
    ]


def _alarm(alarm: Alarm) -> list[Row]:
    return [
        {
            "alarm_id": alarm.id,
            "time": alarm.time,
            "priority": int(alarm.priority),
            "state": alarm.state.value,
            "category": alarm.category,
            "source": alarm.source,
            "point": None if alarm.point is None else str(alarm.point),
            "message": alarm.message,
        }
    ]


def _audit(entry: AuditEntry) -> list[Row]:
    return [{"time": entry.time, "actor": entry.actor, "action": entry.action, "subject": entry.subject, "detail": entry.detail}]


def _command(command: Command) -> list[Row]:
    return [
        {
            "command_id": command.id,
            "target": command.target.name,
            "value": float(command.value),
            "select_before_operate": command.select_before_operate,
            "originator": command.originator,
            "reason": command.reason,
            "timeout_s": command.timeout_s,
            "created": command.created,
        }
    ]


def _command_result(result: CommandResult) -> list[Row]:
    return [
        {"command_id": result.command_id, "status": result.status.value, "reason": result.reason, "step": result.step, "finished": result.finished}
    ]


def _study_result(result: StudyResult) -> list[Row]:
    return [
        {
            "study": result.study,
            "solver": result.solver,
            "converged": bool(result.converged),
            "message": result.message,
            "started": result.started,
            "finished": result.finished,
            "data": to_json(dict(result.data)),
        }
    ]


def _control_action(action: ControlAction) -> list[Row]:
    command = action.command
    return [
        {
            "controller": action.controller,
            "rationale": action.rationale,
            "command_id": command.id,
            "target": command.target.name,
            "value": float(command.value),
            "originator": command.originator,
            "created": command.created,
        }
    ]


_CONVERTERS: dict[type, tuple[Table, Callable[[Any], list[Row]]]] = {
    MeasurementBatch: (schema.measurements, _measurements),
    Alarm: (schema.alarms, _alarm),
    AuditEntry: (schema.audit, _audit),
    Command: (schema.commands, _command),
    CommandResult: (schema.command_results, _command_result),
    StudyResult: (schema.study_results, _study_result),
    ControlAction: (schema.control_actions, _control_action),
}


STORED_TYPES: tuple[type, ...] = tuple(_CONVERTERS)
"""Event types the historian stores."""


def group_rows(events: Iterable[Event]) -> dict[Table, list[Row]]:
    """Rows per table for ``events``, in event order; tables without rows are left out.

    :raises TypeError: an event of a type the historian does not know.
    """
    grouped: dict[Table, list[Row]] = {}
    for event in events:
        try:
            table, convert = _CONVERTERS[type(event)]
        except KeyError:
            raise TypeError(f"the SQL historian cannot store {type(event).__name__} events") from None
        rows = convert(event)
        if rows:
            grouped.setdefault(table, []).extend(rows)
    return grouped
