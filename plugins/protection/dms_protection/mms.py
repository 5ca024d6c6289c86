"""Settings to IEDs over IEC 61850 MMS: setting-group edit, confirm, activate, read back.

The client calls libiec61850 through ctypes (the shared object of :mod:`dms_iec61850.native`,
which releases the GIL in every blocking call; the SWIG binding would hold it). The sequence for a
device whose settings live in logical device ``LD`` (``DeviceSettings.ied``):

1. ``LD/LLN0.SGCB.EditSG`` (FC SP) := group — SelectEditSG;
2. each setting's ``…[SE]`` := value — SetEditSGValue (PTOC: ``StrVal.setMag.f``, ``TmMult.setMag.f``,
   ``OpDlTmms.setVal``, ``TmACrv.setCharact``; PIOC: ``StrVal.setMag.f``, ``OpDlTmms.setVal``);
3. ``LD/LLN0.SGCB.CnfEdit`` := true — ConfirmEditSGValues;
4. optionally ``LD/LLN0.SGCB.ActSG`` := group — SelectActiveSG;
5. read back: the group is selected for editing again and its ``SE`` values read (``SG`` too when it
   is the active group), then the edit selection is released (EditSG := 0).

The read-back values are compared with the stored ones; a mismatch is returned (the service raises
an ``Alarm`` with category ``protection-settings``).
"""

from __future__ import annotations

import ctypes
import math
from ctypes import POINTER, c_bool, c_char_p, c_float, c_int, c_int32, c_uint32, c_void_p
from typing import Any

import attrs

from .scl import CHARACTERISTICS
from .settings import DeviceSettings

__all__ = ["MmsError", "DistributionResult", "setting_values", "distribute", "read_group"]


class MmsError(RuntimeError):
    """A failed MMS service (the IED refused, or the association failed)."""


@attrs.frozen
class DistributionResult:
    device: str
    ld: str
    group: int
    written: dict[str, float]
    read_back: dict[str, float]
    mismatches: tuple[str, ...]
    active_group: int

    @property
    def ok(self) -> bool:
        return not self.mismatches


def setting_values(settings: DeviceSettings) -> dict[str, tuple[str, float]]:
    """``{reference without LD: (kind, value)}`` of the PTOC/PIOC settings of ``settings``."""
    values: dict[str, tuple[str, float]] = {}
    for f in settings.overcurrent:
        values[f"{f.name}.StrVal.setMag.f"] = ("float", f.pickup_a)
        values[f"{f.name}.TmMult.setMag.f"] = ("float", f.multiplier)
        values[f"{f.name}.OpDlTmms.setVal"] = ("int", round(f.definite_s * 1000))
        values[f"{f.name}.TmACrv.setCharact"] = ("int", CHARACTERISTICS[f.curve])
    for f in settings.instantaneous:
        values[f"{f.name}.StrVal.setMag.f"] = ("float", f.pickup_a)
        values[f"{f.name}.OpDlTmms.setVal"] = ("int", round(f.delay_s * 1000))
    return values


_lib: Any = None
_ERR = POINTER(c_int)


def _native() -> Any:
    global _lib
    if _lib is None:
        from dms_iec61850.native import lib

        signatures = {
            "IedConnection_create": (c_void_p,),
            "IedConnection_destroy": (None, c_void_p),
            "IedConnection_setConnectTimeout": (None, c_void_p, c_uint32),
            "IedConnection_setRequestTimeout": (None, c_void_p, c_uint32),
            "IedConnection_connect": (None, c_void_p, _ERR, c_char_p, c_int),
            "IedConnection_close": (None, c_void_p),
            "IedConnection_writeFloatValue": (None, c_void_p, _ERR, c_char_p, c_int, c_float),
            "IedConnection_writeInt32Value": (None, c_void_p, _ERR, c_char_p, c_int, c_int32),
            "IedConnection_writeUnsigned32Value": (None, c_void_p, _ERR, c_char_p, c_int, c_uint32),
            "IedConnection_writeBooleanValue": (None, c_void_p, _ERR, c_char_p, c_int, c_bool),
            "IedConnection_readFloatValue": (c_float, c_void_p, _ERR, c_char_p, c_int),
            "IedConnection_readInt32Value": (c_int32, c_void_p, _ERR, c_char_p, c_int),
            "IedConnection_readUnsigned32Value": (c_uint32, c_void_p, _ERR, c_char_p, c_int),
        }
        for name, (restype, *argtypes) in signatures.items():
            function = getattr(lib, name)
            function.restype = restype
            function.argtypes = argtypes
        _lib = lib
    return _lib


def _fc(name: str) -> int:
    from dms_iec61850.lib import iec

    return int(getattr(iec, f"IEC61850_FC_{name}"))


