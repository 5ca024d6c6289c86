"""Point map, type and quality mapping between Leitstand points and IEC 60870-5-104 (c104) objects.

Address format in the point map (``address`` column): ``<common address>:<IOA>`` for the
monitoring object, optionally ``<common address>:<IOA>:<control IOA>`` for the command object
of a controllable point (default control IOA: ``IOA + control_ioa_offset``).

Optional extra columns of the CSV (ignored by other readers): ``controllable`` (true/false;
default true for ``double``, ``step`` and ``setpoint`` points) and ``sbo`` (true/false:
select-before-operate for this point; default from the ``select_before_operate`` setting).
"""

from __future__ import annotations

import csv
import datetime
import math
from collections.abc import Iterable
from pathlib import Path

import attrs
import c104

from dms_hookspecs import Detail, PointKind, PointSpec, Quality, QualitySource, Validity
from dms_hookspecs.pointmap import PointMapError, read_point_map

__all__ = [
    "Iec104Point",
    "PointMapError",
    "load_point_map",
    "parse_address",
    "monitor_type",
    "command_type",
    "quality_to_bits",
    "bits_to_quality",
    "epoch_to_datetime",
    "datetime_to_epoch",
    "LINK_LOST_BITS",
]

MAX_IOA = 16_777_215
LINK_LOST_BITS = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
"""Quality of every point of a connection while its link is down."""

_MONITOR = {
    PointKind.ANALOG: c104.Type.M_ME_TF_1,
    PointKind.SETPOINT: c104.Type.M_ME_TF_1,
    PointKind.BINARY: c104.Type.M_SP_TB_1,
    PointKind.DOUBLE: c104.Type.M_DP_TB_1,
    PointKind.STEP: c104.Type.M_ST_TB_1,
}
_COMMAND = {  # (with time tag, without)
    PointKind.BINARY: (c104.Type.C_SC_TA_1, c104.Type.C_SC_NA_1),
    PointKind.DOUBLE: (c104.Type.C_DC_TA_1, c104.Type.C_DC_NA_1),
    PointKind.STEP: (c104.Type.C_RC_TA_1, c104.Type.C_RC_NA_1),
    PointKind.SETPOINT: (c104.Type.C_SE_TC_1, c104.Type.C_SE_NC_1),
}
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


@attrs.frozen
class Iec104Point:
    """One mapped point: where it lives and how it is commanded."""

    point: str
    kind: PointKind
    scale: float
    common_address: int
    ioa: int
    control_ioa: int | None  # None: not controllable
    sbo: bool

    @property
    def controllable(self) -> bool:
        return self.control_ioa is not None

    def spec(self) -> PointSpec:
        return PointSpec(self.point, self.kind, controllable=self.controllable, select_before_operate=self.sbo)


def parse_address(address: str) -> tuple[int, int, int | None]:
    """``"1:1001"`` → ``(1, 1001, None)``; ``"1:2001:12001"`` → ``(1, 2001, 12001)``.

    :raises ValueError: not of that form, or out of range.
    """
    parts = address.strip().split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"address {address!r} is not '<common address>:<IOA>[:<control IOA>]'")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        raise ValueError(f"address {address!r} is not '<common address>:<IOA>[:<control IOA>]'") from None
    if not 1 <= numbers[0] <= 65534:
        raise ValueError(f"address {address!r}: common address must be 1..65534")
    for ioa in numbers[1:]:
        if not 1 <= ioa <= MAX_IOA:
            raise ValueError(f"address {address!r}: IOA must be 1..{MAX_IOA}")
    return numbers[0], numbers[1], (numbers[2] if len(numbers) == 3 else None)


def _flag(value: str | None, default: bool, path: Path, line: int, column: str) -> bool:
    if value is None:
        return default
    text = value.strip().lower()
    if text == "":
        return default
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise PointMapError(f"{path}:{line}: column {column!r} must be true or false, not {value!r}")


