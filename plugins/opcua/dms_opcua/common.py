"""What the OPC UA source and simulator server share: addresses, data types and quality mapping.

Point map addresses are OPC UA node ids in their string form (``ns=2;s=Trafo_0-1/P``,
``ns=2;i=1001``). The control variable of a controllable point is the value node's string
identifier plus a suffix (default ``/Oper``, e.g. ``ns=2;s=switch_6/Pos/Oper``); the
simulator also offers ``<id>/OperReason``, a String variable holding the reason of the
last refused command. Controls therefore need string node ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from asyncua import ua

from dms_hookspecs import Detail, PointKind, Quality, QualitySource, Validity

__all__ = [
    "CONTROL_KINDS",
    "parse_node_id",
    "control_node_id",
    "reason_node_id",
    "variant_type",
    "to_variant",
    "from_variant",
    "status_to_quality",
    "quality_to_status",
    "to_datetime",
    "from_datetime",
]

CONTROL_KINDS = frozenset({PointKind.DOUBLE, PointKind.STEP, PointKind.SETPOINT})
"""Kinds that accept commands unless the ``controls`` setting lists the points explicitly."""

_S = ua.StatusCodes


def parse_node_id(address: str) -> ua.NodeId:
    """The node id of a point map address. :raises ValueError: not a node id."""
    try:
        node_id = ua.NodeId.from_string(address)
    except Exception as exc:  # asyncua raises several types for bad strings
        raise ValueError(f"{address!r} is not an OPC UA node id ({exc})") from exc
    return node_id


def _suffixed(node_id: ua.NodeId, suffix: str) -> ua.NodeId:
    if node_id.NodeIdType not in (ua.NodeIdType.String,) or not isinstance(node_id.Identifier, str):
        raise ValueError(f"controls need string node ids (ns=<n>;s=<name>), got {node_id.to_string()!r}")
    return ua.NodeId(node_id.Identifier + suffix, node_id.NamespaceIndex)


def control_node_id(node_id: ua.NodeId, suffix: str = "/Oper") -> ua.NodeId:
    """The control variable written to operate a point."""
    return _suffixed(node_id, suffix)


def reason_node_id(node_id: ua.NodeId, suffix: str = "/Oper") -> ua.NodeId:
    """The String variable with the reason of the last refused command."""
    return _suffixed(node_id, suffix + "Reason")


_VARIANT = {
    PointKind.ANALOG: ua.VariantType.Double,
    PointKind.SETPOINT: ua.VariantType.Double,
    PointKind.COUNTER: ua.VariantType.Double,
    PointKind.DOUBLE: ua.VariantType.Int32,
    PointKind.STEP: ua.VariantType.Int32,
    PointKind.BINARY: ua.VariantType.Boolean,
}


def variant_type(kind: PointKind) -> ua.VariantType:
    """OPC UA data type of a point kind: analogue Double, double/step Int32, binary Boolean."""
    return _VARIANT[kind]


def to_variant(kind: PointKind, protocol_value: float) -> ua.Variant:
    vtype = _VARIANT[kind]
    if vtype is ua.VariantType.Boolean:
        return ua.Variant(bool(protocol_value), vtype)
    if vtype is ua.VariantType.Int32:
        return ua.Variant(int(round(protocol_value)), vtype)
    return ua.Variant(float(protocol_value), vtype)


def from_variant(value: object) -> float | None:
    """A received value as float, ``None`` if it is not a number (null, string, array)."""
    if isinstance(value, bool | int | float):
        return float(value)
    return None


_FAILURE_CODES = frozenset(
    {
        _S.BadCommunicationError,
        _S.BadNotConnected,
        _S.BadNoCommunication,
        _S.BadServerNotConnected,
        _S.BadDeviceFailure,
        _S.BadSensorFailure,
        _S.BadConnectionClosed,
    }
)

_GOOD = 0
_INVALID = Quality(Validity.INVALID).to_bits()
_INVALID_FAILURE = Quality(Validity.INVALID, Detail.FAILURE).to_bits()
_INVALID_OLD = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
_QUESTIONABLE = Quality(Validity.QUESTIONABLE).to_bits()
_QUESTIONABLE_OLD = Quality(Validity.QUESTIONABLE, Detail.OLD_DATA).to_bits()
_SUBSTITUTED = Quality(source=QualitySource.SUBSTITUTED).to_bits()
_QUESTIONABLE_SUBSTITUTED = Quality(Validity.QUESTIONABLE, source=QualitySource.SUBSTITUTED).to_bits()


def status_to_quality(code: int) -> int:
    """Packed IEC 61850 quality of an OPC UA StatusCode value.

    Good → good; Good_LocalOverride → good + substituted; Uncertain → questionable
    (Uncertain_LastUsableValue + old-data, Uncertain_SubstituteValue + substituted);
    Bad → invalid (communication/device failures + failure, Bad_OutOfService/NoData... plain invalid).
    """
    code = int(code) & 0xFFFF0000
    severity = code >> 30
    if severity == 0:
        return _SUBSTITUTED if code == _S.GoodLocalOverride else _GOOD
    if severity == 1:
        if code == _S.UncertainLastUsableValue:
            return _QUESTIONABLE_OLD
        if code == _S.UncertainSubstituteValue:
            return _QUESTIONABLE_SUBSTITUTED
        return _QUESTIONABLE
    return _INVALID_FAILURE if code in _FAILURE_CODES else _INVALID


def quality_to_status(bits: int) -> int:
    """OPC UA StatusCode value for packed quality bits (the simulator's direction)."""
    quality = Quality.from_bits(bits)
    if quality.validity is Validity.INVALID:
        if Detail.FAILURE in quality.detail:
            return _S.BadDeviceFailure
        if Detail.OLD_DATA in quality.detail:
            return _S.BadNoCommunication
        return _S.Bad
    if quality.validity is Validity.QUESTIONABLE:
        if quality.source is QualitySource.SUBSTITUTED:
            return _S.UncertainSubstituteValue
        if Detail.OLD_DATA in quality.detail:
            return _S.UncertainLastUsableValue
        return _S.Uncertain
    if quality.source is QualitySource.SUBSTITUTED:
        return _S.GoodLocalOverride
    return _S.Good


def to_datetime(stamp: float) -> datetime:
    return datetime.fromtimestamp(stamp, UTC)


def from_datetime(value: datetime | None, default: float) -> float:
    if value is None:
        return default
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    try:
        return value.timestamp()
    except (OverflowError, OSError, ValueError):
        return default


INVALID_OLD_DATA = _INVALID_OLD
"""Quality published for every point when the link is lost."""


def chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _RedactCredentials:
    """Logging filter: asyncua logs requests at DEBUG level, ActivateSession included, whose
    UserNameIdentityToken carries the password. Such records are replaced by a redacted line."""

    _MARKERS = ("UserNameIdentityToken", "Password=", "ActivateSessionRequest", "UserIdentityToken")

    def filter(self, record) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - never break logging
            return True
        if any(marker in message for marker in self._MARKERS):
            record.msg = "%s (message redacted by Leitstand: may contain credentials)"
            record.args = (message.split("(", 1)[0][:80],)
        return True


_FILTER = _RedactCredentials()
_SENSITIVE_LOGGERS = (
    "asyncua.client.ua_client.UASocketProtocol",
    "asyncua.client.ua_client",
    "asyncua.client.client",
    "asyncua.server.uaprocessor",
    "asyncua.server.binary_server_asyncio",
    "asyncua.server.internal_session",
    "asyncua.server.internal_server",
)


def redact_asyncua_credentials() -> None:
    """Attach the redacting filter to asyncua's loggers (idempotent)."""
    import logging

    names = set(_SENSITIVE_LOGGERS) | {name for name in logging.root.manager.loggerDict if name.startswith("asyncua")}
    for name in names:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
