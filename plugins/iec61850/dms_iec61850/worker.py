"""The IEC 61850 client, run in a child process of the source (``python -m dms_iec61850.worker``).

Why a process: a client and a simulator server for the same IED in one process would share
libiec61850's process-wide state (the SWIG binding's handler map keyed by object reference), and a
crash in native code must not take the kernel down. The client calls libiec61850 through ctypes
(:mod:`dms_iec61850.native`), which releases the GIL during every blocking call, so reports and
CommandTerminations (callbacks on libiec61850's receive thread) are handled while a request is
outstanding.

Acquisition (``mode``): ``report`` — at connect the client reads the report control blocks of each
logical device's ``LLN0`` and their data sets, enables one RCB per data set that covers mapped points
(``report_type`` preferred, the other type as fallback; an unbuffered RCB already enabled by another
client is skipped), then triggers a general interrogation on each; points no enabled data set covers
are polled every ``poll_period_s``. ``poll`` — every point is polled.

Protocol on stdin/stdout: JSON lines. First line from the parent: the configuration. Then
``{"op": "select"|"operate", "id", "idx", "value"}``. To the parent: ``{"ev": "up"}``,
``{"ev": "down", "reason"}``, ``{"ev": "data", "d": [[idx, value, quality_bits, source_time], ...]}``,
``{"ev": "result", "id", "status", "reason"}``, ``{"ev": "log", "level", "msg"}``.
"""

from __future__ import annotations

import ctypes
import json
import math
import queue
import re
import sys
import threading
import time

from dms_hookspecs import Detail, PointKind, Validity

from .address import Address, from_iec_quality, parse_address
from .lib import iec
from .native import REPORT_CALLBACK, TERMINATION_CALLBACK, lib, string_list

_out_lock = threading.Lock()
INVALID_REF = int(Validity.INVALID) | int(Detail.BAD_REFERENCE)
INVALID_FAIL = int(Validity.INVALID) | int(Detail.FAILURE)
LINK_ERRORS = {iec.IED_ERROR_NOT_CONNECTED, iec.IED_ERROR_CONNECTION_LOST, iec.IED_ERROR_TIMEOUT}
ENHANCED = (iec.CONTROL_MODEL_SBO_ENHANCED, iec.CONTROL_MODEL_DIRECT_ENHANCED)
#: a data-set member: ``LD/LN.DO[.SDO…][FC]``
_MEMBER = re.compile(r"^(?P<ln>[^/]+/[^.\[]+)(?:\.(?P<path>[^\[]+))?\[(?P<fc>[A-Z]{2})\]$")
OPT_FLDS = (iec.RPT_OPT_SEQ_NUM | iec.RPT_OPT_TIME_STAMP | iec.RPT_OPT_REASON_FOR_INCLUSION | iec.RPT_OPT_DATA_SET
            | iec.RPT_OPT_CONF_REV)