class _Connection:
    def __init__(self, host: str, port: int, timeout_s: float) -> None:
        self.lib = _native()
        self.handle = self.lib.IedConnection_create()
        self.lib.IedConnection_setConnectTimeout(self.handle, int(timeout_s * 1000))
        self.lib.IedConnection_setRequestTimeout(self.handle, int(timeout_s * 1000))
        self._call("connect", self.lib.IedConnection_connect, host.encode(), int(port))

    def _call(self, what: str, function: Any, *args: Any) -> Any:
        error = c_int(0)
        value = function(self.handle, ctypes.byref(error), *args)
        if error.value != 0:
            raise MmsError(f"{what} failed: libiec61850 IedClientError {error.value}")
        return value

    def write(self, ref: str, fc: str, kind: str, value: float) -> None:
        functions = {"float": self.lib.IedConnection_writeFloatValue, "int": self.lib.IedConnection_writeInt32Value,
                     "unsigned": self.lib.IedConnection_writeUnsigned32Value, "bool": self.lib.IedConnection_writeBooleanValue}
        converted = float(value) if kind == "float" else bool(value) if kind == "bool" else int(value)
        self._call(f"write {ref}[{fc}]", functions[kind], ref.encode(), _fc(fc), converted)

    def read(self, ref: str, fc: str, kind: str) -> float:
        functions = {"float": self.lib.IedConnection_readFloatValue, "int": self.lib.IedConnection_readInt32Value,
                     "unsigned": self.lib.IedConnection_readUnsigned32Value}
        return float(self._call(f"read {ref}[{fc}]", functions[kind], ref.encode(), _fc(fc)))

    def close(self) -> None:
        self.lib.IedConnection_close(self.handle)
        self.lib.IedConnection_destroy(self.handle)


def read_group(host: str, port: int, ld: str, group: int, refs: dict[str, str], *, timeout_s: float = 2.0) -> dict[str, float]:
    """Read the values of one setting group (``refs``: reference without LD -> kind) through the edit buffer."""
    connection = _Connection(host, port, timeout_s)
    try:
        return _read_group(connection, ld, group, refs)
    finally:
        connection.close()


def _read_group(connection: _Connection, ld: str, group: int, refs: dict[str, str]) -> dict[str, float]:
    sgcb = f"{ld}/LLN0.SGCB"
    connection.write(f"{sgcb}.EditSG", "SP", "unsigned", group)
    try:
        return {ref: connection.read(f"{ld}/{ref}", "SE", kind) for ref, kind in refs.items()}
    finally:
        connection.write(f"{sgcb}.EditSG", "SP", "unsigned", 0)


def distribute(settings: DeviceSettings, host: str, port: int, *, group: int = 1, activate: bool = True,
               timeout_s: float = 2.0, tolerance: float = 1e-3) -> DistributionResult:
    """Write ``settings`` into ``group`` of its IED, confirm, activate (optionally), read back and compare (blocking)."""
    if not settings.ied:
        raise MmsError(f"device {settings.device!r} names no IED logical device (settings.ied)")
    ld = settings.ied
    values = setting_values(settings)
    if not values:
        raise MmsError(f"device {settings.device!r} has no PTOC/PIOC settings to distribute")
    sgcb = f"{ld}/LLN0.SGCB"
    connection = _Connection(host, port, timeout_s)
    try:
        connection.write(f"{sgcb}.EditSG", "SP", "unsigned", group)
        for ref, (kind, value) in values.items():
            connection.write(f"{ld}/{ref}", "SE", kind, value)
        connection.write(f"{sgcb}.CnfEdit", "SP", "bool", True)
        if activate:
            connection.write(f"{sgcb}.ActSG", "SP", "unsigned", group)
        active = int(connection.read(f"{sgcb}.ActSG", "SP", "unsigned"))
        kinds = {ref: kind for ref, (kind, _) in values.items()}
        read_back = _read_group(connection, ld, group, kinds)
        if active == group:  # the active values (FC SG) must match too
            for ref, kind in kinds.items():
                active_value = connection.read(f"{ld}/{ref}", "SG", kind)
                if not math.isclose(active_value, read_back[ref], rel_tol=tolerance, abs_tol=tolerance):
                    read_back[ref] = active_value
    finally:
        connection.close()
    written = {ref: float(value) for ref, (_, value) in values.items()}
    mismatches = tuple(
        f"{ld}/{ref}: wrote {written[ref]:g}, read back {read_back[ref]:g}"
        for ref in written if not math.isclose(written[ref], read_back[ref], rel_tol=tolerance, abs_tol=tolerance)
    )
    return DistributionResult(settings.device, ld, group, written, read_back, mismatches, active)
