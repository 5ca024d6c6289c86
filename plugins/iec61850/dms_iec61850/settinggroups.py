"""Setting groups for the simulator IED: protection logical nodes with SG/SE settings and an SGCB.

For every ``protection_lns`` entry (``"IED1LD0/PTOC1"``, ``"IED1LD0/PIOC1"``) the server's model gets
the logical node with its settings, each as a functional-constraint ``SG`` attribute (the active
group's value, read-only) and an ``SE`` twin (the edit buffer):

* PTOC: ``StrVal.setMag.f``, ``TmMult.setMag.f`` (FLOAT32), ``OpDlTmms.setVal`` (INT32, ms),
  ``TmACrv.setCharact`` (ENUMERATED, IEC 61850-7-3 curve);
* PIOC: ``StrVal.setMag.f``, ``OpDlTmms.setVal``.

Each logical device with such LNs gets ``LLN0.SGCB`` with ``setting_groups`` groups (active 1). The
values of every group are kept here; libiec61850 handles SelectEditSG / SetEditSGValue /
ConfirmEditSGValues / SelectActiveSG and calls the handlers installed through ctypes (the SWIG
binding cannot pass C callbacks): selecting an edit group copies its values into the SE
attributes, confirming copies the SE values into the group (and into SG if it is active),
activating a group copies its values into SG.
"""

from __future__ import annotations

import ctypes
import logging
from ctypes import c_bool, c_uint8, c_void_p
from typing import Any

from .lib import iec

__all__ = ["SettingGroups", "SETTINGS_BY_CLASS"]

log = logging.getLogger(__name__)

#: LN class -> (data object, attribute path, type)
SETTINGS_BY_CLASS: dict[str, tuple[tuple[str, tuple[str, ...], str], ...]] = {
    "PTOC": (("StrVal", ("setMag", "f"), "float"), ("TmMult", ("setMag", "f"), "float"),
             ("OpDlTmms", ("setVal",), "int"), ("TmACrv", ("setCharact",), "enum")),
    "PIOC": (("StrVal", ("setMag", "f"), "float"), ("OpDlTmms", ("setVal",), "int")),
}

_ACT_HANDLER = ctypes.CFUNCTYPE(c_bool, c_void_p, c_void_p, c_uint8, c_void_p)
_EDIT_HANDLER = ctypes.CFUNCTYPE(c_bool, c_void_p, c_void_p, c_uint8, c_void_p)
_CONFIRM_HANDLER = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_uint8)

_lib: Any = None


def _native() -> Any:
    global _lib
    if _lib is None:
        from .native import lib

        for name, handler in (("IedServer_setActiveSettingGroupChangedHandler", _ACT_HANDLER),
                              ("IedServer_setEditSettingGroupChangedHandler", _EDIT_HANDLER),
                              ("IedServer_setEditSettingGroupConfirmationHandler", _CONFIRM_HANDLER)):
            function = getattr(lib, name)
            function.restype = None
            function.argtypes = [c_void_p, c_void_p, handler, c_void_p]
        _lib = lib
    return _lib


def _pointer(swig_object: Any) -> int:
    return int(getattr(swig_object, "this", swig_object))


