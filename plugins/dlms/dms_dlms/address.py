"""Point map addresses for DLMS/COSEM: ``<logical name>:<attribute>[:<column logical name>]``.

* ``1.0.1.7.0.255:2`` — value (attribute 2) of a register (class 3, or what the meter's
  association view says: Register, Extended register, Demand register or Data);
* ``0.0.96.3.10.255:2`` — output state of the disconnect control (class 70): the one
  controllable object (remote_disconnect / remote_reconnect);
* ``1.0.99.1.0.255:2:1.0.1.8.0.255`` — the column of a load profile (profile generic,
  attribute 2 = buffer) that captures register ``1.0.1.8.0.255``: every buffer row is
  published on this point with the row's own clock time.

Logical names are OBIS codes written ``A.B.C.D.E.F`` (six decimal groups 0-255).
"""

from __future__ import annotations

import attrs

__all__ = ["DlmsAddress", "AddressError", "parse_address", "DISCONNECT_CONTROL_LN", "CLOCK_LN", "EVENT_LOG_LN", "EVENT_CODE_LN"]

DISCONNECT_CONTROL_LN = "0.0.96.3.10.255"
CLOCK_LN = "0.0.1.0.0.255"
EVENT_LOG_LN = "0.0.99.98.0.255"  #: standard event log
EVENT_CODE_LN = "0.0.96.11.0.255"  #: event code object of the standard event log


class AddressError(ValueError):
    """A point map address that is not ``<logical name>:<attribute>[:<column logical name>]``."""


def _logical_name(text: str, address: str) -> str:
    parts = text.strip().split(".")
    if len(parts) != 6:
        raise AddressError(f"{address!r}: logical name {text!r} must have six groups A.B.C.D.E.F")
    try:
        groups = [int(part) for part in parts]
    except ValueError:
        raise AddressError(f"{address!r}: logical name {text!r} must be decimal") from None
    if any(not 0 <= group <= 255 for group in groups):
        raise AddressError(f"{address!r}: logical name groups must be 0..255")
    return ".".join(str(group) for group in groups)


@attrs.frozen
class DlmsAddress:
    logical_name: str
    attribute: int
    column: str | None = None  #: captured register of a load profile column

    @property
    def is_profile_column(self) -> bool:
        return self.column is not None

    @property
    def is_disconnect_control(self) -> bool:
        return self.logical_name == DISCONNECT_CONTROL_LN

    def __str__(self) -> str:
        tail = f":{self.column}" if self.column else ""
        return f"{self.logical_name}:{self.attribute}{tail}"


def parse_address(address: str) -> DlmsAddress:
    """Parse a point map address. :raises AddressError: malformed."""
    parts = address.strip().split(":")
    if len(parts) not in (2, 3):
        raise AddressError(f"{address!r}: expected '<logical name>:<attribute>[:<column logical name>]'")
    name = _logical_name(parts[0], address)
    try:
        attribute = int(parts[1])
    except ValueError:
        raise AddressError(f"{address!r}: attribute {parts[1]!r} is not an integer") from None
    if not 1 <= attribute <= 255:
        raise AddressError(f"{address!r}: attribute must be 1..255")
    column = _logical_name(parts[2], address) if len(parts) == 3 else None
    if column is not None and attribute != 2:
        raise AddressError(f"{address!r}: a profile column address needs attribute 2 (buffer)")
    if name == DISCONNECT_CONTROL_LN and attribute not in (2, 3):
        raise AddressError(f"{address!r}: the disconnect control maps attribute 2 (output state) or 3 (control state)")
    return DlmsAddress(name, attribute, column)
