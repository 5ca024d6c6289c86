"""IEC 61850 addresses in the point map, and the quality mapping shared by source and server.

Address format (``address`` column of the point map)::

    IED1LD0/MMXU1.TotW.mag.f          data attribute, functional constraint implied (MX)
    IED1LD0/MMXU1.PhV.phsA.cVal.mag.f  attribute of a sub data object (WYE)
    IED1LD0/PTOC1.StrVal.setMag.f     setting (SP)
    IED1LD0/MMXU1.TotW.mag.f[MX]      explicit functional constraint
    IED1LD0/CSWI1.Pos                 controllable data object (kind double/binary/step)

A data-attribute address is monitored only; its quality and timestamp are the ``q`` and
``t`` attributes of the data object that holds it (when the object has them). A
data-object address is a control: it is monitored through ``stVal`` (``valWTr.posVal`` for
step positions, ISC) with FC ST and
commanded through ``Oper`` (FC CO) with the control model the server announces.
"""

from __future__ import annotations

import re

import attrs

from dms_hookspecs import PointKind

__all__ = ["Address", "AddressError", "parse_address", "to_iec_quality", "from_iec_quality", "CONTROL_KINDS"]

#: names of the data attributes that carry a data object's value; what precedes them is the (sub) data object
VALUE_ATTRIBUTES = {
    "mag": "MX", "cVal": "MX", "instMag": "MX", "instCVal": "MX", "mxVal": "MX",
    "stVal": "ST", "valWTr": "ST", "actVal": "ST", "general": "ST", "q": None, "t": None,
    "setMag": "SP", "setVal": "SP",
}
FUNCTIONAL_CONSTRAINTS = {"ST", "MX", "SP", "SV", "CF", "DC", "SG", "SE", "EX", "CO", "BL"}
CONTROL_KINDS = (PointKind.DOUBLE, PointKind.BINARY, PointKind.STEP)

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_PATTERN = re.compile(rf"^(?P<ld>{_NAME})/(?P<ln>{_NAME})(?P<path>(\.{_NAME})+)(\[(?P<fc>[A-Z]{{2}})\])?$")


class AddressError(ValueError):
    """An address cannot be used."""


@attrs.frozen
class Address:
    ld: str
    ln: str
    path: tuple[str, ...]  #: data object (and sub objects) followed by data attribute names
    fc: str
    control: bool  #: a data-object reference: monitored through stVal, commanded through Oper
    do_len: int  #: number of leading path elements that name the (sub) data object
    step: bool = False  #: a step-position control (ISC): its status is ``valWTr.posVal``

    @property
    def ln_ref(self) -> str:
        return f"{self.ld}/{self.ln}"

    @property
    def do_path(self) -> tuple[str, ...]:
        return self.path[: self.do_len]

    @property
    def do_ref(self) -> str:
        return f"{self.ld}/{self.ln}." + ".".join(self.do_path)

    @property
    def value_path(self) -> tuple[str, ...]:
        """Path (from the logical node) of the attribute holding the value."""
        if self.control:
            return self.path + (("valWTr", "posVal") if self.step else ("stVal",))
        return self.path

    @property
    def value_ref(self) -> str:
        return f"{self.ld}/{self.ln}." + ".".join(self.value_path)

    @property
    def value_fc(self) -> str:
        return "ST" if self.control else self.fc

    def __str__(self) -> str:
        return f"{self.ld}/{self.ln}." + ".".join(self.path) + f"[{self.fc}]"


def parse_address(text: str, kind: PointKind) -> Address:
    """Parse a point map address. :raises AddressError: malformed address."""
    match = _PATTERN.match(text.strip())
    if not match:
        raise AddressError(f"{text!r} is not an IEC 61850 object reference like 'IED1LD0/MMXU1.TotW.mag.f'")
    path = tuple(match["path"][1:].split("."))
    explicit_fc = match["fc"]
    if explicit_fc is not None and explicit_fc not in FUNCTIONAL_CONSTRAINTS:
        raise AddressError(f"{text!r}: unknown functional constraint {explicit_fc!r}")
    index = next((i for i, name in enumerate(path) if name in VALUE_ATTRIBUTES), None)
    if index is None:
        if len(path) != 1:
            raise AddressError(f"{text!r}: no value attribute (mag, cVal, stVal, setMag, setVal, …) in the path")
        if kind not in CONTROL_KINDS:
            raise AddressError(f"{text!r}: a data-object reference must be a control of kind double, binary or step")
        return Address(match["ld"], match["ln"], path, explicit_fc or "CO", True, 1, kind is PointKind.STEP)
    if index == 0:
        raise AddressError(f"{text!r}: the path must start with a data object name")
    fc = explicit_fc or VALUE_ATTRIBUTES[path[index]] or "MX"
    return Address(match["ld"], match["ln"], path, fc, False, index)


# libiec61850 packs validity as GOOD 0, RESERVED 1, INVALID 2, QUESTIONABLE 3 (bit string bit 0 is the
# MSB of validity); dms_hookspecs.Quality packs INVALID 1, RESERVED 2. Every other flag has the same bit.
def _swap_validity(bits: int) -> int:
    bits = int(bits)
    return (bits & ~0b11) | ((bits & 0b01) << 1) | ((bits & 0b10) >> 1)


def from_iec_quality(iec_bits: int) -> int:
    """libiec61850 ``Quality`` (uint16) → packed :class:`dms_hookspecs.Quality` bits."""
    return _swap_validity(iec_bits) & 0x1FFF


def to_iec_quality(bits: int) -> int:
    """Packed :class:`dms_hookspecs.Quality` bits → libiec61850 ``Quality``."""
    return _swap_validity(bits) & 0x1FFF
