"""Value types that cross the plugin boundary.

All are frozen attrs classes. Timestamps are ``float`` seconds since the Unix epoch (UTC),
the unit numpy arrays and databases handle without conversion. Units are part of names
where a field is physical (``period_s``, ``timeout_s``).
"""

from __future__ import annotations

import enum
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .quality import GOOD, Quality

__all__ = [
    "Timestamp",
    "PointId",
    "PointKind",
    "PointSpec",
    "Measurement",
    "MeasurementBatch",
    "Command",
    "CommandStatus",
    "CommandResult",
    "ControlAction",
    "AlarmPriority",
    "AlarmState",
    "Alarm",
    "StudyResult",
    "AuditEntry",
    "TopologyChanged",
    "Event",
    "new_id",
]

Timestamp = float
"""Seconds since the Unix epoch, UTC."""


def new_id() -> str:
    """A fresh unique identifier for commands, alarms and audit entries."""
    return uuid.uuid4().hex


def _now() -> float:
    return time.time()


@attrs.frozen(order=True)
class PointId:
    """Name of a SCADA point, unique in a deployment (e.g. ``"S1/F3/I_A"``).

    Plugins address points by :class:`PointId`; the kernel assigns each a point number
    (an index into the point database arrays) which vectorised paths use instead.
    """

    name: str = attrs.field(validator=attrs.validators.min_len(1))

    def __str__(self) -> str:
        return self.name


class PointKind(enum.Enum):
    """What kind of value a point carries (IEC 61850 CDC families)."""

    ANALOG = "analog"  #: measured value (MV/CMV), float
    BINARY = "binary"  #: single point status (SPS), 0/1
    DOUBLE = "double"  #: double point status (DPS): 0 intermediate, 1 off/open, 2 on/closed, 3 bad
    STEP = "step"  #: step position (BSC/ISC), integer tap position
    COUNTER = "counter"  #: integrated totals (BCR)
    SETPOINT = "setpoint"  #: analogue control output (APC)


@attrs.frozen
class PointSpec:
    """Declaration of one point owned by a source.

    :param id: the point's name.
    :param kind: value family.
    :param unit: engineering unit, e.g. ``"kV"``, ``"A"``, ``"MW"``.
    :param deadband: absolute change below which a new value is stored but not reported
        as a change to subscribers (0 reports every change).
    :param controllable: the owning source executes commands on this point.
    :param select_before_operate: commands on this point use select-before-operate.
    :param description: free text for operators.
    """

    id: PointId = attrs.field(converter=lambda v: v if isinstance(v, PointId) else PointId(v))
    kind: PointKind = attrs.field(default=PointKind.ANALOG, converter=PointKind)
    unit: str = ""
    deadband: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    controllable: bool = False
    select_before_operate: bool = False
    description: str = ""


@attrs.frozen
class Measurement:
    """One value of one point.

    :param point: the point.
    :param value: the value (float; binary and double points as 0/1/2/3).
    :param quality: IEC 61850 quality.
    :param source_time: when the field device measured it.
    :param receive_time: when Leitstand received it.
    """

    point: PointId
    value: float
    quality: Quality = GOOD
    source_time: Timestamp = attrs.field(factory=_now)
    receive_time: Timestamp = attrs.field(factory=_now)


@attrs.frozen(eq=False)
class MeasurementBatch:
    """Values for many points at once, in parallel sequences (numpy arrays on hot paths).

    ``points`` holds point numbers assigned by the kernel (see ``SourceContext.point_numbers``);
    ``quality`` holds :meth:`Quality.to_bits` values. Sinks receive batches that contain only
    the points that changed beyond their deadband; ``names`` then gives their
    :class:`PointId` names.

    :param source: name of the source instance that produced the batch.
    :param points: point numbers.
    :param values: values, same length.
    :param quality: packed quality bits, same length.
    :param source_time: source timestamps, same length.
    :param receive_time: when the batch was received.
    :param names: point names for ``points`` (filled by the kernel for sinks).
    """

    source: str
    points: Sequence[int]
    values: Sequence[float]
    quality: Sequence[int]
    source_time: Sequence[float]
    receive_time: Timestamp = attrs.field(factory=_now)
    names: Sequence[str] = ()

    def __len__(self) -> int:
        return len(self.points)

    def measurements(self) -> list[Measurement]:
        """The batch as :class:`Measurement` objects (needs ``names``; slow path for sinks)."""
        return [
            Measurement(
                point=PointId(name),
                value=float(value),
                quality=Quality.from_bits(int(bits)),
                source_time=float(ts),
                receive_time=self.receive_time,
            )
            for name, value, bits, ts in zip(
                self.names, self.values, self.quality, self.source_time, strict=True
            )
        ]


