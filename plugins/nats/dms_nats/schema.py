"""Wire schema v1: subjects and msgpack messages (documented in docs/scale-out.md).

Subjects (``<dep>`` is the deployment token, ``<source>`` a source name, both sanitised to
``[A-Za-z0-9_-]``)::

    leitstand.v1.<dep>.meas.<source>     IngestBatch: raw values from the front-end running <source>
    leitstand.v1.<dep>.events.<Type>     one event for sinks (Alarm, StudyResult, AuditEntry, ...);
                                         MeasurementBatch also in the packed form (below)
    leitstand.v1.<dep>.cmd.<source>      CommandRequest → CommandResult (NATS request/reply, not stored)

Every message is a msgpack map with ``"v": 1``. Events carry their attrs fields explicitly:
attrs values, enums, :class:`PointId` and numpy arrays are msgpack extension types
(:data:`EXT_ATTRS`, :data:`EXT_ENUM`, :data:`EXT_POINT_ID`, :data:`EXT_NDARRAY`), and only the
classes in :data:`EVENT_TYPES` / :data:`VALUE_TYPES` and :data:`ENUM_TYPES` decode — no pickle,
an unknown name is a :class:`SchemaError`.

A ``MeasurementBatch`` may instead travel **packed** (:func:`encode_packed_batch`): the four
arrays as raw little-endian bytes, point numbers instead of names, and the digest of a
**names table** (:class:`NamesTable`, the publishing core's point names in point-number order)
that is stored once in the KV bucket ``<prefix>_NAMES`` (:func:`names_table_entries`). A
decoder that does not hold the table raises :class:`UnknownNamesTable`; the caller fetches it
(:func:`decode_names_table` checks its digest) and decodes again.
"""

from __future__ import annotations

import enum
import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
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
    MeasurementBatch,
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
    "NamesTable",
    "UnknownNamesTable",
    "encode_packed_batch",
    "names_table_entries",
    "decode_names_table",
    "names_table_chunks",
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


class UnknownNamesTable(SchemaError):
    """A packed measurement batch refers to a names table this node does not hold (yet).

    :ivar digest: the table's digest (its key in the ``<prefix>_NAMES`` bucket).
    """

    def __init__(self, digest: str) -> None:
        super().__init__(f"names table {digest} is not known here")
        self.digest = digest


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

    @property
    def names_bucket(self) -> str:
        return f"{self.stream_prefix}_NAMES"


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


def decode_event(data: bytes, tables: Mapping[str, NamesTable] | None = None) -> Any:
    """The event in a message from ``events.<Type>`` (either form of a ``MeasurementBatch``).

    :param tables: names tables by digest, for packed measurement batches.
    :raises UnknownNamesTable: a packed batch whose names table is not in ``tables``.
    :raises SchemaError: wrong version, unknown type, malformed message.
    """
    message = _checked(data)
    if message.get("packed") == PACKED_MEASUREMENT_BATCH:
        return _unpack_batch(message, tables or {})
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


# -- packed measurement batches and names tables ------------------------------------------

PACKED_MEASUREMENT_BATCH = 1
"""Value of the ``packed`` key of a packed ``MeasurementBatch`` message (its format version)."""

NAMES_CHUNK_BYTES = 256 * 1024
"""Largest KV value of a names table (chunks of the compressed table)."""

MAX_NAMES_TABLE_BYTES = 1 << 30
"""Largest uncompressed names table a decoder accepts."""


@attrs.frozen(eq=False)
class NamesTable:
    """Point names in point-number order, identified by :attr:`digest`.

    :param names: the names (object array: ``names[points]`` gives a batch's names).
    :param digest: 32 hex digits, BLAKE2b-128 of :attr:`payload`.
    :param payload: msgpack array of the names (what the digest covers).
    """

    names: np.ndarray
    digest: str
    payload: bytes

    @classmethod
    def of(cls, names: Sequence[str]) -> NamesTable:
        listed = [str(name) for name in names]
        payload = msgpack.packb(listed, use_bin_type=True)
        return cls(np.array(listed, dtype=object), hashlib.blake2b(payload, digest_size=16).hexdigest(), payload)

    def __len__(self) -> int:
        return len(self.names)

    def matches(self, points: np.ndarray, names: Sequence[str]) -> bool:
        """Whether ``names`` are this table's names of ``points`` (point numbers)."""
        if len(names) != points.size:
            return False
        if points.size == 0:
            return True
        if points.min() < 0 or points.max() >= len(self.names):
            return False
        return bool(np.array_equal(self.names[points], np.asarray(names, dtype=object)))


def names_table_entries(table: NamesTable) -> list[tuple[str, bytes]]:
    """KV entries ``(key, value)`` of ``table`` in the ``<prefix>_NAMES`` bucket, in the order to
    store them: the chunks ``<digest>.<n>`` of the zlib-compressed payload, then the header
    ``<digest>`` = msgpack ``{"v", "count", "chunks", "bytes"}`` (present only once every chunk is)."""
    compressed = zlib.compress(table.payload, 6)
    chunks = [compressed[start:start + NAMES_CHUNK_BYTES] for start in range(0, len(compressed), NAMES_CHUNK_BYTES)] or [b""]
    header = msgpack.packb(
        {"v": SCHEMA_VERSION, "count": len(table), "chunks": len(chunks), "bytes": len(table.payload)}, use_bin_type=True
    )
    return [(f"{table.digest}.{n}", chunk) for n, chunk in enumerate(chunks)] + [(table.digest, header)]


