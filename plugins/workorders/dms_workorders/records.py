"""Frozen value types of the workflow: crews, incidents, work orders, transitions, notes, outages."""

from __future__ import annotations

import attrs

from .states import OrderState

__all__ = ["Crew", "Incident", "WorkOrder", "Transition", "Note", "Outage", "Indices"]


def _skills(value: object) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    return frozenset(str(skill) for skill in value)  # type: ignore[union-attr]


@attrs.frozen
class Crew:
    """A field crew.

    :param name: unique name (``"crew-north"``).
    :param skills: what it may work on (``{"mv", "cable"}``); an order's skills must be a subset.
    :param shift_start: local start of its shift, ``"HH:MM"``.
    :param shift_end: local end; before ``shift_start`` for a night shift; equal means 24 h.
    :param lat: latitude in degrees (WGS 84), ``None`` if unknown.
    :param lon: longitude in degrees (WGS 84), ``None`` if unknown.
    """

    name: str
    skills: frozenset[str] = attrs.field(default=frozenset(), converter=_skills)
    shift_start: str = "00:00"
    shift_end: str = "00:00"
    lat: float | None = None
    lon: float | None = None


@attrs.frozen
class Incident:
    """Something in the grid that needs work: from an alarm, an outage or an operator.

    :param source: ``"alarm"``, ``"outage"`` or ``"operator"``.
    :param element: mRID (or name) of the equipment concerned, if known.
    :param priority: 1 (critical) … 4 (low), as :class:`dms_hookspecs.AlarmPriority`.
    :param status: ``"open"`` or ``"closed"``.
    :param alarm_id: the alarm it was created from.
    """

    id: int
    title: str
    source: str
    created: float
    created_by: str
    priority: int = 3
    element: str | None = None
    lat: float | None = None
    lon: float | None = None
    status: str = "open"
    alarm_id: str | None = None
    closed: float | None = None


@attrs.frozen
class WorkOrder:
    """A job for one crew on one incident.

    :param skills: skills a crew needs for it.
    :param crew: the assigned crew's name (states assigned … closed).
    :param updated: time of the last transition.
    """

    id: int
    incident_id: int
    state: OrderState
    description: str
    skills: frozenset[str]
    created: float
    created_by: str
    updated: float
    crew: str | None = None


@attrs.frozen
class Transition:
    """One persisted state change of a work order (``from_state`` is ``None`` at creation)."""

    id: int
    order_id: int
    time: float
    actor: str
    from_state: OrderState | None
    to_state: OrderState
    crew: str | None = None
    note: str = ""


@attrs.frozen
class Note:
    """An operator note on an incident or a work order (``order_id`` set for an order note)."""

    id: int
    time: float
    actor: str
    text: str
    incident_id: int | None = None
    order_id: int | None = None


@attrs.frozen
class Outage:
    """An interruption of supply to customers (IEEE 1366).

    :param started: when supply was lost (seconds since the epoch).
    :param restored: when it was restored; ``None`` while ongoing.
    :param customers: customers interrupted.
    :param elements: mRIDs of the energy consumers interrupted, if known.
    """

    id: int
    incident_id: int | None
    started: float
    customers: int
    restored: float | None = None
    elements: tuple[str, ...] = ()
    cause: str = ""

    @property
    def duration_s(self) -> float | None:
        return None if self.restored is None else self.restored - self.started


@attrs.frozen
class Indices:
    """IEEE 1366 reliability indices over ``[start, end)``.

    :param customers_served: total customers served, N_T.
    :param saifi: sustained interruptions per customer served (Σ N_i / N_T).
    :param saidi_min: minutes of sustained interruption per customer served (Σ r_i N_i / N_T).
    :param caidi_min: average restoration time in minutes (SAIDI / SAIFI); NaN without interruptions.
    :param maifi: momentary interruptions per customer served (Σ momentary N_i / N_T).
    :param interruptions: number of sustained interruption records counted.
    :param customers_interrupted: Σ N_i over sustained interruptions.
    :param customer_minutes: Σ r_i N_i (customer minutes interrupted).
    :param momentary_customers: Σ N_i over momentary interruptions.
    :param ongoing: sustained interruptions not yet restored (counted up to ``end``).
    """

    start: float
    end: float
    customers_served: int
    saifi: float
    saidi_min: float
    caidi_min: float
    maifi: float
    interruptions: int
    customers_interrupted: int
    customer_minutes: float
    momentary_customers: int
    ongoing: int