@attrs.frozen
class Command:
    """A control request: breaker open/close, tap raise/lower, set-point.

    :param target: the controllable point.
    :param value: the commanded value: for double points (breakers) 1 = open, 2 = close
        (IEC 61850 DPS); for binary points 0/1; a step delta for tap changers; a set-point.
    :param select_before_operate: run select first, operate after a positive select.
    :param originator: who asked: a user name, or ``"controller:<plugin>"``.
    :param reason: why, for the audit trail.
    :param timeout_s: how long the owning source may take for each step.
    :param id: unique id; results and audit entries refer to it.
    :param created: when it was issued.
    """

    target: PointId = attrs.field(converter=lambda v: v if isinstance(v, PointId) else PointId(v))
    value: float
    select_before_operate: bool = False
    originator: str = "unknown"
    reason: str = ""
    timeout_s: float = attrs.field(default=10.0, validator=attrs.validators.gt(0.0))
    id: str = attrs.field(factory=new_id)
    created: Timestamp = attrs.field(factory=_now)


class CommandStatus(enum.Enum):
    """Outcome of a command."""

    SUCCEEDED = "succeeded"
    DENIED = "denied"  #: the authorisation hook refused it
    VETOED = "vetoed"  #: an interlock refused it
    REJECTED = "rejected"  #: unknown or non-controllable target, or refused by the source
    FAILED = "failed"  #: the source tried and failed
    TIMEOUT = "timeout"  #: the source did not answer within ``timeout_s``


@attrs.frozen
class CommandResult:
    """Result of a command, produced by the owning source or by the command path.

    :param command_id: :attr:`Command.id`.
    :param status: outcome.
    :param reason: human-readable explanation; names the plugin for denials and vetoes.
    :param step: the step of the command path that decided (``authorise``, ``interlock``,
        ``route``, ``select``, ``operate``).
    :param finished: when the result was produced.
    """

    command_id: str
    status: CommandStatus
    reason: str = ""
    step: str = "operate"
    finished: Timestamp = attrs.field(factory=_now)

    @property
    def ok(self) -> bool:
        return self.status is CommandStatus.SUCCEEDED


@attrs.frozen
class ControlAction:
    """A command proposed by a controller, with its rationale.

    :param command: the proposed command.
    :param controller: name of the proposing plugin.
    :param rationale: why, for the operator and the audit trail.
    """

    command: Command
    controller: str
    rationale: str = ""


class AlarmPriority(enum.IntEnum):
    """Alarm priority; lower number is more urgent."""

    CRITICAL = 1
    HIGH = 2
    MEDIUM = 3
    LOW = 4


class AlarmState(enum.Enum):
    """Alarm lifecycle state (ISA-18.2)."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"


@attrs.frozen
class Alarm:
    """An alarm event.

    :param message: what happened, in operator language.
    :param priority: urgency.
    :param source: the plugin or kernel component raising it.
    :param point: the point concerned, if any.
    :param state: lifecycle state this event reports.
    :param category: machine-readable kind (``limit``, ``comms``, ``bus-overflow``, …).
    :param id: unique id.
    :param time: when it was raised.
    """

    message: str
    priority: AlarmPriority = attrs.field(default=AlarmPriority.MEDIUM, converter=AlarmPriority)
    source: str = "kernel"
    point: PointId | None = None
    state: AlarmState = AlarmState.RAISED
    category: str = "general"
    id: str = attrs.field(factory=new_id)
    time: Timestamp = attrs.field(factory=_now)


@attrs.frozen
class StudyResult:
    """Result of a study (power flow, state estimation, short circuit, …).

    :param study: the study's name, e.g. ``"power_flow"``.
    :param solver: name of the plugin that computed it.
    :param converged: whether the calculation succeeded.
    :param data: study-specific results (tables as mappings of column to sequence).
    :param message: explanation, mandatory when not converged.
    :param started: start time.
    :param finished: end time.
    """

    study: str
    solver: str
    converged: bool
    data: Mapping[str, Any] = attrs.field(factory=dict)
    message: str = ""
    started: Timestamp = attrs.field(factory=_now)
    finished: Timestamp = attrs.field(factory=_now)


@attrs.frozen
class AuditEntry:
    """One entry of the audit trail: who did what to what, and the outcome.

    :param actor: user or plugin.
    :param action: e.g. ``command.select``, ``command.operate``, ``plugin.start``.
    :param subject: the object acted on (point name, command id, plugin name).
    :param detail: free text.
    :param time: when.
    """

    actor: str
    action: str
    subject: str
    detail: str = ""
    time: Timestamp = attrs.field(factory=_now)


@attrs.frozen
class TopologyChanged:
    """The energised state of the network changed after switching (topology processor).

    :param energised: node mRIDs newly energised.
    :param deenergised: node mRIDs newly de-energised.
    :param switches: mRIDs of the switches whose state changed.
    :param islands: number of islands after the change.
    :param time: when the change was processed.
    """

    energised: tuple[str, ...] = ()
    deenergised: tuple[str, ...] = ()
    switches: tuple[str, ...] = ()
    islands: int = 0
    time: Timestamp = attrs.field(factory=_now)


Event = MeasurementBatch | StudyResult | Alarm | Command | CommandResult | ControlAction | AuditEntry | TopologyChanged
"""Everything a sink can receive."""
