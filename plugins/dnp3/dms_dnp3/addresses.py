"""DNP3 point addresses and the quality mapping shared by the master source and the outstation simulator.

Address format in the point map (``address`` column)::

    <group>:<index>                 e.g. analog:3, binary:0, double:5, counter:1
    crob:<index>[@<group>:<index>]  a control relay output (group 12), status by default from
                                    binary output status (group 10/11) at the same index
    aout:<index>[@<group>:<index>]  an analogue output (group 41), status by default from
                                    analogue output status (group 40/42) at the same index

``group`` is one of ``analog`` (group 30/32), ``binary`` (1/2), ``double`` (3/4),
``counter`` (20/22), ``bos`` (binary output status 10/11), ``aos`` (analogue output status
40/42), ``crob`` and ``aout``. The optional ``@<group>:<index>`` of a control names the
input the controlled point is monitored by, e.g. ``crob:0@double:0`` for a breaker that is
commanded through CROB 0 and reports its position as double-bit input 0.
"""

from __future__ import annotations

import enum

import attrs

from dms_hookspecs import Detail, PointKind, Quality, QualitySource, Validity

__all__ = [
    "Group",
    "Dnp3Address",
    "AddressError",
    "parse_address",
    "Flag",
    "quality_from_flags",
    "flags_from_quality",
]


class AddressError(ValueError):
    """A point map address that is not a DNP3 address."""


class Group(enum.Enum):
    """Kinds of DNP3 points a point map can name (monitoring side)."""

    ANALOG = "analog"  # g30 static, g32 events
    BINARY = "binary"  # g1 / g2
    DOUBLE = "double"  # g3 / g4
    COUNTER = "counter"  # g20 / g22
    BOS = "bos"  # binary output status g10 / g11
    AOS = "aos"  # analogue output status g40 / g42


class Control(enum.Enum):
    """DNP3 output objects commands are sent as."""

    CROB = "crob"  # g12v1
    AOUT = "aout"  # g41


_ALIASES = {
    "analog": "analog", "ai": "analog",
    "binary": "binary", "bi": "binary",
    "double": "double", "dbi": "double",
    "counter": "counter", "ctr": "counter",
    "bos": "bos", "bo": "bos",
    "aos": "aos", "ao": "aos",
    "crob": "crob", "aout": "aout",
}

MAX_INDEX = 0xFFFF


@attrs.frozen
class Dnp3Address:
    """A parsed point map address.

    :param group: the input the point's value is reported by.
    :param index: index of that input.
    :param control: output object commands are sent as (None: not controllable by address).
    :param control_index: index of the output.
    """

    group: Group
    index: int
    control: Control | None = None
    control_index: int = 0

    @property
    def status_key(self) -> tuple[Group, int]:
        return (self.group, self.index)


def _split(text: str, where: str) -> tuple[str, int]:
    name, sep, index = text.strip().partition(":")
    name = _ALIASES.get(name.strip().lower(), "")
    if not sep or not name:
        raise AddressError(f"{where}: {text!r} is not '<group>:<index>' with group one of {sorted(set(_ALIASES.values()))}")
    try:
        number = int(index.strip(), 10)
    except ValueError:
        raise AddressError(f"{where}: index {index!r} of {text!r} is not an integer") from None
    if not 0 <= number <= MAX_INDEX:
        raise AddressError(f"{where}: index {number} of {text!r} is outside 0..{MAX_INDEX}")
    return name, number


def parse_address(text: str) -> Dnp3Address:
    """Parse one address. :raises AddressError: with the offending text."""
    head, at, status = text.partition("@")
    name, index = _split(head, "address")
    if name in ("crob", "aout"):
        control = Control(name)
        if at:
            status_name, status_index = _split(status, "status address")
            if status_name in ("crob", "aout"):
                raise AddressError(f"status address of {text!r} must be an input, not {status_name!r}")
            return Dnp3Address(Group(status_name), status_index, control, index)
        return Dnp3Address(Group.BOS if control is Control.CROB else Group.AOS, index, control, index)
    if at:
        raise AddressError(f"{text!r}: only crob/aout addresses take an '@<status address>'")
    return Dnp3Address(Group(name), index)


