"""The IEC 61850 client, run in a child process of the source (``python -m dms_iec61850.worker``).

Why a process: the SWIG binding keeps the GIL during every blocking libiec61850 call (a connect to a
silent peer would freeze the kernel's event loop for the whole connect timeout), its event handlers
live in a process-wide map keyed by object reference (a client and a simulator server for the same
IED in one process would collide), and a crash in native code must not take the kernel down.

Protocol on stdin/stdout: JSON lines. First line from the parent: the configuration. Then
``{"op": "select"|"operate", "id", "idx", "value"}``. To the parent: ``{"ev": "up"}``,
``{"ev": "down", "reason"}``, ``{"ev": "data", "d": [[idx, value, quality_bits, source_time], ...]}``,
``{"ev": "result", "id", "status", "reason"}``, ``{"ev": "log", "level", "msg"}``.
"""

from __future__ import annotations

import json
import math
import queue
import sys
import threading
import time

from dms_hookspecs import Detail, PointKind, Validity

from .address import from_iec_quality, parse_address
from .lib import iec

_out_lock = threading.Lock()
INVALID_REF = int(Validity.INVALID) | int(Detail.BAD_REFERENCE)
INVALID_FAIL = int(Validity.INVALID) | int(Detail.FAILURE)
LINK_ERRORS = {iec.IED_ERROR_NOT_CONNECTED, iec.IED_ERROR_CONNECTION_LOST, iec.IED_ERROR_TIMEOUT}


def emit(**message) -> None:
    line = json.dumps(message, separators=(",", ":"))
    with _out_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def log(level: str, msg: str) -> None:
    emit(ev="log", level=level, msg=msg)


class LinkLost(Exception):
    pass


class _TermHandler(iec.CommandTermHandler):
    """Director called from the libiec61850 receive thread on CommandTermination+/-."""

    def __init__(self, control: _Control) -> None:
        super().__init__()
        self.control = control

    def trigger(self) -> None:
        try:
            error = iec.ControlObjectClient_getLastApplError(self._libiec61850_control_object_client)
            self.control.terminated(int(error.ctlNum), int(error.error), int(error.addCause))
        except Exception as exc:  # noqa: BLE001
            log("warning", f"command termination handler: {exc}")


class _Control:
    """One ControlObjectClient and the CommandTermination it waits for."""

    def __init__(self, ref: str, connection) -> None:
        self.ref = ref
        self.client = iec.ControlObjectClient_create(ref, connection)
        if self.client is None:
            raise LookupError(f"{ref} is not a control object of the server")
        self.model = iec.ControlObjectClient_getControlModel(self.client)
        self.event = threading.Event()
        self.outcome: tuple[int, int, int] | None = None
        self.subscriber = None
        if self.model in (iec.CONTROL_MODEL_SBO_ENHANCED, iec.CONTROL_MODEL_DIRECT_ENHANCED):
            self.subscriber = iec.CommandTermSubscriber()
            self.subscriber.setLibiec61850ControlObjectClient(self.client)
            self.subscriber.setEventHandler(_TermHandler(self).__disown__())  # deleted by the subscriber
            if not self.subscriber.subscribe():
                log("warning", f"{ref}: cannot subscribe to CommandTermination")

    def terminated(self, ctl_num: int, error: int, add_cause: int) -> None:
        self.outcome = (ctl_num, error, add_cause)
        self.event.set()

    def last_error(self) -> str:
        error = iec.ControlObjectClient_getLastApplError(self.client)
        return f"LastApplError error={int(error.error)} addCause={int(error.addCause)}"

    def close(self) -> None:
        self.subscriber = None  # C++ destructor unregisters it and deletes the handler
        if self.client is not None:
            iec.ControlObjectClient_destroy(self.client)
            self.client = None