def names_table_chunks(digest: str, header: bytes) -> int:
    """The number of chunks of table ``digest`` according to its KV header.

    :raises SchemaError: a malformed header, another schema version, a table larger than
        :data:`MAX_NAMES_TABLE_BYTES`.
    """
    try:
        info = msgpack.unpackb(header, raw=False)
        version = info.get("v")
        if version == SCHEMA_VERSION:
            count, chunks, size = int(info["count"]), int(info["chunks"]), int(info["bytes"])
    except Exception as exc:  # noqa: BLE001 - any malformed header
        raise SchemaError(f"names table {digest}: malformed header ({type(exc).__name__}: {exc})") from exc
    if version != SCHEMA_VERSION:
        raise SchemaError(f"names table {digest}: schema version {version!r} (this node speaks {SCHEMA_VERSION})")
    if not 0 <= size <= MAX_NAMES_TABLE_BYTES or not 1 <= chunks <= MAX_NAMES_TABLE_BYTES // NAMES_CHUNK_BYTES + 1 or count < 0:
        raise SchemaError(f"names table {digest}: {count} names, {size} bytes in {chunks} chunks refused")
    return chunks


def decode_names_table(digest: str, header: bytes, chunks: Sequence[bytes]) -> NamesTable:
    """The table ``digest`` from its KV header and chunks (values of ``<digest>.<n>``).

    :raises SchemaError: a malformed header or table, one larger than
        :data:`MAX_NAMES_TABLE_BYTES`, or one whose content does not have the digest.
    """
    expected = names_table_chunks(digest, header)
    info = msgpack.unpackb(header, raw=False)
    count, size = int(info["count"]), int(info["bytes"])
    if len(chunks) != expected:
        raise SchemaError(f"names table {digest}: {len(chunks)} chunks, the header says {expected}")
    inflate = zlib.decompressobj()
    parts: list[bytes] = []
    produced = 0
    try:
        for chunk in chunks:
            part = inflate.decompress(chunk, size + 1 - produced)  # bounded: never more than announced
            produced += len(part)
            parts.append(part)
    except zlib.error as exc:
        raise SchemaError(f"names table {digest}: not zlib data ({exc})") from exc
    payload = b"".join(parts)
    if not inflate.eof or len(payload) != size or hashlib.blake2b(payload, digest_size=16).hexdigest() != digest:
        raise SchemaError(f"names table {digest}: content does not match its digest")
    try:
        names = msgpack.unpackb(payload, raw=False, use_list=True)
    except Exception as exc:  # noqa: BLE001
        raise SchemaError(f"names table {digest}: not a msgpack array ({exc})") from exc
    if not isinstance(names, list) or len(names) != count or not all(isinstance(name, str) for name in names):
        raise SchemaError(f"names table {digest}: not {count} names")
    return NamesTable(np.array(names, dtype=object), digest, payload)


def encode_packed_batch(batch: MeasurementBatch, table: NamesTable) -> bytes | None:
    """``batch`` in the packed form against ``table``; ``None`` if it cannot be (names that are
    not the table's names of its points, quality bits beyond 16 bits): send it with
    :func:`encode_event` then."""
    points = np.asarray(batch.points)
    if points.dtype.kind not in "iu" or not table.matches(points, batch.names):
        return None
    quality = np.asarray(batch.quality)
    if quality.dtype != np.uint16 and quality.size and (quality.dtype.kind not in "iu" or quality.min() < 0 or quality.max() > 0xFFFF):
        return None
    values = np.asarray(batch.values, dtype="<f8")
    source_time = np.asarray(batch.source_time, dtype="<f8")
    if not values.size == quality.size == source_time.size == points.size:
        return None
    return msgpack.packb(
        {
            "v": SCHEMA_VERSION,
            "packed": PACKED_MEASUREMENT_BATCH,
            "source": batch.source,
            "receive_time": float(batch.receive_time),
            "table": table.digest,
            "points": np.ascontiguousarray(points, dtype="<u4").tobytes(),
            "values": np.ascontiguousarray(values).tobytes(),
            "quality": np.ascontiguousarray(quality, dtype="<u2").tobytes(),
            "source_time": np.ascontiguousarray(source_time).tobytes(),
        },
        use_bin_type=True,
    )


def _unpack_batch(message: dict[str, Any], tables: Mapping[str, NamesTable]) -> MeasurementBatch:
    digest = message.get("table")
    if not isinstance(digest, str):
        raise SchemaError("packed measurement batch without a names table digest")
    table = tables.get(digest)
    if table is None:
        raise UnknownNamesTable(digest)
    try:
        points = np.frombuffer(message["points"], dtype="<u4").astype(np.int64)
        values = np.frombuffer(message["values"], dtype="<f8")
        quality = np.frombuffer(message["quality"], dtype="<u2")
        source_time = np.frombuffer(message["source_time"], dtype="<f8")
        source, receive_time = message["source"], float(message["receive_time"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SchemaError(f"malformed packed measurement batch: {type(exc).__name__}: {exc}") from exc
    if not isinstance(source, str):
        raise SchemaError("malformed packed measurement batch: source is not a string")
    if not points.size == values.size == quality.size == source_time.size:
        raise SchemaError("packed measurement batch arrays differ in length")
    if points.size and points.max() >= len(table):
        raise SchemaError(f"packed measurement batch names point {int(points.max())}, beyond names table {digest} ({len(table)} names)")
    return MeasurementBatch(source, points, values, quality, source_time, receive_time, table.names[points])


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
