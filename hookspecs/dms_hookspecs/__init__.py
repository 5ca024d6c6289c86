"""Leitstand plugin API.

A plugin is a module with hook implementations, published under the entry-point group
``dms.plugins``::

    # pyproject.toml
    [project.entry-points."dms.plugins"]
    my_rtu = "my_rtu.plugin"

    # my_rtu/plugin.py
    from dms_hookspecs import Source, hookimpl

    class MyRtu(Source):
        ...

    @hookimpl
    def dms_add_source_types(registry):
        registry.add("my_rtu", MyRtu)

Hook groups: :mod:`~dms_hookspecs.lifecycle`, :mod:`~dms_hookspecs.models`, :mod:`~dms_hookspecs.sources`,
:mod:`~dms_hookspecs.solvers`, :mod:`~dms_hookspecs.controllers`, :mod:`~dms_hookspecs.sinks`,
:mod:`~dms_hookspecs.notifiers`, :mod:`~dms_hookspecs.buses`.
"""

from . import buses, controllers, lifecycle, models, notifiers, sinks, solvers, sources
from .api import ALL_EVENT_TYPES, KernelAPI, SimulatorServer, Sink, Snapshot, Source, SourceContext, TwinAPI, TypeRegistry
from .markers import PROJECT, hookimpl, hookspec
from .notifiers import Notification, Notifier
from .quality import GOOD, INVALID, Detail, Quality, QualitySource, Validity
from .settings import REQUIRED, Setting, SettingsSchema
from .types import (
    Alarm,
    AlarmPriority,
    AlarmState,
    AuditEntry,
    Command,
    CommandResult,
    CommandStatus,
    ControlAction,
    Event,
    Measurement,
    MeasurementBatch,
    PointId,
    PointKind,
    PointSpec,
    StudyResult,
    Timestamp,
    TopologyChanged,
    new_id,
)

HOOK_MODULES = (lifecycle, models, sources, solvers, controllers, sinks, notifiers, buses)
"""Modules holding the hook specifications, in lifecycle order."""

__version__ = "0.1.0"

__all__ = [
    "PROJECT", "hookimpl", "hookspec", "HOOK_MODULES",
    "Source", "Sink", "Notifier", "Notification", "SourceContext", "SimulatorServer", "TwinAPI", "Snapshot", "KernelAPI", "TypeRegistry", "ALL_EVENT_TYPES",
    "Setting", "SettingsSchema", "REQUIRED",
    "Quality", "Validity", "Detail", "QualitySource", "GOOD", "INVALID",
    "Timestamp", "PointId", "PointKind", "PointSpec", "Measurement", "MeasurementBatch",
    "Command", "CommandStatus", "CommandResult", "ControlAction",
    "Alarm", "AlarmPriority", "AlarmState", "StudyResult", "AuditEntry", "TopologyChanged", "Event", "new_id",
]
