"""Leitstand outage management from smart meters (AMI).

Last-gasp and power-restore notifications — DLMS/COSEM meters through the ``dlms`` source, an AMI
head-end over MQTT — are collected in a short window, traced up the topology to the most likely
open device (a likelihood score tolerant of lost and late messages), confirmed by polling meters,
and turned into outage incidents with customers in the ``workorders`` plugin; power-restore
messages and polls confirm restoration per consumer, so SAIDI/SAIFI count the real interruption.

In a running kernel: ``dms_oms.manager_for(kernel)``.
"""

from .engine import Change, EngineParams, EventKind, Notification, OutageEngine, Plan, PredictedOutage
from .inference import Hypothesis, InferenceParams, infer
from .network import DEFAULT_DEVICE_TYPES, MeterNetwork, meters_from_model
from .plugin import manager_for
from .service import OutageManager, SnapshotPoller

__all__ = [
    "manager_for", "OutageManager", "SnapshotPoller",
    "MeterNetwork", "meters_from_model", "DEFAULT_DEVICE_TYPES",
    "InferenceParams", "Hypothesis", "infer",
    "OutageEngine", "EngineParams", "EventKind", "Notification", "PredictedOutage", "Change", "Plan",
]
