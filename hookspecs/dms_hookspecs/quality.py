"""Quality of a measured value, after IEC 61850-7-3 ``Quality``.

A :class:`Quality` packs into a 16-bit integer (:meth:`Quality.to_bits`) so that the
point database and measurement batches can carry it in a numpy ``uint16`` array. The
bit layout follows IEC 61850-8-1 (validity in bits 0-1, detail flags in bits 2-9,
source, test and operator-blocked in bits 10-12).
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["Validity", "Detail", "QualitySource", "Quality", "GOOD", "INVALID"]


class Validity(enum.IntEnum):
    """``validity`` attribute of an IEC 61850 quality."""

    GOOD = 0b00
    INVALID = 0b01
    RESERVED = 0b10
    QUESTIONABLE = 0b11


class Detail(enum.IntFlag):
    """``detailQual`` flags of an IEC 61850 quality (bit positions as packed)."""

    NONE = 0
    OVERFLOW = 1 << 2
    OUT_OF_RANGE = 1 << 3
    BAD_REFERENCE = 1 << 4
    OSCILLATORY = 1 << 5
    FAILURE = 1 << 6
    OLD_DATA = 1 << 7
    INCONSISTENT = 1 << 8
    INACCURATE = 1 << 9


class QualitySource(enum.IntEnum):
    """Where the value comes from: the process, or substituted by an operator/application."""

    PROCESS = 0
    SUBSTITUTED = 1


_SOURCE_BIT = 1 << 10
_TEST_BIT = 1 << 11
_BLOCKED_BIT = 1 << 12
_VALIDITY_MASK = 0b11
_DETAIL_MASK = 0b11_1111_1100


@attrs.frozen
class Quality:
    """IEC 61850 quality of one value.

    :param validity: good, invalid or questionable.
    :param detail: detail flags (overflow, out-of-range, bad-reference, oscillatory,
        failure, old-data, inconsistent, inaccurate).
    :param source: process or substituted.
    :param test: the value comes from a test and must not be used operationally.
    :param operator_blocked: updates are blocked by an operator.
    """

    validity: Validity = attrs.field(default=Validity.GOOD, converter=Validity)
    detail: Detail = attrs.field(default=Detail.NONE, converter=Detail)
    source: QualitySource = attrs.field(default=QualitySource.PROCESS, converter=QualitySource)
    test: bool = False
    operator_blocked: bool = False

    @property
    def is_good(self) -> bool:
        """True when validity is good and no detail flag is set."""
        return self.validity is Validity.GOOD and not self.detail

    def to_bits(self) -> int:
        """Pack into the 13-bit IEC 61850-8-1 layout (fits a ``uint16``)."""
        bits = int(self.validity) | int(self.detail)
        if self.source is QualitySource.SUBSTITUTED:
            bits |= _SOURCE_BIT
        if self.test:
            bits |= _TEST_BIT
        if self.operator_blocked:
            bits |= _BLOCKED_BIT
        return bits

    @classmethod
    def from_bits(cls, bits: int) -> Quality:
        """Unpack a value produced by :meth:`to_bits`."""
        bits = int(bits)
        return cls(
            validity=Validity(bits & _VALIDITY_MASK),
            detail=Detail(bits & _DETAIL_MASK),
            source=QualitySource.SUBSTITUTED if bits & _SOURCE_BIT else QualitySource.PROCESS,
            test=bool(bits & _TEST_BIT),
            operator_blocked=bool(bits & _BLOCKED_BIT),
        )

    def __str__(self) -> str:
        parts = [self.validity.name.lower()]
        parts += [flag.name.lower() for flag in Detail if flag and flag in self.detail]
        if self.source is QualitySource.SUBSTITUTED:
            parts.append("substituted")
        if self.test:
            parts.append("test")
        if self.operator_blocked:
            parts.append("operator-blocked")
        return "|".join(parts)


GOOD = Quality()
"""Good quality from the process: the usual case."""

INVALID = Quality(validity=Validity.INVALID)
"""Invalid without detail, e.g. a point never received."""