class Worker:
    def __init__(self, config: dict) -> None:
        self.config = config
        self.points = []  # (idx, address, kind, scale)
        for idx, (address, kind, scale) in enumerate(config["points"]):
            kind = PointKind(kind)
            self.points.append((idx, parse_address(address, kind), kind, float(scale or 1.0)))
        self.groups: dict[tuple[str, str], list] = {}
        for point in self.points:
            address = point[1]
            self.groups.setdefault((address.ln_ref, address.value_fc), []).append(point)
        self.commands: queue.Queue = queue.Queue()
        self.connection = None
        self.controls: dict[int, _Control] = {}
        self.last: dict[int, tuple] = {}

    # -- connection ----------------------------------------------------------------------------------
    def connect(self):
        connection = iec.IedConnection_create()
        iec.IedConnection_setConnectTimeout(connection, int(self.config["connect_timeout_s"] * 1000))
        iec.IedConnection_setRequestTimeout(connection, int(self.config["request_timeout_s"] * 1000))
        _, error = iec.IedConnection_connect(connection, self.config["host"], int(self.config["port"]))
        if error != iec.IED_ERROR_OK:
            iec.IedConnection_destroy(connection)
            raise LinkLost(f"connect to {self.config['host']}:{self.config['port']} failed (IedClientError {error})")
        return connection

    def close(self) -> None:
        for control in self.controls.values():
            control.close()
        self.controls.clear()
        if self.connection is not None:
            iec.IedConnection_close(self.connection)
            iec.IedConnection_destroy(self.connection)
            self.connection = None

    # -- reading -------------------------------------------------------------------------------------
    def discover(self) -> dict:
        """Variable specifications of every (logical node, FC) group, and the MMS paths of each point."""
        plan = {}
        for (ln_ref, fc), points in self.groups.items():
            spec, error = iec.IedConnection_getVariableSpecification(self.connection, ln_ref, getattr(iec, f"IEC61850_FC_{fc}"))
            if error in LINK_ERRORS:
                raise LinkLost(f"reading the model of {ln_ref}[{fc}] failed (IedClientError {error})")
            entries = []
            for idx, address, kind, scale in points:
                value_path = "$".join(address.value_path)
                do_path = "$".join(address.do_path)
                if spec is None or iec.MmsVariableSpecification_getNamedVariableRecursive(spec, value_path) is None:
                    log("warning", f"{address}: not in the server's model (IedClientError {error})")
                    entries.append((idx, None, None, None, scale))
                    continue
                has = lambda path: iec.MmsVariableSpecification_getNamedVariableRecursive(spec, path) is not None  # noqa: E731
                entries.append((idx, value_path, f"{do_path}$q" if has(f"{do_path}$q") else None,
                                f"{do_path}$t" if has(f"{do_path}$t") else None, scale))
            plan[(ln_ref, fc)] = (spec, entries)
        return plan

    def poll(self, plan: dict, everything: bool) -> None:
        now = time.time()
        changes = []
        for (ln_ref, fc), (spec, entries) in plan.items():
            value = None
            if spec is not None:
                value, error = iec.IedConnection_readObject(self.connection, ln_ref, getattr(iec, f"IEC61850_FC_{fc}"))
                if error in LINK_ERRORS:
                    raise LinkLost(f"reading {ln_ref}[{fc}] failed (IedClientError {error})")
                if error != iec.IED_ERROR_OK:
                    value = None
            try:
                for idx, value_path, q_path, t_path, scale in entries:
                    sample = self.extract(value, spec, value_path, q_path, t_path, scale, now)
                    if everything or self.last.get(idx) != sample:
                        self.last[idx] = sample
                        changes.append([idx, *sample])
            finally:
                if value is not None:
                    iec.MmsValue_delete(value)
        if changes:
            emit(ev="data", d=changes)

    @staticmethod
    def extract(value, spec, value_path, q_path, t_path, scale, now) -> tuple:
        if value is None or value_path is None:
            return (math.nan, INVALID_REF, now)
        element = iec.MmsValue_getSubElement(value, spec, value_path)
        number = _number(element)
        if number is None:
            return (math.nan, INVALID_REF, now)
        quality = 0
        if q_path is not None:
            q = iec.MmsValue_getSubElement(value, spec, q_path)
            if q is not None:
                quality = from_iec_quality(iec.Quality_fromMmsValue(q))
        stamp = now
        if t_path is not None:
            t = iec.MmsValue_getSubElement(value, spec, t_path)
            if t is not None:
                ms = iec.MmsValue_getUtcTimeInMs(t)
                if ms:
                    stamp = ms / 1000.0
        return (number * scale, quality, stamp)

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
            ctl = iec.MmsValue_newBoolean(int(value) == 2)
        elif kind is PointKind.BINARY:
            ctl = iec.MmsValue_newBoolean(bool(value))
        else:
            ctl = iec.MmsValue_newIntegerFromInt32(int(round(value / scale)))
        try:
            if op == "select":
                if control.model == iec.CONTROL_MODEL_SBO_ENHANCED:
                    ok = iec.ControlObjectClient_selectWithValue(control.client, ctl)
                elif control.model == iec.CONTROL_MODEL_SBO_NORMAL:
                    ok = iec.ControlObjectClient_select(control.client)
                else:
                    return "succeeded", f"{address.do_ref}: direct control model, no select needed"
                if ok:
                    return "succeeded", f"{address.do_ref} selected"
                self._check_link()
                return "failed", f"{address.do_ref}: select refused ({control.last_error()})"
            control.event.clear()
            control.outcome = None
            if not iec.ControlObjectClient_operate(control.client, ctl, 0):
                self._check_link()
                return "failed", f"{address.do_ref}: operate refused ({control.last_error()})"
            if control.subscriber is None:
                return "succeeded", f"{address.do_ref}: operate confirmed"
            if not control.event.wait(float(self.config["command_timeout_s"])):
                return "timeout", f"{address.do_ref}: no CommandTermination within {self.config['command_timeout_s']} s"
            _, error, add_cause = control.outcome
            if error or add_cause:
                return "failed", f"{address.do_ref}: CommandTermination- (error={error} addCause={add_cause})"
            return "succeeded", f"{address.do_ref}: CommandTermination+"
        finally:
            iec.MmsValue_delete(ctl)

    def _check_link(self) -> None:
        if iec.IedConnection_getState(self.connection) != iec.IED_STATE_CONNECTED:
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
        while True:
            try:
                self.connection = self.connect()
                plan = self.discover()
                emit(ev="up")
                backoff = self.config["reconnect_min_s"]
                everything = True
                while True:
                    started = time.monotonic()
                    if iec.IedConnection_getState(self.connection) != iec.IED_STATE_CONNECTED:
                        raise LinkLost("connection closed")
                    self.poll(plan, everything)
                    everything = False
                    self.serve_commands(started + period)
            except LinkLost as exc:
                emit(ev="down", reason=str(exc))
            self.close()
            self.last.clear()
            self.serve_commands(time.monotonic() + backoff)
            backoff = min(backoff * 2, self.config["reconnect_max_s"])


def _number(element) -> float | None:
    if element is None:
        return None
    kind = iec.MmsValue_getType(element)
    if kind == iec.MMS_FLOAT:
        return float(iec.MmsValue_toFloat(element))
    if kind == iec.MMS_BOOLEAN:
        return 1.0 if iec.MmsValue_getBoolean(element) else 0.0
    if kind == iec.MMS_INTEGER:
        return float(iec.MmsValue_toInt64(element))
    if kind == iec.MMS_UNSIGNED:
        return float(iec.MmsValue_toUint32(element))
    if kind == iec.MMS_BIT_STRING and iec.MmsValue_getBitStringSize(element) == 2:
        return float(iec.Dbpos_fromMmsValue(element))
    return None


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
