"""Simulated DLMS/COSEM meter: a gurux-dlms server (logical name referencing, WRAPPER /
IEC 62056-47 over TCP) exposing a twin's points.

One :class:`DlmsMeterServer` is **one meter on one TCP port** (a deployment with several
meters creates several simulator instances, one point map each). The meter serves:

* a Register (class 3) for every point-map entry ``<LN>:2`` — value as an integer with the
  scaler of attribute 3 (``scaler`` setting, default -2 = hundredths) and the unit from the
  twin point's unit; a point the twin marks invalid answers ``temporary-failure``;
* the clock ``0.0.1.0.0.255`` (server time + ``clock_offset_s``);
* a ProfileGeneric per profile LN referenced by entries ``<profile LN>:2:<register LN>``
  (e.g. load profile ``1.0.99.1.0.255``): capture objects = clock + the referenced registers,
  one row captured every ``profile_period_s`` (and at start, and on :meth:`capture_profile`);
* the standard event log ``0.0.99.98.0.255`` (clock + event code ``0.0.96.11.0.255``):
  :meth:`inject_power_failure` appends event 1 (power down) and makes the meter silent (it
  accepts TCP connections but answers nothing, like a meter without supply behind its
  modem); :meth:`restore_power` appends event 2 (power up) and answers again. When the twin
  marks *every* point of the meter invalid (``StaticTwin.invalidate``) the meter fails the
  same way, and recovers when a point turns valid again (``outage_on_invalid``);
* the disconnect control ``0.0.96.3.10.255`` if mapped: methods remote_disconnect (1) and
  remote_reconnect (2) call ``twin.operate(point, 1|2)`` for a double point (1 open,
  2 closed) or ``0|1`` for a binary point, and answer success or ``temporary-failure``.

Transport: an asyncio TCP server (not gurux-net's GXNet server, which cannot close accepted
connections, sets no SO_REUSEADDR and does not expose the bound port — see docs/protocols/dlms.md); the
DLMS codec and the COSEM objects are gurux-dlms'. Each TCP connection gets its own gurux
server instance (its own association state); requests are decoded in a worker thread so a
method can wait for the (async) twin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from dms_hookspecs import REQUIRED, PointKind, Setting, SettingsSchema, SimulatorServer, TwinAPI, Validity
from gurux_dlms import GXDateTime, GXDLMSServer
from gurux_dlms.ValueEventArgs import ValueEventArgs
from gurux_dlms.enums import Authentication, DataType, ErrorCode, InterfaceType, ObjectType, Unit
from gurux_dlms.enums.SourceDiagnostic import SourceDiagnostic
from gurux_dlms.objects import (
    GXDLMSAssociationLogicalName,
    GXDLMSClock,
    GXDLMSData,
    GXDLMSDisconnectControl,
    GXDLMSProfileGeneric,
    GXDLMSRegister,
)
from gurux_dlms.enums import AccessMode, MethodAccessMode
from gurux_dlms.objects.enums import ControlState

from .address import CLOCK_LN, DISCONNECT_CONTROL_LN, EVENT_CODE_LN, EVENT_LOG_LN, parse_address
from .pointmap import read_point_map
from .util import with_defaults

__all__ = ["DlmsMeterServer", "POWER_DOWN", "POWER_UP"]

log = logging.getLogger("leitstand.sim.dlms")

POWER_DOWN = 1  #: standard event log code (IDIS) of a power failure
POWER_UP = 2  #: standard event log code (IDIS) of power restored

_UNITS = {
    "W": Unit.ACTIVE_POWER, "var": Unit.REACTIVE_POWER, "VA": Unit.APPARENT_POWER,
    "Wh": Unit.ACTIVE_ENERGY, "varh": Unit.REACTIVE_ENERGY, "VAh": Unit.APPARENT_ENERGY,
    "A": Unit.CURRENT, "V": Unit.VOLTAGE, "Hz": Unit.FREQUENCY,
}
_MAX_PENDING = 64 * 1024  # bytes of an incomplete request before the connection is dropped


def _stamp(seconds: float) -> GXDateTime:
    return GXDateTime(dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc))


class _IterableEvent(ValueEventArgs):
    """A ValueEventArgs that iterates over itself (the library calls ``list(event)``)."""

    def __iter__(self):
        yield self


class _Request:
    """What ``GXDLMSServer.handleRequest`` expects (the library's GXServerReply lacks the accessors)."""

    __slots__ = ("data", "connectionInfo", "count", "reply")

    def __init__(self, data: bytes, peer: str) -> None:
        self.data = bytearray(data)
        self.connectionInfo = peer
        self.count = 0
        self.reply = None

    def isStreaming(self) -> bool:  # noqa: N802 - gurux naming
        return self.count != 0

    def setReply(self, value) -> None:  # noqa: N802
        self.reply = value

    def getConnectionInfo(self):  # noqa: N802
        return self.connectionInfo

    def getCount(self) -> int:  # noqa: N802
        return self.count

    def setCount(self, value: int) -> None:  # noqa: N802
        self.count = value


class _Association(GXDLMSServer):
    """The gurux server of one TCP connection: objects built from the meter, values read live."""

    def __init__(self, meter: DlmsMeterServer, peer: str) -> None:
        super().__init__(True, InterfaceType.WRAPPER)
        self.meter = meter
        self.peer = peer
        association = GXDLMSAssociationLogicalName()
        if meter.password:
            association.authenticationMechanismName.mechanismId = Authentication.LOW
            association.secret = meter.password.encode()
        self.items.append(association)
        self.items.append(GXDLMSClock(CLOCK_LN))
        self._registers: dict[str, GXDLMSRegister] = {}
        for name in meter.register_points:
            register = GXDLMSRegister(name)
            register.scaler = math.pow(10, meter.scaler)
            register.unit = meter.units.get(name, Unit.NO_UNIT)
            register.setDataType(2, DataType.INT64)
            self.items.append(register)
            self._registers[name] = register
        for name, columns in meter.profiles.items():
            profile = GXDLMSProfileGeneric(name)
            profile.capturePeriod = int(meter.profile_period_s)
            profile.profileEntries = meter.profile_entries
            profile.addCaptureObject(self.items.findByLN(ObjectType.CLOCK, CLOCK_LN), 2, 0)
            for column in columns:
                profile.addCaptureObject(self._registers[column], 2, 0)
            self.items.append(profile)
        code = GXDLMSData(EVENT_CODE_LN)
        code.setDataType(2, DataType.UINT16)
        code.value = 0
        self.items.append(code)
        events = GXDLMSProfileGeneric(EVENT_LOG_LN)
        events.profileEntries = meter.profile_entries
        events.addCaptureObject(self.items.findByLN(ObjectType.CLOCK, CLOCK_LN), 2, 0)
        events.addCaptureObject(code, 2, 0)
        self.items.append(events)
        if meter.disconnect_point is not None:
            self.items.append(GXDLMSDisconnectControl(DISCONNECT_CONTROL_LN))
        for item in self.items:  # the association view (initialize() would append the list itself)
            association.objectList.append(item)
        self.initialize()

    # -- gurux callbacks ------------------------------------------------------------------

    def isTarget(self, serverAddress, clientAddress):  # noqa: N802,N803
        if serverAddress != self.meter.server_address:
            log.warning("dlms meter %r: %s addressed server %s; ignored", self.meter.name, self.peer, serverAddress)
            return False
        return True

    def onValidateAuthentication(self, authentication, password):  # noqa: N802
        if not self.meter.password:
            return SourceDiagnostic.NONE
        if authentication == Authentication.LOW and bytes(password or b"") == self.meter.password.encode():
            return SourceDiagnostic.NONE
        log.warning("dlms meter %r: %s failed authentication", self.meter.name, self.peer)  # never the password
        return SourceDiagnostic.AUTHENTICATION_FAILURE

    # gurux-dlms 1.0.203's get-request-normal path never calls onPreRead (it calls notifyRead()
    # without the event), so live values are filled in here: the access check runs first for
    # every read, normal or with-list, and gets the event.
    def onGetAttributeAccess(self, arg):  # noqa: N802
        self._prepare(arg)
        return AccessMode.READ

    def onGetMethodAccess(self, arg):  # noqa: N802
        # the library then calls onPreAction(list(arg)): make this one event iterable
        arg.__class__ = _IterableEvent
        if arg.target.objectType == ObjectType.DISCONNECT_CONTROL:
            return MethodAccessMode.ACCESS
        if arg.target.objectType == ObjectType.ASSOCIATION_LOGICAL_NAME:
            return MethodAccessMode.ACCESS
        return MethodAccessMode.NO_ACCESS

    def onPreRead(self, args):  # noqa: N802
        # only the get-with-list path calls this; it writes ``error`` as the result choice byte
        # and then the data, so an access error is encoded here: choice 1 + data-access-result
        for e in args:
            self._prepare(e)
            if e.error != ErrorCode.OK:
                code, e.error = int(e.error), 1
                e.handled = True
                e.byteArray = True
                e.value = bytes((code,))

    def _prepare(self, e) -> None:
        if getattr(e, "_leitstand_filled", False):
            return
        e._leitstand_filled = True
        try:
            self.meter._fill(e)
        except Exception as exc:  # noqa: BLE001 - answer hardware-fault, keep serving
            log.error("dlms meter %r: reading %s:%s failed: %s", self.meter.name, e.target.logicalName, e.index, exc)
            e.error = ErrorCode.HARDWARE_FAULT

    def notifyRead(self, *args): ...  # noqa: N802,E704 - called by the library without the event
    def notifyConnected(self, connectionInfo):  # noqa: N802,N803
        self.onConnected(connectionInfo)

    def onPreAction(self, args):  # noqa: N802
        for e in args if isinstance(args, list | tuple) else [args]:
            if e.target.objectType == ObjectType.DISCONNECT_CONTROL:
                e.handled = True
                e.value = 0
                accepted, reason = self.meter._operate_disconnect(e.index)
                if not accepted:
                    log.info("dlms meter %r: disconnect control method %d refused: %s", self.meter.name, e.index, reason)
                    e.error = ErrorCode.TEMPORARY_FAILURE

    def onPreGet(self, args): ...  # noqa: N802,E704
    def onPostGet(self, args): ...  # noqa: N802,E704
    def onFindObject(self, objectType, sn, ln): return None  # noqa: N802,N803,E704
    def onPostRead(self, args=None): ...  # noqa: N802,E704
    def onPreWrite(self, args):  # noqa: N802
        for e in args:
            e.error = ErrorCode.READ_WRITE_DENIED
    def onPostWrite(self, args): ...  # noqa: N802,E704
    def onPostAction(self, args): ...  # noqa: N802,E704
    def onConnected(self, connectionInfo):  # noqa: N802,N803
        log.debug("dlms meter %r: %s associated", self.meter.name, connectionInfo)
    def onInvalidConnection(self, connectionInfo):  # noqa: N802,N803
        log.warning("dlms meter %r: %s: invalid association request", self.meter.name, connectionInfo)
    def onDisconnected(self, connectionInfo):  # noqa: N802,N803
        log.debug("dlms meter %r: %s released", self.meter.name, connectionInfo)


class _Connection(asyncio.Protocol):
    def __init__(self, meter: DlmsMeterServer) -> None:
        self.meter = meter
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.association: _Association | None = None
        self.pending = 0

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if peer else "?"
        self.meter._connections.add(self)
        try:
            self.association = _Association(self.meter, self.peer)
        except Exception:  # noqa: BLE001
            log.exception("dlms meter %r: cannot set up a session for %s", self.meter.name, self.peer)
            transport.close()
            return
        self.task = asyncio.get_running_loop().create_task(self._pump(), name=f"dlms-meter:{self.meter.name}:{self.peer}")

    def data_received(self, data: bytes) -> None:
        if not self.meter.powered:
            return  # a meter without supply answers nothing
        self.queue.put_nowait(bytes(data))

    def connection_lost(self, exc) -> None:
        self.meter._connections.discard(self)
        self.queue.put_nowait(None)

    async def _pump(self) -> None:
        while (data := await self.queue.get()) is not None:
            try:
                reply = await asyncio.to_thread(self._handle, data)
            except Exception as exc:  # noqa: BLE001 - a hostile client must not stop the meter
                log.warning("dlms meter %r: %s sent a request that failed: %s; closing", self.meter.name, self.peer, exc)
                self.close()
                return
            if reply and self.transport is not None and not self.transport.is_closing() and self.meter.powered:
                self.transport.write(bytes(reply))

    def _handle(self, data: bytes):
        association = self.association
        request = _Request(data, self.peer)
        association.handleRequest(request)
        if len(association.receivedData) > _MAX_PENDING:
            raise ValueError(f"more than {_MAX_PENDING} bytes without a complete frame")
        return request.reply

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class DlmsMeterServer(SimulatorServer):
    """A DLMS/COSEM meter (see the module documentation) on ``host:port``."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "address to bind (loopback)"),
            Setting("port", int, REQUIRED, "TCP port (0 picks a free one; see .port after start)"),
            Setting("points_file", str, REQUIRED, "point map CSV (point,address,kind,scale)"),
            Setting("server_address", int, 1, "logical device address (WRAPPER destination port)"),
            Setting("password", str, "", "low-level-security password; empty = no authentication"),
            Setting("scaler", int, -2, "scaler (power of ten, -6..0) of every register"),
            Setting("profile_period_s", float, 60.0, "capture period of the load profiles"),
            Setting("profile_entries", int, 1000, "rows kept per profile / event log"),
            Setting("clock_offset_s", float, 0.0, "meter clock = wall clock + offset"),
            Setting("outage_on_invalid", bool, True, "a power failure when the twin invalidates all points"),
        )
    )

    def __init__(self, name: str, settings, twin: TwinAPI) -> None:
        settings = with_defaults(self.settings_schema, settings, f"dlms meter {name!r}")
        super().__init__(name, settings, twin)
        self.host = settings.get("host", "127.0.0.1")
        self.port = int(settings["port"])
        self.server_address = int(settings.get("server_address", 1))
        self.password = settings.get("password", "") or ""
        self.scaler = int(settings.get("scaler", -2))
        if not -6 <= self.scaler <= 0:
            raise ValueError("scaler must be between -6 and 0")
        self.profile_period_s = float(settings.get("profile_period_s", 60.0))
        self.profile_entries = int(settings.get("profile_entries", 1000))
        self.clock_offset_s = float(settings.get("clock_offset_s", 0.0))
        self.outage_on_invalid = bool(settings.get("outage_on_invalid", True))
        self.entries = read_point_map(settings["points_file"])
        kinds = {spec.id.name: spec for spec in twin.points()}
        self.register_points: dict[str, tuple[str, float]] = {}  # LN -> (point, map scale)
        self.units: dict[str, int] = {}
        self.profiles: dict[str, list[str]] = {}
        column_points: dict[str, tuple[str, float]] = {}
        self.disconnect_point: str | None = None
        self.disconnect_kind = PointKind.DOUBLE
        for entry in self.entries:
            address = parse_address(entry.address)
            if entry.point not in kinds:
                raise ValueError(f"dlms meter {name!r}: the twin has no point {entry.point!r}")
            if address.is_disconnect_control:
                if address.attribute == 2 or self.disconnect_point is None:  # output state drives the twin
                    self.disconnect_point = entry.point
                    self.disconnect_kind = entry.kind
            elif address.is_profile_column:
                self.profiles.setdefault(address.logical_name, []).append(address.column)
                column_points.setdefault(address.column, (entry.point, entry.scale))
            elif address.attribute == 2:
                self.register_points[address.logical_name] = (entry.point, entry.scale)
                self.units[address.logical_name] = _UNITS.get(kinds[entry.point].unit, Unit.NO_UNIT)
            else:
                raise ValueError(f"dlms meter {name!r}: {entry.address!r}: only attribute 2 of registers is served")
        for column, source in column_points.items():  # a profile may capture a register not mapped itself
            self.register_points.setdefault(column, source)
        self.points = [entry.point for entry in self.entries]
        self._values: dict[str, tuple[float, int, float]] = {}
        self._rows: dict[str, list[list[Any]]] = {name: [] for name in self.profiles}
        self._events: list[list[Any]] = []
        self._lock = threading.Lock()
        self.powered = True
        self._outage_by_twin = False
        self._connections: set[_Connection] = set()
        self._server: asyncio.base_events.Server | None = None
        self._unsubscribe = None
        self._capture_task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for point in set(self.points):
            self._values[point] = self.twin.read(point)
        self._unsubscribe = self.twin.subscribe(self._on_change)
        self._server = await self._loop.create_server(
            lambda: _Connection(self), self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.profiles:
            self.capture_profile()
            self._capture_task = self._loop.create_task(self._capture_loop(), name=f"dlms-meter:{self.name}:profile")
        log.info("dlms meter %r serving %d points on %s:%d", self.name, len(self.points), self.host, self.port)

    async def stop(self) -> None:
        if self._capture_task is not None:
            self._capture_task.cancel()
            await asyncio.gather(self._capture_task, return_exceptions=True)
            self._capture_task = None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.close()
        tasks = [c.task for c in list(self._connections) if c.task is not None]
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    # -- simulation hooks ---------------------------------------------------------------------

    def inject_power_failure(self, at: float | None = None) -> None:
        """Power down: log event 1 (power down) and stop answering until :meth:`restore_power`."""
        if not self.powered:
            return
        self._log_event(POWER_DOWN, at)
        self.powered = False
        log.info("dlms meter %r: power failure injected", self.name)

    def restore_power(self, at: float | None = None) -> None:
        """Power up: log event 2 (power up) and answer again."""
        if self.powered:
            return
        self._log_event(POWER_UP, at)
        self.powered = True
        log.info("dlms meter %r: power restored", self.name)

    def capture_profile(self, at: float | None = None) -> None:
        """Append one row (clock + captured registers) to every load profile now."""
        stamp = self.clock() if at is None else at
        with self._lock:
            for name, columns in self.profiles.items():
                row: list[Any] = [_stamp(stamp)]
                for column in columns:
                    value, quality, _ = self._values[self.register_points[column][0]]
                    row.append(self._raw(column, value))
                rows = self._rows[name]
                rows.append(row)
                del rows[: -self.profile_entries]

    def clock(self) -> float:
        return time.time() + self.clock_offset_s

    @property
    def events(self) -> list[tuple[float, int]]:
        with self._lock:
            return [(row[0].value.timestamp(), row[1]) for row in self._events]

    # -- internals ----------------------------------------------------------------------------

    def _log_event(self, code: int, at: float | None) -> None:
        with self._lock:
            self._events.append([_stamp(self.clock() if at is None else at), code])
            del self._events[: -self.profile_entries]

    async def _capture_loop(self) -> None:
        while True:
            await asyncio.sleep(self.profile_period_s)
            if self.powered:
                self.capture_profile()

    def _on_change(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        for point, value, quality, stamp in changes:
            if point in self._values:
                self._values[point] = (value, quality, stamp)
        if self.outage_on_invalid and self.points:
            invalid = all(self._values[p][1] & 0b11 == Validity.INVALID for p in self.points)
            if invalid and self.powered:
                self._outage_by_twin = True
                self.inject_power_failure()
            elif not invalid and self._outage_by_twin:
                self._outage_by_twin = False
                self.restore_power()

    def _raw(self, register: str, value: float) -> int:
        scale = self.register_points[register][1] or 1.0
        return int(round(value / scale / 10.0**self.scaler))

    def _fill(self, e) -> None:
        """Put the live value into the object the client reads (called in the request thread)."""
        target = e.target
        kind = target.objectType
        if not hasattr(e, "isSkipMaxPduSize"):
            e.isSkipMaxPduSize = e.skipMaxPduSize  # gurux-dlms 1.0.203 reads this name (association view)
        if kind == ObjectType.CLOCK and e.index == 2:
            target.time = _stamp(self.clock())
        elif kind == ObjectType.REGISTER and e.index == 2:
            point, _ = self.register_points[target.logicalName]
            value, quality, _ = self._values[point]
            if quality & 0b11 == Validity.INVALID:
                e.error = ErrorCode.TEMPORARY_FAILURE
                target.value = 0
            else:
                target.value = self._raw(target.logicalName, value)
        elif kind == ObjectType.PROFILE_GENERIC and e.index == 2:
            with self._lock:
                rows = list(self._events if target.logicalName == EVENT_LOG_LN else self._rows[target.logicalName])
            if e.selector == 1 and e.parameters:  # by range (clock column), filtered here
                start = _range_bound(e.parameters[1])
                end = _range_bound(e.parameters[2])
                rows = [row for row in rows if start <= row[0].value.timestamp() <= end]
                e.selector = 0
            elif e.selector == 2 and e.parameters:  # by entry (1-based, count 0 = to the end)
                first = max(int(e.parameters[0]), 1)
                last = int(e.parameters[1]) or len(rows)
                rows = rows[first - 1 : last]
                e.selector = 0
            target.buffer = rows
            target.entriesInUse = len(rows)
        elif kind == ObjectType.PROFILE_GENERIC and e.index == 7:
            with self._lock:
                target.entriesInUse = len(self._events if target.logicalName == EVENT_LOG_LN else self._rows[target.logicalName])
        elif kind == ObjectType.DISCONNECT_CONTROL and e.index in (2, 3):
            value, _, _ = self._values[self.disconnect_point]
            connected = int(value) == (2 if self.disconnect_kind is PointKind.DOUBLE else 1)
            target.outputState = connected
            target.controlState = ControlState.CONNECTED if connected else ControlState.DISCONNECTED

    def _operate_disconnect(self, method: int) -> tuple[bool, str]:
        """remote_disconnect (1) / remote_reconnect (2) on the twin; runs in the request thread."""
        if method not in (1, 2):
            return False, f"unknown method {method}"
        if self.disconnect_kind is PointKind.DOUBLE:
            value = 1.0 if method == 1 else 2.0
        else:
            value = 0.0 if method == 1 else 1.0
        future = asyncio.run_coroutine_threadsafe(self.twin.operate(self.disconnect_point, value), self._loop)
        try:
            return future.result(timeout=30.0)
        except Exception as exc:  # noqa: BLE001
            future.cancel()
            return False, f"{type(exc).__name__}: {exc}"


def _range_bound(value) -> float:
    """A range-descriptor bound (octet-string date-time or GXDateTime) as epoch seconds."""
    from gurux_dlms.internal._GXCommon import _GXCommon
    from gurux_dlms.internal._GXDataInfo import _GXDataInfo
    from gurux_dlms.GXByteBuffer import GXByteBuffer
    from gurux_dlms.GXDLMSSettings import GXDLMSSettings

    if isinstance(value, GXDateTime):
        return value.value.timestamp()
    info = _GXDataInfo()
    info.type_ = DataType.DATETIME
    parsed = _GXCommon.getData(GXDLMSSettings(True, None), GXByteBuffer(bytearray(value)), info)
    return parsed.value.timestamp()