def emit(**message) -> None:
    line = json.dumps(message, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(level: str, msg: str) -> None:
    emit(ev="log", level=level, msg=msg)


class LinkLost(Exception):
    pass


def _fc(fc: str) -> int:
    return getattr(iec, f"IEC61850_FC_{fc}")


def _index_path(spec: int | None, names) -> tuple[int, ...] | None:
    """Element indices of a path of names inside an MMS type specification (None: not there)."""
    path = []
    index = ctypes.c_int(-1)
    for name in names:
        if not spec:
            return None
        spec = lib.MmsVariableSpecification_getChildSpecificationByName(spec, name.encode(), ctypes.byref(index))
        if not spec:
            return None
        path.append(index.value)
    return tuple(path)


def _at(value: int | None, path: tuple[int, ...]) -> int | None:
    for index in path:
        if not value:
            return None
        value = lib.MmsValue_getElement(value, index)
    return value or None


def _number(element) -> float | None:
    if not element:
        return None
    kind = lib.MmsValue_getType(element)
    if kind == iec.MMS_FLOAT:
        return float(lib.MmsValue_toDouble(element))
    if kind == iec.MMS_BOOLEAN:
        return 1.0 if lib.MmsValue_getBoolean(element) else 0.0
    if kind == iec.MMS_INTEGER:
        return float(lib.MmsValue_toInt64(element))
    if kind == iec.MMS_UNSIGNED:
        return float(lib.MmsValue_toUint32(element))
    if kind == iec.MMS_BIT_STRING and lib.MmsValue_getBitStringSize(element) == 2:
        return float(lib.Dbpos_fromMmsValue(element))
    return None


def sample(value, quality, stamp, scale: float, default_time: float) -> tuple[float, int, float]:
    """(value × scale, packed quality, source time) of a value element and its ``q``/``t`` elements."""
    number = _number(value)
    if number is None:
        return (math.nan, INVALID_REF, default_time)
    bits = from_iec_quality(lib.Quality_fromMmsValue(quality)) if quality else 0
    ms = lib.MmsValue_getUtcTimeInMs(stamp) if stamp else 0
    return (number * scale, bits, ms / 1000.0 if ms else default_time)


class _Control:
    """One ControlObjectClient and the CommandTermination it waits for."""

    def __init__(self, ref: str, connection: int) -> None:
        self.ref = ref
        self.client = lib.ControlObjectClient_create(ref.encode(), connection)
        if not self.client:
            raise LookupError(f"{ref} is not a control object of the server")
        self.model = lib.ControlObjectClient_getControlModel(self.client)
        self.event = threading.Event()
        self.outcome: tuple[int, int, int] | None = None
        self.enhanced = self.model in ENHANCED
        self._callback = TERMINATION_CALLBACK(self._terminated)  # referenced as long as the client lives
        if self.enhanced:
            lib.ControlObjectClient_setCommandTerminationHandler(self.client, self._callback, None)

    def _terminated(self, _parameter, client) -> None:  # libiec61850 receive thread
        try:
            error = lib.ControlObjectClient_getLastApplError(client)
            self.outcome = (int(error.ctlNum), int(error.error), int(error.addCause))
            self.event.set()
        except Exception as exc:  # noqa: BLE001 - never let an exception cross into C
            log("warning", f"{self.ref}: CommandTermination handler: {exc}")

    def last_error(self) -> str:
        error = lib.ControlObjectClient_getLastApplError(self.client)
        return f"LastApplError error={int(error.error)} addCause={int(error.addCause)}"

    def close(self) -> None:
        if self.client:
            lib.ControlObjectClient_destroy(self.client)
            self.client = None


class _Report:
    """An enabled report control block and the points its data set delivers."""

    def __init__(self, ref: str, rcb: int, buffered: bool, rpt_id: str, data_set: str) -> None:
        self.ref, self.rcb, self.buffered, self.rpt_id, self.data_set = ref, rcb, buffered, rpt_id, data_set
        #: (idx, (member, path), (member, path) | None, (member, path) | None, scale)
        self.points: list[tuple] = []
        self.members: tuple[int, ...] = ()
        self.callback = None
        self.reports = 0


class Worker:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.mode = config.get("mode", "report")
        self.points: list[tuple[int, Address, PointKind, float]] = []
        for idx, (address, kind, scale) in enumerate(config["points"]):
            kind = PointKind(kind)
            self.points.append((idx, parse_address(address, kind), kind, float(scale or 1.0)))
        self.groups: dict[tuple[str, str], list] = {}
        for point in self.points:
            address = point[1]
            self.groups.setdefault((address.ln_ref, address.value_fc), []).append(point)
        self.commands: queue.Queue = queue.Queue()
        self.connection: int | None = None
        self.controls: dict[int, _Control] = {}
        self.last: dict[int, tuple] = {}
        self.specs: dict[tuple[str, str], int | None] = {}
        self.reports: list[_Report] = []
        self.entry_ids: dict[str, bytes] = {}  # last EntryID per buffered RCB, kept across reconnects
        self.last_report = time.monotonic()

    # -- connection ----------------------------------------------------------------------------------
    def connect(self) -> int:
        connection = lib.IedConnection_create()
        lib.IedConnection_setConnectTimeout(connection, int(self.config["connect_timeout_s"] * 1000))
        lib.IedConnection_setRequestTimeout(connection, int(self.config["request_timeout_s"] * 1000))
        error = ctypes.c_int(0)
        lib.IedConnection_connect(connection, ctypes.byref(error), self.config["host"].encode(), int(self.config["port"]))
        if error.value != iec.IED_ERROR_OK:
            lib.IedConnection_destroy(connection)
            raise LinkLost(f"connect to {self.config['host']}:{self.config['port']} failed (IedClientError {error.value})")
        return connection

    def close(self) -> None:
        for control in self.controls.values():
            control.close()
        self.controls.clear()
        if self.connection is not None:
            lib.IedConnection_close(self.connection)
            lib.IedConnection_destroy(self.connection)  # also drops the report handlers
            self.connection = None
        for report in self.reports:
            lib.ClientReportControlBlock_destroy(report.rcb)
        self.reports.clear()  # the callbacks may go now: the connection that called them is gone
        for spec in self.specs.values():
            if spec:
                lib.MmsVariableSpecification_destroy(spec)
        self.specs.clear()

    def _spec(self, ln_ref: str, fc: str) -> int | None:
        """Type specification of a logical node's attributes of one FC (cached per association)."""
        key = (ln_ref, fc)
        if key not in self.specs:
            error = ctypes.c_int(0)
            spec = lib.IedConnection_getVariableSpecification(self.connection, ctypes.byref(error), ln_ref.encode(), _fc(fc))
            if error.value in LINK_ERRORS:
                raise LinkLost(f"reading the model of {ln_ref}[{fc}] failed (IedClientError {error.value})")
            self.specs[key] = spec or None
        return self.specs[key]

    # -- discovery -----------------------------------------------------------------------------------
    def discover(self) -> dict:
        """Per (logical node, FC) group: the element index paths of each point's value, q and t."""
        plan = {}
        for (ln_ref, fc), points in self.groups.items():
            spec = self._spec(ln_ref, fc)
            entries = []
            for idx, address, _kind, scale in points:
                value_path = _index_path(spec, address.value_path)
                if value_path is None:
                    log("warning", f"{address}: not in the server's model")
                    entries.append((idx, None, None, None, scale))
                    continue
                entries.append((idx, value_path, _index_path(spec, address.do_path + ("q",)),
                                _index_path(spec, address.do_path + ("t",)), scale))
            plan[(ln_ref, fc)] = entries
        return plan

    def subscribe(self) -> set[int]:
        """Enable report control blocks for the mapped points; returns the indices they deliver."""
        covered: set[int] = set()
        preferred = self.config.get("report_type", "unbuffered") == "buffered"
        devices = sorted({address.ld for _, address, _, _ in self.points})
        candidates = []
        for ld in devices:
            for buffered in (preferred, not preferred):
                error = ctypes.c_int(0)
                names = string_list(lib.IedConnection_getLogicalNodeDirectory(
                    self.connection, ctypes.byref(error), f"{ld}/LLN0".encode(),
                    iec.ACSI_CLASS_BRCB if buffered else iec.ACSI_CLASS_URCB))
                if error.value in LINK_ERRORS:
                    raise LinkLost(f"browsing {ld}/LLN0 failed (IedClientError {error.value})")
                candidates += [(f"{ld}/LLN0.{'BR' if buffered else 'RP'}.{name}", buffered) for name in names]
        for ref, buffered in candidates:
            if len(covered) == len(self.points):
                break
            report = self._prepare(ref, buffered, covered)
            if report is None:
                continue
            if self._enable(report):
                covered.update(point[0] for point in report.points)
                self.reports.append(report)
            else:
                lib.ClientReportControlBlock_destroy(report.rcb)
        return covered

    def _prepare(self, ref: str, buffered: bool, covered: set[int]) -> _Report | None:
        error = ctypes.c_int(0)
        rcb = lib.IedConnection_getRCBValues(self.connection, ctypes.byref(error), ref.encode(), None)
        if error.value in LINK_ERRORS:
            raise LinkLost(f"reading {ref} failed (IedClientError {error.value})")
        if error.value != iec.IED_ERROR_OK or not rcb:
            log("warning", f"{ref}: cannot read the report control block (IedClientError {error.value})")
            return None
        data_set = (lib.ClientReportControlBlock_getDataSetReference(rcb) or b"").decode()
        if not buffered and lib.ClientReportControlBlock_getRptEna(rcb):
            log("info", f"{ref}: enabled by another client, not used")
            lib.ClientReportControlBlock_destroy(rcb)
            return None
        members = []
        if data_set:
            members = string_list(lib.IedConnection_getDataSetDirectory(
                self.connection, ctypes.byref(error), data_set.replace("$", ".").encode(), None))
            if error.value in LINK_ERRORS:
                raise LinkLost(f"reading data set {data_set} failed (IedClientError {error.value})")
        report = _Report(ref, rcb, buffered, (lib.ClientReportControlBlock_getRptId(rcb) or b"").decode(), data_set)
        parsed = []  # (ln_ref, fc, path, member spec)
        point_lns = {(address.ln_ref, address.value_fc) for _, address, _, _ in self.points}
        for member in members:
            match = _MEMBER.match(member)
            if match is None or (match["ln"], match["fc"]) not in point_lns:
                parsed.append(None)
                continue
            path = tuple(match["path"].split(".")) if match["path"] else ()
            spec = self._spec(match["ln"], match["fc"])
            prefix = _index_path(spec, path)
            parsed.append((match["ln"], match["fc"], path, prefix))

        def locate(ln_ref: str, fc: str, names: tuple[str, ...]):
            for number, item in enumerate(parsed):
                if item is None or item[0] != ln_ref or item[1] != fc or item[3] is None:
                    continue
                path, prefix = item[2], item[3]
                if names[: len(path)] == path:
                    full = _index_path(self.specs[(ln_ref, fc)], names)
                    if full is None:
                        return None
                    return (number, full[len(prefix):])
            return None

        for idx, address, _kind, scale in self.points:
            if idx in covered:
                continue
            value = locate(address.ln_ref, address.value_fc, address.value_path)
            if value is None:
                continue
            report.points.append((idx, value, locate(address.ln_ref, address.value_fc, address.do_path + ("q",)),
                                  locate(address.ln_ref, address.value_fc, address.do_path + ("t",)), scale))
        if not report.points:
            lib.ClientReportControlBlock_destroy(rcb)
            return None
        report.members = tuple(sorted({location[0] for point in report.points for location in point[1:4] if location}))
        return report

    def _enable(self, report: _Report) -> bool:
        rcb, error = report.rcb, ctypes.c_int(0)
        report.callback = REPORT_CALLBACK(lambda _parameter, client_report, report=report: self._on_report(report, client_report))
        lib.IedConnection_installReportHandler(self.connection, report.ref.encode(), report.rpt_id.encode() or None,
                                               report.callback, None)
        period = float(self.config.get("integrity_period_s", 0) or 0)
        trg_ops = iec.TRG_OPT_DATA_CHANGED | iec.TRG_OPT_QUALITY_CHANGED | iec.TRG_OPT_GI
        if period > 0:
            trg_ops |= iec.TRG_OPT_INTEGRITY
        lib.ClientReportControlBlock_setTrgOps(rcb, trg_ops)
        lib.ClientReportControlBlock_setIntgPd(rcb, int(period * 1000))
        lib.ClientReportControlBlock_setOptFlds(rcb, OPT_FLDS | (iec.RPT_OPT_ENTRY_ID if report.buffered else 0))
        lib.ClientReportControlBlock_setRptEna(rcb, True)
        mask = (iec.RCB_ELEMENT_TRG_OPS | iec.RCB_ELEMENT_INTG_PD | iec.RCB_ELEMENT_OPT_FLDS | iec.RCB_ELEMENT_RPT_ENA)
        buf_tm = int(self.config.get("report_buf_tm_ms", -1))
        if buf_tm >= 0:
            lib.ClientReportControlBlock_setBufTm(rcb, buf_tm)
            mask |= iec.RCB_ELEMENT_BUF_TM
        entry = None
        if report.buffered:
            known = self.entry_ids.get(report.ref)
            if known:  # resume after the last entry received before the link was lost
                entry = lib.MmsValue_newOctetString(len(known), len(known))
                lib.MmsValue_setOctetString(entry, known, len(known))
                lib.ClientReportControlBlock_setEntryId(rcb, entry)
                mask |= iec.RCB_ELEMENT_ENTRY_ID
            else:  # first enable: old events of the buffer are not ours; the GI brings the state
                lib.ClientReportControlBlock_setPurgeBuf(rcb, True)
                mask |= iec.RCB_ELEMENT_PURGE_BUF
        else:
            lib.ClientReportControlBlock_setResv(rcb, True)
            mask |= iec.RCB_ELEMENT_RESV
        try:
            lib.IedConnection_setRCBValues(self.connection, ctypes.byref(error), rcb, mask, True)
        finally:
            if entry:
                lib.MmsValue_delete(entry)
        if error.value in LINK_ERRORS:
            raise LinkLost(f"enabling {report.ref} failed (IedClientError {error.value})")
        if error.value != iec.IED_ERROR_OK and entry:
            log("info", f"{report.ref}: resuming after the last EntryID refused (IedClientError {error.value}); purging")
            self.entry_ids.pop(report.ref, None)
            return self._enable(report)
        if error.value != iec.IED_ERROR_OK:
            log("warning", f"{report.ref}: cannot enable reporting (IedClientError {error.value})")
            lib.IedConnection_uninstallReportHandler(self.connection, report.ref.encode())
            return False
        return True

    def general_interrogation(self) -> None:
        for report in self.reports:
            error = ctypes.c_int(0)
            lib.ClientReportControlBlock_setGI(report.rcb, True)
            lib.IedConnection_setRCBValues(self.connection, ctypes.byref(error), report.rcb, iec.RCB_ELEMENT_GI, True)
            if error.value in LINK_ERRORS:
                raise LinkLost(f"general interrogation of {report.ref} failed (IedClientError {error.value})")
            if error.value != iec.IED_ERROR_OK:
                log("warning", f"{report.ref}: general interrogation refused (IedClientError {error.value})")

    # -- reports (libiec61850 receive thread) ---------------------------------------------------------
    def _on_report(self, report: _Report, client_report) -> None:
        try:
            self.last_report = time.monotonic()
            report.reports += 1
            values = lib.ClientReport_getDataSetValues(client_report)
            if not values:
                return
            now = time.time()
            default_time = lib.ClientReport_getTimestamp(client_report) / 1000.0 if lib.ClientReport_hasTimestamp(client_report) else now
            included = {m for m in report.members if lib.ClientReport_getReasonForInclusion(client_report, m)}
            if not included:
                return
            elements = {m: lib.MmsValue_getElement(values, m) for m in included}
            rows = []
            for idx, value, quality, stamp, scale in report.points:
                if value[0] not in included and (quality is None or quality[0] not in included):
                    continue
                found = sample(
                    _at(elements.get(value[0]) or lib.MmsValue_getElement(values, value[0]), value[1]),
                    _at(lib.MmsValue_getElement(values, quality[0]), quality[1]) if quality else None,
                    _at(lib.MmsValue_getElement(values, stamp[0]), stamp[1]) if stamp else None,
                    scale, default_time)
                rows.append([idx, *found])
            if report.buffered:
                entry = lib.ClientReport_getEntryId(client_report)
                if entry:
                    size = lib.MmsValue_getOctetStringSize(entry)
                    self.entry_ids[report.ref] = ctypes.string_at(lib.MmsValue_getOctetStringBuffer(entry), size)
                if lib.ClientReport_hasBufOvfl(client_report) and lib.ClientReport_getBufOvfl(client_report):
                    log("warning", f"{report.ref}: buffer overflow at the IED, events were lost")
            if rows:
                emit(ev="data", d=rows)
        except Exception as exc:  # noqa: BLE001 - never let an exception cross into C
            log("warning", f"{report.ref}: cannot decode a report: {type(exc).__name__}: {exc}")

    # -- polling -------------------------------------------------------------------------------------
    def poll(self, plan: dict, everything: bool) -> None:
        now = time.time()
        changes = []
        for (ln_ref, fc), entries in plan.items():
            value = None
            if self.specs.get((ln_ref, fc)):
                error = ctypes.c_int(0)
                value = lib.IedConnection_readObject(self.connection, ctypes.byref(error), ln_ref.encode(), _fc(fc))
                if error.value in LINK_ERRORS:
                    if value:
                        lib.MmsValue_delete(value)
                    raise LinkLost(f"reading {ln_ref}[{fc}] failed (IedClientError {error.value})")
                if error.value != iec.IED_ERROR_OK and value:
                    lib.MmsValue_delete(value)
                    value = None
            try:
                for idx, value_path, q_path, t_path, scale in entries:
                    if not value or value_path is None:
                        found = (math.nan, INVALID_REF, now)
                    else:
                        found = sample(_at(value, value_path), _at(value, q_path) if q_path else None,
                                       _at(value, t_path) if t_path else None, scale, now)
                    if everything or self.last.get(idx) != found:
                        self.last[idx] = found
                        changes.append([idx, *found])
            finally:
                if value:
                    lib.MmsValue_delete(value)
        if changes:
            emit(ev="data", d=changes)

    # -- commands ------------------------------------------------------------------------------------
    def command(self, message: dict) -> None:
        op, idx, value = message["op"], int(message["idx"]), float(message["value"])
        try:
            status, reason = self._command(op, idx, value)
        except LinkLost:
            emit(ev="result", id=message["id"], status="failed", reason="connection lost")
            raise
        except Exception as exc:  # noqa: BLE001
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        emit(ev="result", id=message["id"], status=status, reason=reason)

    def _command(self, op: str, idx: int, value: float) -> tuple[str, str]:
        if self.connection is None:
            return "failed", "not connected"
        _, address, kind, scale = self.points[idx]
        control = self.controls.get(idx)
        if control is None:
            control = self.controls[idx] = _Control(address.do_ref, self.connection)
        if kind is PointKind.DOUBLE:
            if int(value) not in (1, 2):
                return "rejected", f"breaker command must be 1 (open) or 2 (close), got {value:g}"
            ctl = lib.MmsValue_newBoolean(int(value) == 2)
        elif kind is PointKind.BINARY:
            ctl = lib.MmsValue_newBoolean(bool(value))
        else:
            ctl = lib.MmsValue_newIntegerFromInt32(int(round(value / scale)))
        try:
            if op == "select":
                if control.model == iec.CONTROL_MODEL_SBO_ENHANCED:
                    ok = lib.ControlObjectClient_selectWithValue(control.client, ctl)
                elif control.model == iec.CONTROL_MODEL_SBO_NORMAL:
                    ok = lib.ControlObjectClient_select(control.client)
                else:
                    return "succeeded", f"{address.do_ref}: direct control model, no select needed"
                if ok:
                    return "succeeded", f"{address.do_ref} selected"
                self._check_link()
                return "failed", f"{address.do_ref}: select refused ({control.last_error()})"
            control.event.clear()
            control.outcome = None
            if not lib.ControlObjectClient_operate(control.client, ctl, 0):
                self._check_link()
                return "failed", f"{address.do_ref}: operate refused ({control.last_error()})"
            if not control.enhanced:
                return "succeeded", f"{address.do_ref}: operate confirmed"
            if not control.event.wait(float(self.config["command_timeout_s"])):
                return "timeout", f"{address.do_ref}: no CommandTermination within {self.config['command_timeout_s']} s"
            _, error, add_cause = control.outcome
            if error or add_cause:
                return "failed", f"{address.do_ref}: CommandTermination- (error={error} addCause={add_cause})"
            return "succeeded", f"{address.do_ref}: CommandTermination+"
        finally:
            lib.MmsValue_delete(ctl)

    def _check_link(self) -> None:
        if lib.IedConnection_getState(self.connection) != iec.IED_STATE_CONNECTED:
            raise LinkLost("connection lost during a command")

    # -- main loop -----------------------------------------------------------------------------------
    def serve_commands(self, until: float) -> None:
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            try:
                message = self.commands.get(timeout=remaining)
            except queue.Empty:
                return
            if message is None:
                raise SystemExit(0)
            if self.connection is None:
                emit(ev="result", id=message["id"], status="failed", reason="not connected")
            else:
                self.command(message)

    def run(self) -> None:
        backoff = self.config["reconnect_min_s"]
        period = self.config["poll_period_s"]
        integrity = float(self.config.get("integrity_period_s", 0) or 0)
        while True:
            try:
                self.connection = self.connect()
                plan = self.discover()
                covered = self.subscribe() if self.mode == "report" else set()
                polled = {key: kept for key, entries in plan.items()
                          if (kept := [entry for entry in entries if entry[0] not in covered])}
                emit(ev="up")
                if self.mode == "report":
                    log("info", f"reports: {len(covered)} points through {', '.join(r.ref for r in self.reports) or 'no RCB'}; "
                                f"{sum(map(len, polled.values()))} points polled")
                self.last_report = time.monotonic()
                self.general_interrogation()
                backoff = self.config["reconnect_min_s"]
                everything = True
                next_poll = time.monotonic()
                while True:
                    now = time.monotonic()
                    if lib.IedConnection_getState(self.connection) != iec.IED_STATE_CONNECTED:
                        raise LinkLost("connection closed")
                    if integrity > 0 and self.reports and now - self.last_report > 2 * integrity + 1:
                        raise LinkLost(f"no report for {now - self.last_report:.1f} s (integrity period {integrity:g} s)")
                    if polled and now >= next_poll:
                        self.poll(polled, everything)
                        everything = False
                        next_poll = now + period
                    wait = 0.1 if not polled else max(0.0, min(0.1, next_poll - time.monotonic()))
                    self.serve_commands(time.monotonic() + wait)
            except LinkLost as exc:
                emit(ev="down", reason=str(exc))
            self.close()
            self.last.clear()
            self.serve_commands(time.monotonic() + backoff)
            backoff = min(backoff * 2, self.config["reconnect_max_s"])


def main() -> None:
    config = json.loads(sys.stdin.readline())
    worker = Worker(config)

    def read_stdin() -> None:
        for line in sys.stdin:
            try:
                worker.commands.put(json.loads(line))
            except ValueError:
                log("warning", f"bad command line {line[:80]!r}")
        worker.commands.put(None)  # parent closed the pipe: exit

    threading.Thread(target=read_stdin, daemon=True, name="stdin").start()
    try:
        worker.run()
    finally:
        worker.close()


if __name__ == "__main__":
    main()
