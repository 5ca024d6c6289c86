"""IEC 61850 MMS simulator server: an ``IedServer`` whose data model is built in code from the point map.

Each point map entry creates (or reuses) a data object of a fitting common data class:

==========================  ============================  ====================================
address ends with           kind                          CDC
==========================  ============================  ====================================
``.mag.f`` / ``.mag.i``     analog                        MV
``.phsX.cVal.mag.f``        analog                        WYE
``.stVal``                  binary / double / other       SPS / DPS / INS
``.actVal``                 counter                       BCR
``.setMag.f`` / ``.setVal`` setpoint or analog (settings)  ASG / ING
data object (``CSWI1.Pos``) double / binary / step        DPC / SPC / ISC with ``ctl_model``
==========================  ============================  ====================================

Reports: every logical device gets, in its ``LLN0``, a data set per functional constraint of its
monitored points (``dsMX``, ``dsST``; members are the data objects, FCDA ``LN$FC$DO``, so a report
carries value, ``q`` and ``t`` together) and for each data set an unbuffered (``urcbMX01``) and a
buffered (``brcbMX01``) report control block with trigger options data-change, quality-change,
integrity and GI, ``bufTm`` = ``report_buf_tm_ms``. Settings (FC SP) get no data set: a client polls them.

Twin changes are written with ``IedServer_update*`` inside ``lockDataModel``; controls reach
``twin.operate`` through a control handler that answers ``WAITING`` until the twin has decided,
then positive or negative (``LastApplError`` add cause *blocked-by-process* and CommandTermination-
under the enhanced-security models).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Sequence
from typing import Any

from dms_hookspecs import PointKind, Setting, SettingsSchema, SimulatorServer

from .address import Address, parse_address, to_iec_quality
from .lib import iec
from .settinggroups import SettingGroups

log = logging.getLogger(__name__)

CTL_MODELS = {
    "direct-normal": "CDC_CTL_MODEL_DIRECT_NORMAL",
    "sbo-normal": "CDC_CTL_MODEL_SBO_NORMAL",
    "direct-enhanced": "CDC_CTL_MODEL_DIRECT_ENHANCED",
    "sbo-enhanced": "CDC_CTL_MODEL_SBO_ENHANCED",
}

REPORT_KINDS = {"both": (False, True), "unbuffered": (False,), "buffered": (True,), "none": ()}
#: functional constraints that get a data set and report control blocks
REPORTED_FCS = ("MX", "ST")

# object references with a control handler in this process: libiec61850's Python event
# subscribers live in one process-wide map keyed by the object reference
_CONTROL_REFS: set[str] = set()


class ServerError(RuntimeError):
    pass


class _ControlHandler(iec.ControlHandlerForPython):
    """SWIG director called from the libiec61850 server thread for every control step."""

    def __init__(self, owner: Iec61850Server, point: str, kind: PointKind, scale: float) -> None:
        super().__init__()
        self.owner, self.point, self.kind, self.scale = owner, point, kind, scale
        self.pending: concurrent.futures.Future | None = None
        self.started = 0.0

    def trigger(self) -> None:
        try:
            result = self.owner._on_control(self)
        except Exception:  # noqa: BLE001 - never let an exception cross into C
            log.exception("control handler for %s failed", self.point)
            result = iec.CONTROL_RESULT_FAILED
        self._libiec61850_control_handler_result = result


class Iec61850Server(SimulatorServer):
    """Serves the twin's points of a point map as one IED on ``host:port``."""

    settings_schema = SettingsSchema(
        (
            Setting("points_file", str, None, "point map CSV (point,address,kind,scale)"),
            Setting("host", str, "127.0.0.1", "listening address (loopback)"),
            Setting("port", int, 102, "MMS TCP port"),
            Setting("ied_name", str, "", "IED name prefixed to the logical device names of the addresses"),
            Setting("ctl_model", str, "sbo-enhanced", "control model of controllable objects: " + ", ".join(CTL_MODELS)),
            Setting("operate_timeout_s", float, 10.0, "longest time the twin may take for a control"),
            Setting("reports", str, "both", "report control blocks per data set: " + ", ".join(REPORT_KINDS)),
            Setting("report_buf_tm_ms", int, 50, "buffer time of the report control blocks (changes within it share a report)"),
            Setting("protection_lns", list, [], "protection LNs with SG/SE settings and an SGCB per LD: [\"IED1LD0/PTOC1\", \"IED1LD0/PIOC1\"]"),
            Setting("setting_groups", int, 2, "setting groups of the SGCBs of protection_lns"),
        )
    )

    def __init__(self, name: str, settings, twin) -> None:
        super().__init__(name, settings, twin)
        if settings.get("ctl_model", "sbo-enhanced") not in CTL_MODELS:
            raise ValueError(f"ctl_model must be one of {sorted(CTL_MODELS)}")
        if settings.get("reports", "both") not in REPORT_KINDS:
            raise ValueError(f"reports must be one of {sorted(REPORT_KINDS)}")
        self._model = None
        self._server = None
        self._subscribers: list[Any] = []
        self._handlers: list[_ControlHandler] = []
        self._refs: list[str] = []
        self._entries: dict[str, tuple[Address, Any, Any, Any, int, float]] = {}
        self._unsubscribe = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.setting_groups: SettingGroups | None = None
        self.port = int(settings.get("port", 102))

    # -- model ---------------------------------------------------------------------------------------
    def _build(self, entries) -> None:
        ied = self.settings.get("ied_name", "")
        self._model = iec.IedModel_create(ied)
        devices: dict[str, Any] = {}
        lln0: dict[str, Any] = {}
        nodes: dict[tuple[str, str], Any] = {}
        objects: set[tuple[str, str, str]] = set()
        ctl_model = getattr(iec, CTL_MODELS[self.settings.get("ctl_model", "sbo-enhanced")])
        parsed = []
        for entry in entries:
            address = parse_address(entry.address, entry.kind)
            parsed.append((entry, address))
            if address.ld not in devices:
                device = iec.LogicalDevice_create(address.ld, self._model)
                devices[address.ld] = device
                lln0[address.ld] = iec.LogicalNode_create("LLN0", device)
            key = (address.ld, address.ln)
            if key not in nodes:
                nodes[key] = iec.LogicalNode_create(address.ln, devices[address.ld])
            do_key = (address.ld, address.ln, address.path[0])
            if do_key in objects:
                continue
            objects.add(do_key)
            self._create_object(address, entry.kind, iec.toModelNode(nodes[key]), ctl_model)
        if self.settings.get("protection_lns"):
            self.setting_groups = SettingGroups(int(self.settings.get("setting_groups", 2)))
            self.setting_groups.build(self._model, devices, lln0, list(self.settings["protection_lns"]))
        self._create_reports(parsed, lln0)
        for entry, address in parsed:
            full = lambda ref: (f"{ied}{ref}" if ied else ref)  # noqa: E731
            value = self._attribute(full(address.value_ref))
            if value is None:
                raise ServerError(f"{self.name}: {entry.address!r} does not name a data attribute of the built model")
            quality = self._attribute(full(address.do_ref + ".q"))
            stamp = self._attribute(full(address.do_ref + ".t"))
            self._entries[entry.point] = (address, value, quality, stamp, iec.DataAttribute_getType(value), entry.scale or 1.0)

    def _create_reports(self, parsed, lln0: dict[str, Any]) -> None:
        """Data sets (one per LD and reported FC, data-object members) and their report control blocks."""
        kinds = REPORT_KINDS[self.settings.get("reports", "both")]
        if not kinds:
            return
        members: dict[tuple[str, str], dict[str, None]] = {}
        for _entry, address in parsed:
            fc = address.value_fc
            if fc in REPORTED_FCS:
                members.setdefault((address.ld, fc), {})[f"{address.ln}${fc}${address.path[0]}"] = None
        trg_ops = iec.TRG_OPT_DATA_CHANGED | iec.TRG_OPT_QUALITY_CHANGED | iec.TRG_OPT_INTEGRITY | iec.TRG_OPT_GI
        options = (iec.RPT_OPT_SEQ_NUM | iec.RPT_OPT_TIME_STAMP | iec.RPT_OPT_REASON_FOR_INCLUSION
                   | iec.RPT_OPT_DATA_SET | iec.RPT_OPT_CONF_REV)
        buf_tm = int(self.settings.get("report_buf_tm_ms", 50))
        for (ld, fc), variables in members.items():
            data_set = iec.DataSet_create(f"ds{fc}", lln0[ld])
            for variable in variables:
                iec.DataSetEntry_create(data_set, variable, -1, None)
            for buffered in kinds:
                name = f"{'brcb' if buffered else 'urcb'}{fc}01"
                iec.ReportControlBlock_create(name, lln0[ld], f"{ld}/LLN0.{name}", buffered, f"ds{fc}", 1, trg_ops,
                                              options | (iec.RPT_OPT_ENTRY_ID if buffered else 0), buf_tm, 0)

    def _attribute(self, ref: str):
        node = iec.IedModel_getModelNodeByObjectReference(self._model, ref)
        return iec.toDataAttribute(node) if node else None

    @staticmethod
    def _create_object(address: Address, kind: PointKind, parent, ctl_model: int) -> None:
        name = address.path[0]
        if address.control:
            if kind is PointKind.DOUBLE:
                iec.CDC_DPC_create(name, parent, 0, ctl_model)
            elif kind is PointKind.BINARY:
                iec.CDC_SPC_create(name, parent, 0, ctl_model)
            else:
                iec.CDC_ISC_create(name, parent, 0, ctl_model, False)
            return
        attribute = address.path[address.do_len]
        integer = address.path[-1] == "i"
        if attribute == "cVal" and address.do_len >= 2:
            iec.CDC_WYE_create(name, parent, 0)
        elif attribute == "cVal":
            iec.CDC_CMV_create(name, parent, 0)
        elif attribute in ("mag", "instMag"):
            iec.CDC_MV_create(name, parent, 0, integer)
        elif attribute == "stVal":
            if kind is PointKind.DOUBLE:
                iec.CDC_DPS_create(name, parent, 0)
            elif kind is PointKind.BINARY:
                iec.CDC_SPS_create(name, parent, 0)
            else:
                iec.CDC_INS_create(name, parent, 0)
        elif attribute == "actVal":
            iec.CDC_BCR_create(name, parent, 0)
        elif attribute == "setMag":
            iec.CDC_ASG_create(name, parent, 0, integer)
        elif attribute == "setVal":
            iec.CDC_ING_create(name, parent, 0)
        elif attribute == "valWTr":
            iec.CDC_BSC_create(name, parent, 0, iec.CDC_CTL_MODEL_NONE, False)
        else:
            raise ServerError(f"cannot build a data object for {address}")

    # -- values --------------------------------------------------------------------------------------
    def _write(self, point: str, value: float, quality: int, stamp: float) -> None:
        address, attribute, q_attr, t_attr, kind, scale = self._entries[point]
        raw = value / scale
        server = self._server
        if kind in (iec.IEC61850_FLOAT32, iec.IEC61850_FLOAT64):
            iec.IedServer_updateFloatAttributeValue(server, attribute, float(raw))
        elif kind == iec.IEC61850_BOOLEAN:
            iec.IedServer_updateBooleanAttributeValue(server, attribute, bool(raw))
        elif kind == iec.IEC61850_CODEDENUM:
            iec.IedServer_updateDbposValue(server, attribute, int(raw) & 3)
        elif kind in (iec.IEC61850_INT8U, iec.IEC61850_INT16U, iec.IEC61850_INT24U, iec.IEC61850_INT32U):
            iec.IedServer_updateUnsignedAttributeValue(server, attribute, max(0, int(round(raw))))
        else:
            iec.IedServer_updateInt32AttributeValue(server, attribute, int(round(raw)))
        if q_attr is not None:
            iec.IedServer_updateQuality(server, q_attr, to_iec_quality(quality))
        if t_attr is not None:
            iec.IedServer_updateUTCTimeAttributeValue(server, t_attr, int(stamp * 1000))

    def _on_twin(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        if self._server is None:
            return
        mine = [change for change in changes if change[0] in self._entries]
        if not mine:
            return
        iec.IedServer_lockDataModel(self._server)
        try:
            for point, value, quality, stamp in mine:
                self._write(point, value, quality, stamp)
        finally:
            iec.IedServer_unlockDataModel(self._server)

    # -- controls (server thread) --------------------------------------------------------------------
    def _on_control(self, handler: _ControlHandler) -> int:
        if handler.pending is None:
            raw = handler._libiec61850_mms_value
            mms_type = iec.MmsValue_getType(raw)
            if mms_type == iec.MMS_BOOLEAN:
                flag = bool(iec.MmsValue_getBoolean(raw))
                value = (2.0 if flag else 1.0) if handler.kind is PointKind.DOUBLE else float(flag)
            elif mms_type == iec.MMS_FLOAT:
                value = float(iec.MmsValue_toFloat(raw))
            else:
                value = float(iec.MmsValue_toInt32(raw))
            value *= handler.scale
            log.info("%s: control %s = %g", self.name, handler.point, value)
            handler.started = time.monotonic()
            handler.pending = asyncio.run_coroutine_threadsafe(self.twin.operate(handler.point, value), self._loop)
            return iec.CONTROL_RESULT_WAITING
        future = handler.pending
        if not future.done():
            if time.monotonic() - handler.started < self.settings.get("operate_timeout_s", 10.0):
                return iec.CONTROL_RESULT_WAITING
            future.cancel()
            accepted, reason = False, "twin timed out"
        else:
            try:
                accepted, reason = future.result()
            except Exception as exc:  # noqa: BLE001
                accepted, reason = False, f"{type(exc).__name__}: {exc}"
        handler.pending = None
        if accepted:
            return iec.CONTROL_RESULT_OK
        log.info("%s: control %s refused: %s", self.name, handler.point, reason)
        iec.ControlAction_setAddCause(handler._libiec61850_control_action, iec.ADD_CAUSE_BLOCKED_BY_PROCESS)
        return iec.CONTROL_RESULT_FAILED

    # -- lifecycle -----------------------------------------------------------------------------------
    async def start(self) -> None:
        from dms_hookspecs.pointmap import read_point_map

        if self._server is not None:
            return
        self._loop = asyncio.get_running_loop()
        entries = read_point_map(self.settings["points_file"])
        self._build(entries)
        self._server = iec.IedServer_create(self._model)
        ied = self.settings.get("ied_name", "")
        try:
            if self.setting_groups is not None:
                self.setting_groups.install(self._server)
            for entry in entries:
                address, *_ = self._entries[entry.point]
                if not address.control:
                    continue
                ref = f"{ied}{address.do_ref}" if ied else address.do_ref
                if ref in _CONTROL_REFS:
                    raise ServerError(f"{self.name}: {ref} is already served by another IEC 61850 server in this process")
                node = iec.IedModel_getModelNodeByObjectReference(self._model, ref)
                handler = _ControlHandler(self, entry.point, entry.kind, entry.scale or 1.0)
                subscriber = iec.ControlSubscriberForPython()
                subscriber.setIedServer(self._server)
                subscriber.setControlObject(iec.toDataObject(node))
                subscriber.setControlHandler(handler.__disown__())  # the subscriber deletes it
                if not subscriber.subscribe():
                    raise ServerError(f"{self.name}: cannot install the control handler of {ref}")
                _CONTROL_REFS.add(ref)
                self._refs.append(ref)
                self._subscribers.append(subscriber)
                self._handlers.append(handler)
            iec.IedServer_lockDataModel(self._server)
            try:
                for point in self._entries:
                    try:
                        value, quality, stamp = self.twin.read(point)
                    except KeyError:
                        continue
                    self._write(point, value, quality, stamp)
            finally:
                iec.IedServer_unlockDataModel(self._server)
            iec.IedServer_setLocalIpAddress(self._server, self.settings.get("host", "127.0.0.1"))
            iec.IedServer_start(self._server, self.port)
            if not iec.IedServer_isRunning(self._server):
                raise ServerError(f"{self.name}: cannot listen on {self.settings.get('host', '127.0.0.1')}:{self.port}")
        except BaseException:
            self._teardown()
            raise
        self._unsubscribe = self.twin.subscribe(self._on_twin)
        log.info("%s: IEC 61850 server on %s:%d, %d points", self.name, self.settings.get("host", "127.0.0.1"), self.port, len(self._entries))

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        server = self._server
        if server is not None:
            # IedServer_stop joins the server thread, which may wait for the GIL in a control handler
            await asyncio.to_thread(iec.IedServer_stop, server)
        self._teardown()

    def _teardown(self) -> None:
        for handler in self._handlers:
            if handler.pending is not None:
                handler.pending.cancel()
        self._handlers.clear()
        self._subscribers.clear()  # C++ destructors unregister the references and delete the handlers
        for ref in self._refs:
            _CONTROL_REFS.discard(ref)
        self._refs.clear()
        if self._server is not None and self.setting_groups is not None:
            self.setting_groups.release()
        if self._server is not None:
            if iec.IedServer_isRunning(self._server):
                iec.IedServer_stop(self._server)
            iec.IedServer_destroy(self._server)
            self._server = None
        if self._model is not None:
            iec.IedModel_destroy(self._model)
            self._model = None
        self._entries.clear()
