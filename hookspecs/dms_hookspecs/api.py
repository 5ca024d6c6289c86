"""Base classes for source and sink types, and the kernel-side protocols a plugin may rely on.

A plugin registers *types* (classes) through ``dms_add_source_types`` / ``dms_add_sink_types``;
the kernel instantiates them from the deployment file and owns their lifecycle: it starts
their tasks, feeds sinks through bounded queues, routes commands and shuts them down.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Protocol, runtime_checkable

from .settings import SettingsSchema
from .types import (
    Alarm,
    AuditEntry,
    Command,
    CommandResult,
    CommandStatus,
    ControlAction,
    Event,
    Measurement,
    MeasurementBatch,
    PointId,
    PointSpec,
    StudyResult,
    TopologyChanged,
)

__all__ = [
    "TwinAPI",
    "SimulatorServer",
    "TypeRegistry",
    "SourceContext",
    "Snapshot",
    "KernelAPI",
    "Source",
    "Sink",
    "ALL_EVENT_TYPES",
]

ALL_EVENT_TYPES: tuple[type, ...] = (
    MeasurementBatch,
    StudyResult,
    Alarm,
    Command,
    CommandResult,
    ControlAction,
    AuditEntry,
    TopologyChanged,
)


@runtime_checkable
class TypeRegistry(Protocol):
    """Handed to ``dms_add_source_types`` and ``dms_add_sink_types``."""

    def add(self, type_name: str, factory: Callable[..., Any]) -> None:
        """Register ``factory`` (usually a class) under ``type_name``.

        :raises dms_kernel.errors.PluginError: the name is already taken by another plugin.
        """


class SourceContext(Protocol):
    """What a running source gets from the kernel."""

    log: logging.Logger

    def point_numbers(self, points: Sequence[PointId | str]) -> Sequence[int]:
        """Point numbers (database indices) for the given points, to use in batches."""

    def publish(self, batch: MeasurementBatch) -> None:
        """Hand a batch to the kernel: point database update, then subscribers and sinks."""

    def publish_one(self, point: int, value: float, quality: int = 0, source_time: float | None = None) -> None:
        """Fast path for one value of point number ``point`` (``quality`` as packed bits)."""

    def raise_alarm(self, alarm: Alarm) -> None:
        """Raise an alarm, e.g. on loss of communication."""


class Snapshot(Protocol):
    """A consistent copy of the point database taken at one instant."""

    taken: float
    names: Sequence[str]
    values: Sequence[float]
    quality: Sequence[int]
    source_time: Sequence[float]

    def get(self, point: PointId | str) -> Measurement:
        """The measurement of one point in this snapshot.

        :raises KeyError: unknown point.
        """


class KernelAPI(Protocol):
    """The part of the kernel that plugins may use (passed to ``dms_startup``/``dms_shutdown``)."""

    name: str
    log: logging.Logger

    def settings_for(self, plugin: str) -> Mapping[str, Any]:
        """Validated plugin-level settings from ``[settings.<plugin>]``."""

    def snapshot(self) -> Snapshot:
        """A consistent snapshot of all points."""

    def emit(self, event: Event) -> None:
        """Publish an event (alarm, audit entry, study result, …) to all sinks; callable from any thread."""

    def set_quality(self, points: Sequence[PointId | str], quality: int, source: str = "kernel") -> None:
        """Overwrite the quality bits of points, keeping their values (e.g. bad data → questionable)."""

    async def execute(self, command: Command) -> CommandResult:
        """Send a command through the command path (authorise, interlocks, SBO, owner)."""


class Source(abc.ABC):
    """Base class of source types: a connection to field devices (an RTU, an IED, a simulator).

    The kernel creates one instance per ``[[sources]]`` table of the deployment file,
    calls :meth:`points` once, then runs :meth:`run` as a task until shutdown. Commands for
    points the source owns arrive at :meth:`select` and :meth:`operate`.
    """

    settings_schema: ClassVar[SettingsSchema] = SettingsSchema()
    """Settings accepted in ``[sources.settings]``."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    @abc.abstractmethod
    def points(self) -> Sequence[PointSpec]:
        """The points this source owns; called once before :meth:`run`."""

    @abc.abstractmethod
    async def run(self, context: SourceContext) -> None:
        """Acquire data and publish it through ``context`` until cancelled."""

    async def select(self, command: Command) -> CommandResult:
        """Select step of select-before-operate; the default refuses (no SBO support)."""
        return CommandResult(
            command.id, CommandStatus.REJECTED, f"source {self.name!r} does not support select", step="select"
        )

    async def operate(self, command: Command) -> CommandResult:
        """Execute a command on an owned point; the default refuses (read-only source)."""
        return CommandResult(command.id, CommandStatus.REJECTED, f"source {self.name!r} is read-only")

    async def close(self) -> None:
        """Release connections; called once at shutdown, after :meth:`run` was cancelled."""


class Sink(abc.ABC):
    """Base class of sink types: receives events (historian, console, message bus bridge).

    The kernel creates one instance per ``[[sinks]]`` table, calls :meth:`open`, then feeds
    :meth:`write` from a bounded queue in a task of its own: a slow sink drops events
    (counted, and alarmed) instead of blocking ingest.
    """

    settings_schema: ClassVar[SettingsSchema] = SettingsSchema()
    """Settings accepted in ``[sinks.settings]``."""

    accepts: ClassVar[tuple[type, ...]] = ALL_EVENT_TYPES
    """Event types this sink wants; others are not queued for it."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    async def open(self) -> None:
        """Prepare (connect, create tables); called once before the first :meth:`write`."""

    @abc.abstractmethod
    async def write(self, events: Sequence[Event]) -> None:
        """Handle the events queued since the last call, oldest first."""

    async def close(self) -> None:
        """Flush and release resources; called once at shutdown."""


@runtime_checkable
class TwinAPI(Protocol):
    """The digital twin a simulator server exposes (implemented by the field simulator).

    Values are what a field device would report: engineering value, packed IEC 61850
    quality bits, and the twin's source timestamp (seconds since the epoch).
    """

    def points(self) -> Sequence[PointSpec]:
        """Every point the twin serves (its measurements and controls)."""

    def read(self, point: str) -> tuple[float, int, float]:
        """``(value, quality_bits, source_time)`` of one point. :raises KeyError: unknown point."""

    def subscribe(self, callback: Callable[[Sequence[tuple[str, float, int, float]]], None]) -> Callable[[], None]:
        """Call ``callback([(point, value, quality_bits, source_time), ...])`` on every change;
        returns a function that ends the subscription."""

    async def operate(self, point: str, value: float) -> tuple[bool, str]:
        """Execute a control on the twin (breaker 1 = open / 2 = close, tap position or
        raise/lower step, set-point). Returns ``(accepted, reason)``."""


class SimulatorServer(abc.ABC):
    """Base class of simulator types: a protocol server exposing a twin's points on 127.0.0.1.

    Created by the field simulator with its settings (host, port, point map, protocol
    options) and the twin; :meth:`start` binds the socket, :meth:`stop` closes it.
    """

    settings_schema: ClassVar[SettingsSchema] = SettingsSchema()

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        self.name = name
        self.settings = settings
        self.twin = twin

    @abc.abstractmethod
    async def start(self) -> None:
        """Bind and serve; return once the server accepts connections."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Close every connection and the listening socket."""
