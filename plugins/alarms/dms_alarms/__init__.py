"""Alarm management for Leitstand (ISA-18.2 / IEC 62682).

The ``alarms`` plugin turns the kernel's events into a managed alarm list: acknowledge,
shelve with expiry, suppress; on/off delays, deadband, chattering and flood detection;
state-based suppression from the topology processor; escalation through notifier plugins.
The HMI reaches the list with :func:`manager_for`::

    from dms_alarms import manager_for

    alarms = manager_for(kernel)
    for alarm in alarms.active(priority=AlarmPriority.CRITICAL):
        alarms.acknowledge(alarm.id, "alice")
"""

from .config import AlarmClass, AlarmSettings, EscalationStep
from .manager import AlarmManager
from .plugin import AlarmService, manager_for, service_for
from .records import AlarmError, IsaState, ManagedAlarm, UnknownAlarmError

__all__ = [
    "AlarmManager", "ManagedAlarm", "IsaState", "AlarmError", "UnknownAlarmError",
    "AlarmSettings", "AlarmClass", "EscalationStep", "AlarmService", "manager_for", "service_for",
]