class SettingGroups:
    """Builds the protection LNs and the SGCBs into a model under construction, then serves them."""

    def __init__(self, groups: int) -> None:
        if not 1 <= groups <= 255:
            raise ValueError(f"setting_groups must be 1..255, got {groups}")
        self.groups = groups
        self._sgcbs: dict[str, Any] = {}  # LD -> SGCB
        self._entries: dict[str, list[tuple[str, str, Any, Any]]] = {}  # LD -> (ref, kind, SG attr, SE attr)
        self.values: dict[str, dict[int, dict[str, float]]] = {}  # LD -> group -> ref -> value
        self._server: Any = None
        self._callbacks: list[Any] = []

    def build(self, model: Any, devices: dict[str, Any], lln0: dict[str, Any], refs: list[str]) -> None:
        """Add the LNs named by ``refs`` (``LD/PTOC1``) to ``model``; ``devices``/``lln0`` are the server's maps."""
        for ref in refs:
            ld, _, ln_name = ref.partition("/")
            cls = ln_name[:4]
            if not ld or cls not in SETTINGS_BY_CLASS:
                raise ValueError(f"protection_lns: {ref!r} is not LD/PTOCn or LD/PIOCn")
            if ld not in devices:
                devices[ld] = iec.LogicalDevice_create(ld, model)
                lln0[ld] = iec.LogicalNode_create("LLN0", devices[ld])
            if ld not in self._sgcbs:
                self._sgcbs[ld] = iec.SettingGroupControlBlock_create(lln0[ld], 1, self.groups)
                self.values[ld] = {g: {} for g in range(1, self.groups + 1)}
                self._entries[ld] = []
            node = iec.toModelNode(iec.LogicalNode_create(ln_name, devices[ld]))
            for do_name, path, kind in SETTINGS_BY_CLASS[cls]:
                do = iec.toModelNode(iec.DataObject_create(do_name, node, 0))
                attributes = []
                for fc in (iec.IEC61850_FC_SG, iec.IEC61850_FC_SE):
                    parent = do
                    for depth, name in enumerate(path):
                        leaf = depth == len(path) - 1
                        if not leaf:
                            attribute_type = iec.IEC61850_CONSTRUCTED
                        else:
                            attribute_type = {"float": iec.IEC61850_FLOAT32, "int": iec.IEC61850_INT32, "enum": iec.IEC61850_ENUMERATED}[kind]
                        iec.DataAttribute_create(name, parent, attribute_type, fc, 0, 0, 0)
                        # the binding casts only LNs and DOs to ModelNode: look the new attribute up instead
                        parent = iec.ModelNode_getChildWithFc(parent, name, fc)
                    attributes.append(iec.toDataAttribute(parent))
                full = f"{ld}/{ln_name}.{do_name}.{'.'.join(path)}"
                self._entries[ld].append((full, kind, attributes[0], attributes[1]))
                for group in self.values[ld].values():
                    group[full] = 0.0

    # -- serving -----------------------------------------------------------------------------

    def install(self, server: Any) -> None:
        """Install the SGCB handlers on a created (not yet started) ``IedServer``."""
        if not self._sgcbs:
            return
        self._server = server
        iec.IedServer_setWriteAccessPolicy(server, iec.IEC61850_FC_SE, iec.ACCESS_POLICY_ALLOW)
        lib = _native()
        for ld, sgcb in self._sgcbs.items():
            act = _ACT_HANDLER(lambda _p, _s, group, _c, ld=ld: self._activate(ld, group))
            edit = _EDIT_HANDLER(lambda _p, _s, group, _c, ld=ld: self._select_edit(ld, group))
            confirm = _CONFIRM_HANDLER(lambda _p, _s, group, ld=ld: self._confirm(ld, group))
            self._callbacks += [act, edit, confirm]
            lib.IedServer_setActiveSettingGroupChangedHandler(_pointer(server), _pointer(sgcb), act, None)
            lib.IedServer_setEditSettingGroupChangedHandler(_pointer(server), _pointer(sgcb), edit, None)
            lib.IedServer_setEditSettingGroupConfirmationHandler(_pointer(server), _pointer(sgcb), confirm, None)
            self._load(ld, 1, sg=True)

    def _set(self, attribute: Any, kind: str, value: float) -> None:
        mms = iec.IedServer_getAttributeValue(self._server, attribute)
        if kind == "float":
            iec.MmsValue_setFloat(mms, float(value))
        else:
            iec.MmsValue_setInt32(mms, int(value))

    def _get(self, attribute: Any, kind: str) -> float:
        mms = iec.IedServer_getAttributeValue(self._server, attribute)
        return float(iec.MmsValue_toFloat(mms)) if kind == "float" else float(iec.MmsValue_toInt32(mms))

    def _load(self, ld: str, group: int, *, sg: bool) -> None:
        values = self.values[ld][group]
        for ref, kind, sg_attr, se_attr in self._entries[ld]:
            self._set(sg_attr if sg else se_attr, kind, values[ref])

    def active_group(self, ld: str) -> int:
        return int(iec.IedServer_getActiveSettingGroup(self._server, self._sgcbs[ld]))

    # handlers: libiec61850's server thread, with the GIL (ctypes callbacks); never raise into C
    def _activate(self, ld: str, group: int) -> bool:
        try:
            self._load(ld, group, sg=True)
            log.info("%s: setting group %d active", ld, group)
            return True
        except Exception:  # noqa: BLE001
            log.exception("activating setting group %d of %s failed", group, ld)
            return False

    def _select_edit(self, ld: str, group: int) -> bool:
        try:
            self._load(ld, group, sg=False)
            return True
        except Exception:  # noqa: BLE001
            log.exception("selecting edit group %d of %s failed", group, ld)
            return False

    def _confirm(self, ld: str, group: int) -> None:
        try:
            values = self.values[ld][group]
            for ref, kind, _sg_attr, se_attr in self._entries[ld]:
                values[ref] = self._get(se_attr, kind)
            if group == self.active_group(ld):
                self._load(ld, group, sg=True)
            log.info("%s: setting group %d confirmed", ld, group)
        except Exception:  # noqa: BLE001
            log.exception("confirming setting group %d of %s failed", group, ld)

    def release(self) -> None:
        self._server = None
        self._callbacks.clear()