class Flag(enum.IntFlag):
    """DNP3 object flags (IEEE 1815-2012 11.9, the octet of 'with flags' variations)."""

    ONLINE = 0x01
    RESTART = 0x02
    COMM_LOST = 0x04
    REMOTE_FORCED = 0x08
    LOCAL_FORCED = 0x10
    OVER_RANGE = 0x20  # analogue; CHATTER_FILTER for binaries, ROLLOVER for counters
    REFERENCE_ERR = 0x40  # analogue; DISCONTINUITY for counters
    STATE = 0x80  # binaries (state bit, not a quality)


_BINARY_GROUPS = (Group.BINARY, Group.DOUBLE, Group.BOS)


def quality_from_flags(flags: int, group: Group) -> int:
    """Map a DNP3 flags octet to packed IEC 61850 quality bits.

    ONLINE clear → invalid (failure); COMM_LOST → invalid, old data; RESTART → invalid,
    old data (not updated since the outstation restarted); REMOTE/LOCAL_FORCED → substituted;
    OVER_RANGE → questionable, overflow (binaries: chatter filter → questionable, oscillatory;
    counters: rollover → questionable, overflow); REFERENCE_ERR → questionable, bad reference
    (counters: discontinuity → questionable, inconsistent).
    """
    flags = int(flags)
    validity = Validity.GOOD
    detail = Detail.NONE
    if flags & Flag.OVER_RANGE:
        validity = Validity.QUESTIONABLE
        detail |= Detail.OSCILLATORY if group in _BINARY_GROUPS else Detail.OVERFLOW
    if flags & Flag.REFERENCE_ERR and group not in _BINARY_GROUPS:
        validity = Validity.QUESTIONABLE
        detail |= Detail.INCONSISTENT if group is Group.COUNTER else Detail.BAD_REFERENCE
    if flags & (Flag.COMM_LOST | Flag.RESTART):
        validity = Validity.INVALID
        detail |= Detail.OLD_DATA
    if not flags & Flag.ONLINE:
        validity = Validity.INVALID
        if not detail & Detail.OLD_DATA:
            detail |= Detail.FAILURE
    source = QualitySource.SUBSTITUTED if flags & (Flag.LOCAL_FORCED | Flag.REMOTE_FORCED) else QualitySource.PROCESS
    return Quality(validity, detail, source).to_bits()


def flags_from_quality(bits: int, group: Group) -> int:
    """The outstation side: packed IEC 61850 quality bits → DNP3 flags (inverse of the above)."""
    quality = Quality.from_bits(bits)
    flags = Flag.ONLINE
    if quality.validity is Validity.INVALID:
        if quality.detail & Detail.OLD_DATA:
            flags |= Flag.COMM_LOST
        else:
            flags = Flag(0)
    if quality.detail & (Detail.OVERFLOW | Detail.OSCILLATORY):
        flags |= Flag.OVER_RANGE
    if quality.detail & (Detail.BAD_REFERENCE | Detail.INCONSISTENT) and group not in _BINARY_GROUPS:
        flags |= Flag.REFERENCE_ERR
    if quality.source is QualitySource.SUBSTITUTED:
        flags |= Flag.LOCAL_FORCED
    return int(flags)


def value_to_wire(value: float, group: Group, kind: PointKind, scale: float) -> float | int | bool:
    """Engineering value → the value carried by the DNP3 object of ``group``."""
    if group is Group.BINARY:
        return bool(value)
    if group is Group.BOS:
        return int(value) == 2 if kind is PointKind.DOUBLE else bool(value)
    if group is Group.DOUBLE:
        return int(value) & 0b11
    raw = value / scale if scale else value
    if group is Group.COUNTER:
        return max(0, min(0xFFFFFFFF, round(raw)))
    return raw


def value_from_wire(raw: float | int | bool, group: Group, kind: PointKind, scale: float) -> float:
    """The value of a DNP3 object → engineering value (inverse of :func:`value_to_wire`)."""
    if group is Group.BOS and kind is PointKind.DOUBLE:
        return 2.0 if raw else 1.0
    if group in _BINARY_GROUPS:
        return float(int(raw))
    return float(raw) * scale
