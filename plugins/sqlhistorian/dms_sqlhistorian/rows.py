"""Turning events into table rows: columns of plain Python values per table.

:data:`Rows` is the unit the historian stores, spools to disk (msgpack) and replays:
``{table name: {column name: [values...]}}``, every column of a table the same length,
rows in event order.
"""

from __future__ import annotations

import enum
import json
import logging
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

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

__all__ = ["STORED_TYPES", "Rows", "event_rows", "row_count", "merge", "to_json", "row_dicts"]

log = logging.getLogger("leitstand.sqlhistorian")

Rows = dict[str, dict[str, list[Any]]]
"""Columns per table: ``{table: {column: values}}``."""

MEASUREMENT_COLUMNS = ("point", "value", "quality", "source_time", "receive_time", "source")


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


def _measurements(batch: MeasurementBatch, rows: Rows) -> None:
    size = len(batch)
    if size == 0:
        return
    if len(batch.names) != size:
        # only the kernel fills names; a batch emitted without them cannot be attributed
        log.warning("measurement batch from %r without point names (%d values) not stored", batch.source, size)
        return
    columns = rows.get("measurements")
    if columns is None:
        columns = rows["measurements"] = {name: [] for name in MEASUREMENT_COLUMNS}
    columns["point"].extend(map(str, batch.names))
    columns["value"].extend(np.asarray(batch.values, dtype=np.float64).tolist())
    columns["quality"].extend(np.asarray(batch.quality, dtype=np.int64).tolist())
    columns["source_time"].extend(np.asarray(batch.source_time, dtype=np.float64).tolist())
    columns["receive_time"].extend([float(batch.receive_time)] * size)
    columns["source"].extend([batch.source] * size)


def _add(rows: Rows, table: str, row: dict[str, Any]) -> None:
    columns = rows.get(table)
    if columns is None:
        columns = rows[table] = {name: [] for name in row}
    for name, value in row.items():
        columns[name].append(value)


def _alarm(alarm: Alarm, rows: Rows) -> None:
    _add(rows, "alarms", {
        "alarm_id": alarm.id,
        "time": alarm.time,
        "priority": int(alarm.priority),
        "state": alarm.state.value,
        "category": alarm.category,
        "source": alarm.source,
        "point": None if alarm.point is None else str(alarm.point),
        "message": alarm.message,
    })


def _audit(entry: AuditEntry, rows: Rows) -> None:
    _add(rows, "audit", {"time": entry.time, "actor": entry.actor, "action": entry.action, "subject": entry.subject, "detail": entry.detail})


def _command(command: Command, rows: Rows) -> None:
    _add(rows, "commands", {
        "command_id": command.id,
        "target": command.target.name,
        "value": float(command.value),
        "select_before_operate": command.select_before_operate,
        "originator": command.originator,
        "reason": command.reason,
        "timeout_s": command.timeout_s,
        "created": command.created,
    })


def _command_result(result: CommandResult, rows: Rows) -> None:
    _add(rows, "command_results", {
        "command_id": result.command_id, "status": result.status.value, "reason": result.reason, "step": result.step, "finished": result.finished,
    })


def _float_or_none(value: Any) -> float | None:
    number = float(value)
    return None if math.isnan(number) else number


def _forecasts(result: StudyResult, rows: Rows) -> None:
    """Rows of the ``forecasts`` table from a ``forecast`` study result (see docs/historian.md).

    Reads ``data["forecasts"]`` = ``{point: {"time": [...], "value": [...]}}`` as the forecast
    plugin emits it; ``data["model"]``; the issue time from ``data["issued"]`` if present,
    else the result's ``started``; ``data["feeders"]`` = ``{point: feeder}`` if present.
    """
    data = result.data
    forecasts = data.get("forecasts")
    if not isinstance(forecasts, dict):
        return
    model = str(data.get("model", result.solver))
    issued = float(data.get("issued", result.started))
    feeders = data.get("feeders") or {}
    for point, series in forecasts.items():
        times = np.asarray(series.get("time", ()), dtype=np.float64).tolist()
        values = [_float_or_none(v) for v in series.get("value", ())]
        if len(times) != len(values):
            log.warning("forecast for %r: %d times but %d values; not stored", point, len(times), len(values))
            continue
        size = len(times)
        if not size:
            continue
        columns = rows.get("forecasts")
        if columns is None:
            columns = rows["forecasts"] = {name: [] for name in ("point", "feeder", "issued", "target_time", "value", "model")}
        columns["point"].extend([str(point)] * size)
        columns["feeder"].extend([feeders.get(point)] * size)
        columns["issued"].extend([issued] * size)
        columns["target_time"].extend(times)
        columns["value"].extend(values)
        columns["model"].extend([model] * size)


def _study_result(result: StudyResult, rows: Rows) -> None:
    _add(rows, "study_results", {
        "study": result.study,
        "solver": result.solver,
        "converged": bool(result.converged),
        "message": result.message,
        "started": result.started,
        "finished": result.finished,
        "data": to_json(dict(result.data)),
    })
    if result.study == "forecast":
        _forecasts(result, rows)


def _control_action(action: ControlAction, rows: Rows) -> None:
    command = action.command
    _add(rows, "control_actions", {
        "controller": action.controller,
        "rationale": action.rationale,
        "command_id": command.id,
        "target": command.target.name,
        "value": float(command.value),
        "originator": command.originator,
        "created": command.created,
    })


_CONVERTERS: dict[type, Callable[[Any, Rows], None]] = {
    MeasurementBatch: _measurements,
    Alarm: _alarm,
    AuditEntry: _audit,
    Command: _command,
    CommandResult: _command_result,
    StudyResult: _study_result,
    ControlAction: _control_action,
}


STORED_TYPES: tuple[type, ...] = tuple(_CONVERTERS)
"""Event types the historian stores."""


def event_rows(events: Iterable[Event]) -> Rows:
    """Rows per table for ``events``, in event order; tables without rows are left out.

    :raises TypeError: an event of a type the historian does not know.
    """
    rows: Rows = {}
    for event in events:
        try:
            convert = _CONVERTERS[type(event)]
        except KeyError:
            raise TypeError(f"the SQL historian cannot store {type(event).__name__} events") from None
        convert(event, rows)
    return rows


def row_count(rows: Rows) -> int:
    """Number of rows over all tables."""
    return sum(len(next(iter(columns.values()), ())) for columns in rows.values())


def merge(target: Rows, more: Rows) -> Rows:
    """Append ``more`` to ``target`` (same tables, same columns), keeping order; returns ``target``."""
    for table, columns in more.items():
        existing = target.get(table)
        if existing is None:
            target[table] = {name: list(values) for name, values in columns.items()}
        else:
            for name, values in columns.items():
                existing[name].extend(values)
    return target


def row_dicts(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The rows of one table's columns as dicts (for SQLAlchemy ``executemany``)."""
    names = tuple(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]
