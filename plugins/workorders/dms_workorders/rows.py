"""Database rows to records, and record-or-id arguments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo

import attrs

from .records import Crew, Incident, Note, Outage, Transition, WorkOrder
from .states import OrderState

__all__ = ["ref", "skill_set", "local_clock", "crew", "incident", "order", "transition", "note", "outage"]


def skill_set(value: Iterable[str] | str) -> frozenset[str]:
    """A set of skill names from one name or an iterable of names."""
    return frozenset([value] if isinstance(value, str) else (str(v) for v in value))


def ref(value: Any, kind: type) -> int:
    """The id of a record, or the id itself. :raises TypeError: neither."""
    if isinstance(value, kind):
        return value.id  # type: ignore[attr-defined, no-any-return]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a {kind.__name__} or its id, got {type(value).__name__} {value!r}")
    return value


def local_clock(when: float, zone: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(when, zone).strftime("%H:%M")


def crew(row: Any) -> Crew:
    return Crew(row.name, frozenset(json.loads(row.skills)), row.shift_start, row.shift_end, row.lat, row.lon)


def incident(row: Any) -> Incident:
    m = row._mapping
    return Incident(**{k: m[k] for k in attrs.fields_dict(Incident)})


def order(row: Any) -> WorkOrder:
    return WorkOrder(
        id=row.id, incident_id=row.incident_id, state=OrderState(row.state), description=row.description,
        skills=frozenset(json.loads(row.skills)), created=row.created, created_by=row.created_by, updated=row.updated, crew=row.crew,
    )


def transition(row: Any) -> Transition:
    return Transition(
        id=row.id, order_id=row.order_id, time=row.time, actor=row.actor,
        from_state=None if row.from_state is None else OrderState(row.from_state), to_state=OrderState(row.to_state), crew=row.crew, note=row.note,
    )


def note(row: Any) -> Note:
    return Note(id=row.id, time=row.time, actor=row.actor, text=row.text, incident_id=row.incident_id, order_id=row.order_id)


def outage(row: Any) -> Outage:
    return Outage(
        id=row.id, incident_id=row.incident_id, started=row.started, customers=row.customers, restored=row.restored,
        elements=tuple(json.loads(row.elements)), cause=row.cause,
    )
