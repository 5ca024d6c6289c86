"""Work-order states, the transition table and the errors of the workflow."""

from __future__ import annotations

import enum

__all__ = [
    "OrderState",
    "TRANSITIONS",
    "ACTIVE_STATES",
    "FINAL_STATES",
    "WorkflowError",
    "InvalidTransition",
    "UnknownRecord",
    "NoCrewAvailable",
    "parse_state",
]


class OrderState(enum.Enum):
    """State of a work order (crew dispatch)."""

    NEW = "new"
    ASSIGNED = "assigned"
    DISPATCHED = "dispatched"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    RESOLVED = "resolved"
    CLOSED = "closed"
    CANCELLED = "cancelled"


S = OrderState

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    S.NEW: frozenset({S.ASSIGNED, S.CANCELLED}),
    S.ASSIGNED: frozenset({S.DISPATCHED, S.NEW, S.CANCELLED}),  # -> new releases the crew
    S.DISPATCHED: frozenset({S.EN_ROUTE, S.CANCELLED}),
    S.EN_ROUTE: frozenset({S.ON_SITE, S.CANCELLED}),
    S.ON_SITE: frozenset({S.RESOLVED}),
    S.RESOLVED: frozenset({S.CLOSED, S.ON_SITE}),  # -> on_site reopens (fault not cleared)
    S.CLOSED: frozenset(),
    S.CANCELLED: frozenset(),
}
"""Allowed next states of each state. ``assigned`` is entered only through ``assign()``."""

ACTIVE_STATES = frozenset({S.ASSIGNED, S.DISPATCHED, S.EN_ROUTE, S.ON_SITE})
"""States in which a crew is busy with the order."""

FINAL_STATES = frozenset({S.CLOSED, S.CANCELLED})


class WorkflowError(Exception):
    """Base class of the errors of the incident and dispatch workflow."""


class InvalidTransition(WorkflowError):
    """A work order cannot go from its current state to the requested one.

    :param order: the order's id.
    :param current: its state.
    :param requested: the state asked for.
    """

    def __init__(self, order: int, current: OrderState, requested: OrderState | str, reason: str = "") -> None:
        self.order = order
        self.current = current
        self.requested = requested
        wanted = requested.value if isinstance(requested, OrderState) else requested
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none, it is final"
        message = reason or f"allowed from {current.value}: {allowed}"
        super().__init__(f"work order {order}: cannot go from {current.value} to {wanted}: {message}")


class UnknownRecord(WorkflowError, LookupError):
    """No incident, work order, crew or outage with that id or name."""


class NoCrewAvailable(WorkflowError):
    """Automatic assignment found no crew that is qualified, on shift, free and located."""


def parse_state(state: OrderState | str) -> OrderState:
    """``OrderState`` from an enum member or its value (``"en_route"``; ``"en route"`` works too).

    :raises ValueError: no such state, naming the valid ones.
    """
    if isinstance(state, OrderState):
        return state
    try:
        return OrderState(str(state).strip().lower().replace(" ", "_").replace("-", "_"))
    except ValueError:
        valid = ", ".join(s.value for s in OrderState)
        raise ValueError(f"unknown work-order state {state!r} (valid: {valid})") from None
