"""Wire schema v1: subjects and msgpack messages (documented in docs/scale-out.md).

Subjects (``<dep>`` is the deployment token, ``<source>`` a source name, both sanitised to
``[A-Za-z0-9_-]``)::

    leitstand.v1.<dep>.meas.<source>     IngestBatch: raw values from the front-end running <source>
    leitstand.v1.<dep>.events.<Type>     one event for sinks (Alarm, StudyResult, AuditEntry, ...)
    leitstand.v1.<dep>.cmd.<source>      CommandRequest → CommandResult (NATS request/reply, not stored)

Every message is a msgpack map with ``"v": 1``. Events carry their attrs fields explicitly:
attrs values, enums, :class:`PointId` and numpy arrays are msgpack extension types
(:data:`EXT_ATTRS`, :data:`EXT_ENUM`, :data:`EXT_POINT_ID`, :data:`EXT_NDARRAY`), and only the
classes in :data:`EVENT_TYPES` / :data:`VALUE_TYPES` and :data:`ENUM_TYPES` decode — no pickle,
an unknown name is a :class:`SchemaError`.
"""

from __future__ import annotations

import enum
import re
import zlib
from collections.abc import Sequence
from typing import Any

import attrs
import msgpack
import numpy as np

from dms_hookspecs import (
    ALL_EVENT_TYPES,
    AlarmPriority,
    AlarmState,
    Command,
    CommandStatus,
    PointId,
    PointKind,
    PointSpec,
)
from dms_hookspecs.quality import Detail, Quality, QualitySource, Validity

__all__ = [
    "SCHEMA_VERSION",
    "SchemaError",
    "Subjects",
    "IngestBatch",
    "token",
    "points_digest",
    "encode_event",
    "decode_event",
    "encode_ingest",
    "decode_ingest",
    "encode_command_request",
    "decode_command_request",
]

SCHEMA_VERSION = 1

EXT_POINT_ID = 1
EXT_NDARRAY = 2
EXT_ATTRS = 3
EXT_ENUM = 4

EVENT_TYPES: dict[str, type] = {cls.__name__: cls for cls in ALL_EVENT_TYPES}
VALUE_TYPES: dict[str, type] = {**EVENT_TYPES, "PointSpec": PointSpec, "Quality": Quality}
ENUM_TYPES: dict[str, type[enum.Enum]] = {
    cls.__name__: cls for cls in (AlarmPriority, AlarmState, CommandStatus, PointKind, Validity, QualitySource, Detail)
}

_TOKEN = re.compile(r"[^A-Za-z0-9_-]")


class SchemaError(ValueError):
    """A message that does not follow the wire schema (version, type, fields)."""


def token(name: str) -> str:
    """``name`` as one subject token (and consumer/stream name part): ``[A-Za-z0-9_-]`` only."""
    cleaned = _TOKEN.sub("_", name)
    if not cleaned:
        raise ValueError(f"cannot make a subject token of {name!r}")
    return cleaned


@attrs.frozen
class Subjects:
    """Subject and stream names of one deployment.

    :param deployment: the deployment token.
    :param stream_prefix: prefix of stream and bucket names (unique per deployment on a server).
    """

    deployment: str
    stream_prefix: str

    @property
    def root(self) -> str:
        return f"leitstand.v{SCHEMA_VERSION}.{self.deployment}"

    def meas(self, source: str) -> str:
        return f"{self.root}.meas.{token(source)}"

    def event(self, event_type: str) -> str:
        return f"{self.root}.events.{event_type}"

    def cmd(self, source: str) -> str:
        return f"{self.root}.cmd.{token(source)}"

    @property
    def meas_stream(self) -> str:
        return f"{self.stream_prefix}_MEAS"

    @property
    def events_stream(self) -> str:
        return f"{self.stream_prefix}_EVENTS"

    @property
    def lease_bucket(self) -> str:
        return f"{self.stream_prefix}_LEASES"


def points_digest(names: Sequence[str]) -> int:
    """CRC-32 of a source's point names in declaration order: front-end and core must agree."""
    return zlib.crc32("\n".join(names).encode())


# -- events ------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, PointId):
        return msgpack.ExtType(EXT_POINT_ID, value.name.encode())
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            return value.tolist()
        array = np.ascontiguousarray(value)
        return msgpack.ExtType(EXT_NDARRAY, msgpack.packb((array.dtype.str, array.shape, array.tobytes())))
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, enum.Enum):
        name = type(value).__name__
        if ENUM_TYPES.get(name) is not type(value):
            raise SchemaError(f"enum {name} is not part of the wire schema")
        return msgpack.ExtType(EXT_ENUM, msgpack.packb((name, value.value)))
    if attrs.has(type(value)):
        name = type(value).__name__
        if VALUE_TYPES.get(name) is not type(value):
            raise SchemaError(f"{name} is not part of the wire schema")
        fields = {field.name: getattr(value, field.name) for field in attrs.fields(type(value))}
        return msgpack.ExtType(EXT_ATTRS, _pack((name, fields)))
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise SchemaError(f"cannot encode {type(value).__name__} (not part of the wire schema)")


