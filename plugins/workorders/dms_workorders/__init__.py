"""Leitstand incident and crew-dispatch workflow.

Incidents (from alarms, outages, operators), work orders with a checked state machine,
crews with skills, shifts and positions, nearest-crew assignment, operator notes, outage
records and IEEE 1366 reliability indices — persisted with SQLAlchemy and audited.

In a running kernel: ``dms_workorders.service_for(kernel)``; standalone:
``Workorders.open("sqlite:///workorders.db")``.
"""

from .indices import MOMENTARY_LIMIT_S, reliability_indices
from .plugin import service_for
from .records import Crew, Incident, Indices, Note, Outage, Transition, WorkOrder
from .service import AUTO, AlarmRules, Workorders
from .states import (
    ACTIVE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    NoCrewAvailable,
    OrderState,
    UnknownRecord,
    WorkflowError,
)

__all__ = [
    "Workorders", "AlarmRules", "AUTO", "service_for",
    "Crew", "Incident", "WorkOrder", "Transition", "Note", "Outage", "Indices",
    "OrderState", "TRANSITIONS", "ACTIVE_STATES", "FINAL_STATES",
    "WorkflowError", "InvalidTransition", "UnknownRecord", "NoCrewAvailable",
    "reliability_indices", "MOMENTARY_LIMIT_S",
]