def load_point_map(path: str | Path | None, *, control_ioa_offset: int = 100_000, sbo_default: bool = False,
                   entries=None) -> list[Iec104Point]:
    """Read a point map CSV (``dms_hookspecs.pointmap`` format plus optional columns), or check ``entries``
    (e.g. from the network model, without the optional columns; ``path`` then only names them in errors).

    :raises PointMapError: unreadable map, bad address, unsupported kind, IOA used twice.
    """
    extra = {}
    if entries is None:
        path = Path(path)
        entries = read_point_map(path)
        with path.open(newline="", encoding="utf-8") as handle:
            extra = {
                (row.get("point") or "").strip(): (line, row)
                for line, row in enumerate(csv.DictReader(line for line in handle if not line.startswith("#")), start=2)
            }
    points: list[Iec104Point] = []
    used: dict[tuple[int, int], str] = {}
    for entry in entries:
        line, row = extra.get(entry.point, (0, {}))
        if entry.kind not in _MONITOR:
            raise PointMapError(f"{path}:{line}: kind {entry.kind.value!r} is not supported by IEC 104 (point {entry.point!r})")
        if entry.scale == 0 or not math.isfinite(entry.scale):
            raise PointMapError(f"{path}:{line}: scale must be finite and non-zero")
        try:
            ca, ioa, control = parse_address(entry.address)
        except ValueError as exc:
            raise PointMapError(f"{path}:{line}: {exc}") from None
        controllable = _flag(row.get("controllable"), entry.kind in (PointKind.DOUBLE, PointKind.STEP, PointKind.SETPOINT), path, line, "controllable")
        if controllable and entry.kind not in _COMMAND:
            raise PointMapError(f"{path}:{line}: {entry.kind.value} points cannot be commanded over IEC 104")
        sbo = _flag(row.get("sbo"), sbo_default, path, line, "sbo") if controllable else False
        if controllable and control is None:
            control = ioa + control_ioa_offset
            if control > MAX_IOA:
                raise PointMapError(f"{path}:{line}: control IOA {control} out of range; give it in the address")
        if not controllable:
            control = None
        for number in (ioa, control):
            if number is None:
                continue
            if (ca, number) in used:
                raise PointMapError(f"{path}:{line}: IOA {ca}:{number} of {entry.point!r} already used by {used[(ca, number)]!r}")
            used[(ca, number)] = entry.point
        points.append(Iec104Point(entry.point, entry.kind, entry.scale, ca, ioa, control, sbo))
    return points


def monitor_type(kind: PointKind) -> c104.Type:
    return _MONITOR[kind]


def command_type(kind: PointKind, time_tag: bool = True) -> c104.Type:
    return _COMMAND[kind][0 if time_tag else 1]


# --- quality --------------------------------------------------------------------------------

_IV, _NT, _SB, _BL, _OV = 0x80, 0x40, 0x20, 0x10, 0x01
_QUALITY_CACHE: dict[int, int] = {}


def quality_to_bits(descriptor: int) -> int:
    """IEC 104 quality descriptor (IV NT SB BL .. OV bits, as ``c104.Quality.value``) →
    packed IEC 61850 quality bits.

    IV → invalid; NT (not topical) → questionable + old-data; OV → questionable + overflow;
    SB → source substituted; BL → operator-blocked. EI (elapsed time invalid) is ignored.
    """
    descriptor = int(descriptor) & 0xFF
    cached = _QUALITY_CACHE.get(descriptor)
    if cached is not None:
        return cached
    validity = Validity.GOOD
    detail = Detail.NONE
    if descriptor & _NT:
        validity = Validity.QUESTIONABLE
        detail |= Detail.OLD_DATA
    if descriptor & _OV:
        validity = Validity.QUESTIONABLE
        detail |= Detail.OVERFLOW
    if descriptor & _IV:
        validity = Validity.INVALID
    bits = Quality(
        validity,
        detail,
        QualitySource.SUBSTITUTED if descriptor & _SB else QualitySource.PROCESS,
        operator_blocked=bool(descriptor & _BL),
    ).to_bits()
    _QUALITY_CACHE[descriptor] = bits
    return bits


def bits_to_quality(bits: int) -> c104.Quality:
    """Packed IEC 61850 quality bits → ``c104.Quality`` (the server side of :func:`quality_to_bits`).

    Invalid → IV; old-data (or questionable without another reason) → NT; overflow → OV;
    substituted → SB; operator-blocked → BL. Other detail flags have no IEC 104 equivalent.
    """
    quality = Quality.from_bits(bits)
    descriptor = 0
    if quality.validity is Validity.INVALID:
        descriptor |= _IV
    if Detail.OLD_DATA in quality.detail:
        descriptor |= _NT
    if Detail.OVERFLOW in quality.detail:
        descriptor |= _OV
    if quality.validity is Validity.QUESTIONABLE and not descriptor & (_NT | _OV):
        descriptor |= _NT
    if quality.source is QualitySource.SUBSTITUTED:
        descriptor |= _SB
    if quality.operator_blocked:
        descriptor |= _BL
    return c104.Quality(descriptor)


# --- time -----------------------------------------------------------------------------------
# c104 (pybind11 chrono) converts datetimes as *local* naive times in both directions, so
# epoch seconds go through naive local datetimes; the CP56Time2a on the wire is c104's business.


def epoch_to_datetime(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds)


def datetime_to_epoch(value: datetime.datetime | None, default: float) -> float:
    if value is None:
        return default
    try:
        return value.timestamp()
    except (OverflowError, OSError, ValueError):
        return default


def values_of(points: Iterable[Iec104Point]) -> dict[str, Iec104Point]:
    return {point.point: point for point in points}