def _pack(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_POINT_ID:
        return PointId(data.decode())
    if code == EXT_NDARRAY:
        dtype, shape, raw = msgpack.unpackb(data, use_list=False)
        return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()
    if code == EXT_ENUM:
        name, value = msgpack.unpackb(data, use_list=False)
        if name not in ENUM_TYPES:
            raise SchemaError(f"unknown enum {name!r}")
        return ENUM_TYPES[name](value)
    if code == EXT_ATTRS:
        name, fields = _unpack(data)
        cls = VALUE_TYPES.get(name)
        if cls is None:
            raise SchemaError(f"unknown type {name!r}")
        try:
            return cls(**fields)
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"bad {name}: {exc}") from exc
    raise SchemaError(f"unknown msgpack extension {code}")


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, use_list=False, raw=False, strict_map_key=False)


def encode_event(event: Any) -> bytes:
    """One event as ``{"v": 1, "event": <attrs ext>}``.

    :raises SchemaError: not an event type, or a value the schema does not cover.
    """
    if type(event).__name__ not in EVENT_TYPES:
        raise SchemaError(f"{type(event).__name__} is not an event type")
    return _pack({"v": SCHEMA_VERSION, "event": event})


def decode_event(data: bytes) -> Any:
    """The event in a message from ``events.<Type>``.

    :raises SchemaError: wrong version, unknown type, malformed message.
    """
    message = _checked(data)
    event = message.get("event")
    if type(event).__name__ not in EVENT_TYPES:
        raise SchemaError(f"message carries {type(event).__name__}, not an event")
    return event


def _checked(data: bytes) -> dict[str, Any]:
    try:
        message = _unpack(data)
    except SchemaError:
        raise
    except Exception as exc:  # noqa: BLE001 - any msgpack failure is a schema error
        raise SchemaError(f"not a msgpack message: {type(exc).__name__}: {exc}") from exc
    if not isinstance(message, dict):
        raise SchemaError("message is not a map")
    if message.get("v") != SCHEMA_VERSION:
        raise SchemaError(f"schema version {message.get('v')!r} (this node speaks {SCHEMA_VERSION})")
    return message


# -- raw batches from front-ends ------------------------------------------------------------


@attrs.frozen(eq=False)
class IngestBatch:
    """A source's batch as a front-end publishes it on ``meas.<source>``.

    :param source: source name.
    :param offsets: index of each value's point in the source's ``points()`` list (int32).
    :param values: float64 values.
    :param quality: packed quality bits (uint16).
    :param source_time: float64 seconds.
    :param receive_time: when the front-end received the batch.
    :param digest: :func:`points_digest` of the source's point names.
    :param group: the front-end group.
    :param term: lease term of the publishing front-end (fencing: the core drops lower terms).
    :param instance: the publishing front-end instance.
    :param seq: per-instance sequence number (with ``instance``: the batch's unique key).
    """

    source: str
    offsets: np.ndarray
    values: np.ndarray
    quality: np.ndarray
    source_time: np.ndarray
    receive_time: float
    digest: int
    group: str
    term: int
    instance: str
    seq: int

    @property
    def key(self) -> str:
        return f"{self.instance}:{self.seq}"


def encode_ingest(batch: IngestBatch) -> bytes:
    return msgpack.packb(
        {
            "v": SCHEMA_VERSION,
            "source": batch.source,
            "group": batch.group,
            "term": batch.term,
            "instance": batch.instance,
            "seq": batch.seq,
            "digest": batch.digest,
            "receive_time": float(batch.receive_time),
            "offsets": np.ascontiguousarray(batch.offsets, dtype="<i4").tobytes(),
            "values": np.ascontiguousarray(batch.values, dtype="<f8").tobytes(),
            "quality": np.ascontiguousarray(batch.quality, dtype="<u2").tobytes(),
            "source_time": np.ascontiguousarray(batch.source_time, dtype="<f8").tobytes(),
        },
        use_bin_type=True,
    )


def decode_ingest(data: bytes) -> IngestBatch:
    """:raises SchemaError: wrong version, missing field, arrays of different lengths."""
    message = _checked(data)
    try:
        offsets = np.frombuffer(message["offsets"], dtype="<i4").astype(np.int64)
        values = np.frombuffer(message["values"], dtype="<f8")
        quality = np.frombuffer(message["quality"], dtype="<u2")
        source_time = np.frombuffer(message["source_time"], dtype="<f8")
        batch = IngestBatch(
            str(message["source"]), offsets, values, quality, source_time, float(message["receive_time"]),
            int(message["digest"]), str(message["group"]), int(message["term"]), str(message["instance"]), int(message["seq"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"malformed ingest batch: {type(exc).__name__}: {exc}") from exc
    if not offsets.size == values.size == quality.size == source_time.size:
        raise SchemaError("ingest batch arrays differ in length")
    return batch


# -- commands ------------------------------------------------------------------------------


def encode_command_request(step: str, command: Command) -> bytes:
    return _pack({"v": SCHEMA_VERSION, "step": step, "command": command})


def decode_command_request(data: bytes) -> tuple[str, Command]:
    message = _checked(data)
    step, command = message.get("step"), message.get("command")
    if step not in ("select", "operate") or not isinstance(command, Command):
        raise SchemaError(f"malformed command request (step {step!r}, command {type(command).__name__})")
    return step, command
