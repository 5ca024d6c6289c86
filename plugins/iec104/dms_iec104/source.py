"""IEC 60870-5-104 source (controlling station / client) built on c104.

One source instance is one TCP (or TLS) connection to one outstation (RTU), possibly with
several common addresses. Behaviour:

* connect with a timeout, STARTDT, then a general interrogation per common address;
  optional cyclic general interrogation (``interrogation_period_s``) and clock sync;
* spontaneous and interrogated values arrive in c104's receive thread; they are buffered
  and handed to the asyncio loop, which publishes them as one :class:`MeasurementBatch`;
* IEC 104 quality descriptor → packed IEC 61850 quality, CP56Time2a → ``source_time``;
* link loss → every point of the connection gets invalid + old-data at once, an alarm is
  raised, and ``run()`` reconnects with exponential backoff (capped);
* commands: single/double/regulating-step/set-point commands, direct or select-before-
  operate per point; success only on a positive ACT_CON (and ACT_TERM after select/execute).

This module must not use ``from __future__ import annotations``: c104 checks callback
signatures by their annotation text.
"""

import asyncio
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import c104
import numpy as np

from dms_hookspecs.pointmap import load_point_map as load_source_map, point_map_settings
from dms_hookspecs import (
    REQUIRED,
    Alarm,
    AlarmPriority,
    AlarmState,
    Command,
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
)

from .tls import TlsConfigError
from .mapping import LINK_LOST_BITS, Iec104Point, command_type, load_point_map, monitor_type, quality_to_bits
from .tls import TLS_SETTINGS, describe_tls
from .tunnel import TlsTunnel, client_ssl_context

__all__ = ["Iec104Source"]

_OPEN = (c104.ConnectionState.OPEN,)
# causes of transmission that may carry monitoring data (c104 accepts any COT "for compatibility")
_MONITOR_COTS = frozenset(
    [c104.Cot.PERIODIC, c104.Cot.BACKGROUND_SCAN, c104.Cot.SPONTANEOUS, c104.Cot.REQUEST, c104.Cot.RETURN_INFO_REMOTE, c104.Cot.RETURN_INFO_LOCAL]
    + [cot for name, cot in c104.Cot.__members__.items() if name.startswith("INTERROGATED_BY")]
)
_MAX_STEPS = 64


class _ConnectFailed(Exception):
    pass


def _analog(value: Any) -> float:
    return float(value)


def _binary(value: Any) -> float:
    return 1.0 if value else 0.0


def _enum(value: Any) -> float:  # c104.Double (0..3) and c104.Int7 step positions
    return float(int(value))


_CONVERT: dict[PointKind, Callable[[Any], float]] = {
    PointKind.ANALOG: _analog,
    PointKind.SETPOINT: _analog,
    PointKind.BINARY: _binary,
    PointKind.DOUBLE: _enum,
    PointKind.STEP: _enum,
}


class Iec104Source(Source):
    """Client side of IEC 60870-5-104: telemetry and commands for the points of a point map."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, REQUIRED, "outstation IP address"),
            Setting("port", int, 2404, "outstation TCP port (IEC 104: 2404, with TLS usually 19998)"),
            *point_map_settings(points_file_required=True),
            Setting("originator_address", int, 0, "originator address of this controlling station (0-255)"),
            Setting("connect_timeout_s", float, 5.0, "TCP connect + STARTDT confirmation timeout"),
            Setting("command_timeout_s", float, 5.0, "wait for ACT_CON (and ACT_TERM) of a command or interrogation"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay; doubles per failed attempt"),
            Setting("reconnect_max_s", float, 30.0, "reconnect delay cap"),
            Setting("interrogation_period_s", float, 0.0, "cyclic general interrogation period (0 = only after connect)"),
            Setting("clock_sync", bool, False, "send a clock synchronisation command after connect"),
            Setting("select_before_operate", bool, False, "default for controllable points without an 'sbo' column"),
            Setting("command_time_tag", bool, True, "send commands with CP56Time2a (C_*_TA_1 / C_SE_TC_1)"),
            Setting("control_ioa_offset", int, 100000, "control IOA = IOA + offset unless the address gives one"),
            Setting("t1_s", int, 0, "APCI t1 (ack timeout) in s; 0 = library default (15 s)"),
            Setting("t3_s", int, 0, "APCI t3 (test frame interval) in s; 0 = library default (20 s)"),
            Setting("tick_rate_ms", int, 50, "c104 client thread tick (>= 50)"),
            Setting("publish_delay_s", float, 0.005, "values received within this time are published as one batch"),
            *TLS_SETTINGS,
            Setting("tls_server_name", str, "", "host name expected in the outstation's certificate (default: host)"),
        )
    )

    def __init__(self, name: str, settings) -> None:
        super().__init__(name, settings)
        for key in ("connect_timeout_s", "command_timeout_s", "reconnect_min_s", "reconnect_max_s"):
            if not settings[key] > 0:
                raise ValueError(f"{key} must be positive")
        if settings["reconnect_max_s"] < settings["reconnect_min_s"]:
            raise ValueError("reconnect_max_s must not be smaller than reconnect_min_s")
        if not 0 <= settings["originator_address"] <= 255:
            raise ValueError("originator_address must be 0..255")
        from_model = not (settings["points_file"] and settings["point_map"] != "cim")
        self.map: list[Iec104Point] = load_point_map(
            settings["points_file"] if not from_model else f"model:{settings['connection'] or name}",
            control_ioa_offset=settings["control_ioa_offset"], sbo_default=settings["select_before_operate"],
            entries=load_source_map(settings, name) if from_model else None,
        )
        self._by_name = {p.point: p for p in self.map}
        self._common_addresses = sorted({p.common_address for p in self.map})
        if settings["tls"]:
            if settings["tls_only_known"] and not settings["tls_peer_certs"]:
                raise TlsConfigError("tls_only_known needs tls_peer_certs")
            client_ssl_context(settings)  # validate the TLS files now; a fresh context per connection
        self.log = logging.getLogger(f"leitstand.source.{name}")
        self._peer = f"{settings['host']}:{settings['port']}"
        # runtime state
        self._loop: asyncio.AbstractEventLoop | None = None
        self._context: SourceContext | None = None
        self._numbers = np.zeros(0, dtype=np.int64)
        self._last = np.full(len(self.map), np.nan)
        self._pending: list[tuple[int, float, int, float]] = []
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        self._client: c104.Client | None = None
        self._tunnel: TlsTunnel | None = None
        self._connection: c104.Connection | None = None
        self._command_points: dict[str, c104.Point] = {}
        self._command_locks: dict[str, asyncio.Lock] = {}
        self._inflight: dict[str, asyncio.Future] = {}
        self._waiters: dict[tuple[int, int, int], _Confirmations] = {}
        self._raw_users = 0
        self._state_changed = asyncio.Event()
        self._online = False
        self._alarm: Alarm | None = None
        self.counters = {"received": 0, "published": 0, "unexpected": 0, "dropped": 0, "connects": 0, "link_losses": 0}

    # --- Source API -------------------------------------------------------------------------

    def points(self) -> Sequence[PointSpec]:
        return [p.spec() for p in self.map]

    async def run(self, context: SourceContext) -> None:
        self._loop = asyncio.get_running_loop()
        self._context = context
        self._state_changed = asyncio.Event()
        self._numbers = np.asarray(context.point_numbers([p.point for p in self.map]), dtype=np.int64)
        backoff = self.settings["reconnect_min_s"]
        try:
            while True:
                try:
                    await self._session()
                    backoff = self.settings["reconnect_min_s"]  # was connected: start over
                except _ConnectFailed as exc:
                    self.log.warning("iec104 %s (%s): %s; retrying in %.1f s", self._peer, self.name, exc, backoff)
                finally:
                    await self._teardown()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings["reconnect_max_s"])
        finally:
            self._online = False

    async def select(self, command: Command) -> CommandResult:
        point, refusal = self._check(command, "select")
        if refusal is not None:
            return refusal
        if not point.sbo:
            return CommandResult(command.id, CommandStatus.SUCCEEDED, "direct-execute point: no IEC 104 select, executed at operate", step="select")
        if not self._online:
            return CommandResult(command.id, CommandStatus.FAILED, f"link to {self._peer} is down", step="select")
        return CommandResult(
            command.id, CommandStatus.SUCCEEDED, "armed: select (S/E=1) and execute are sent at operate, each confirmed by ACT_CON", step="select"
        )

    async def operate(self, command: Command) -> CommandResult:
        point, refusal = self._check(command, "operate")
        if refusal is not None:
            return refusal
        try:
            values = self._command_values(point, command.value)
        except ValueError as exc:
            return CommandResult(command.id, CommandStatus.REJECTED, str(exc))
        lock = self._command_locks.setdefault(point.point, asyncio.Lock())
        async with lock:
            for value in values:
                result = await self._transmit(command, point, value)
                if not result.ok:
                    return result
        return result

    async def close(self) -> None:
        await self._teardown()

    # --- connection -------------------------------------------------------------------------

    async def _session(self) -> None:
        """Connect, interrogate and stay until the link is lost. :raises _ConnectFailed:"""
        settings = self.settings
        timeout_ms = max(1, int(settings["command_timeout_s"] * 1000))
        host, port = settings["host"], settings["port"]
        if settings["tls"]:  # c104's own TLS client cannot verify a server (see tunnel.py)
            self._tunnel = TlsTunnel(host, port, settings, settings["connect_timeout_s"], self.log)
            host, port = "127.0.0.1", await self._tunnel.start()
        client = c104.Client(tick_rate_ms=max(50, settings["tick_rate_ms"]), command_timeout_ms=timeout_ms)
        if settings["originator_address"]:
            client.originator_address = settings["originator_address"]
        self._client = client
        client.start()
        connection = client.add_connection(ip=host, port=port, init=c104.Init.NONE)
        if connection is None:
            raise _ConnectFailed("c104 refused the connection parameters")
        self._connection = connection
        params = connection.protocol_parameters
        params.connection_timeout = max(1, math.ceil(settings["connect_timeout_s"]))
        if settings["t1_s"] > 0:
            params.message_timeout = settings["t1_s"]
        if settings["t3_s"] > 0:
            params.keep_alive_interval = settings["t3_s"]
        self._build_points(connection)
        connection.on_state_change(callable=self._on_state_change)
        connection.on_unexpected_message(callable=self._on_unexpected_message)
        client.on_new_station(callable=self._on_new_station)
        client.on_new_point(callable=self._on_new_point)
        self.log.info("iec104 connecting to %s (%s)", self._peer, describe_tls(settings))
        connection.connect()
        await self._wait_open(connection)

        self.counters["connects"] += 1
        self._online = True
        self.log.info("iec104 %s: link up (STARTDT confirmed)", self._peer)
        if self._alarm is not None:
            self._raise(AlarmState.CLEARED, f"IEC 104 link to {self._peer} restored")
            self._alarm = None
        if settings["clock_sync"]:
            for ca in self._common_addresses:
                if not await asyncio.to_thread(connection.clock_sync, common_address=ca, wait_for_response=True):
                    self.log.warning("iec104 %s: clock sync of CA %d not confirmed", self._peer, ca)
        await self._interrogate(connection)
        period = settings["interrogation_period_s"]
        next_gi = time.monotonic() + period if period > 0 else math.inf
        while connection.state in _OPEN and self._online:
            self._state_changed.clear()
            wait = min(1.0, max(0.0, next_gi - time.monotonic()))
            try:
                await asyncio.wait_for(self._state_changed.wait(), wait)
            except TimeoutError:
                pass
            if time.monotonic() >= next_gi and connection.state in _OPEN:
                await self._interrogate(connection)
                next_gi = time.monotonic() + period
        self._link_lost(f"connection state {connection.state.name}")

    async def _wait_open(self, connection: c104.Connection) -> None:
        deadline = time.monotonic() + self.settings["connect_timeout_s"]
        muted_since: float | None = None
        while True:
            state = connection.state
            now = time.monotonic()
            if state == c104.ConnectionState.OPEN:
                return
            if state == c104.ConnectionState.OPEN_MUTED:
                # c104 2.2.1 races its own STARTDT after connect (the task may run before the
                # state is OPEN_MUTED and then does nothing): send STARTDT again if it hangs
                if muted_since is None:
                    muted_since = now
                elif now - muted_since > 0.25:
                    await asyncio.to_thread(connection.unmute)
                    muted_since = now
            if now >= deadline:
                what = "no STARTDT confirmation" if state == c104.ConnectionState.OPEN_MUTED else "cannot connect"
                if self._tunnel is not None and self._tunnel.failure:
                    what = self._tunnel.failure
                raise _ConnectFailed(f"{what} within {self.settings['connect_timeout_s']:g} s")
            self._state_changed.clear()
            try:
                await asyncio.wait_for(self._state_changed.wait(), 0.05)
            except TimeoutError:
                pass

    async def _interrogate(self, connection: c104.Connection) -> None:
        for ca in self._common_addresses:
            started = time.monotonic()
            ok = await asyncio.to_thread(connection.interrogation, common_address=ca, wait_for_response=True)
            if ok:
                self.log.debug("iec104 %s: general interrogation of CA %d done in %.3f s", self._peer, ca, time.monotonic() - started)
            elif connection.state in _OPEN:
                self.log.warning("iec104 %s: general interrogation of CA %d not confirmed (ACT_CON/ACT_TERM)", self._peer, ca)

    async def _teardown(self) -> None:
        client, self._client, self._connection = self._client, None, None
        tunnel, self._tunnel = self._tunnel, None
        self._command_points = {}
        if client is not None:
            await asyncio.to_thread(client.stop)
        if tunnel is not None:
            await tunnel.close()

    def _build_points(self, connection: c104.Connection) -> None:
        stations = {ca: connection.add_station(common_address=ca) for ca in self._common_addresses}
        time_tag = self.settings["command_time_tag"]
        self._command_points = {}
        for index, point in enumerate(self.map):
            station = stations[point.common_address]
            monitor = station.add_point(io_address=point.ioa, type=monitor_type(point.kind))
            monitor.on_receive(callable=self._make_receiver(index, _CONVERT[point.kind], point.scale))
            if point.controllable:
                mode = c104.CommandMode.SELECT_AND_EXECUTE if point.sbo else c104.CommandMode.DIRECT
                self._command_points[point.point] = station.add_point(
                    io_address=point.control_ioa, type=command_type(point.kind, time_tag), command_mode=mode
                )

    # --- c104 callbacks (c104's threads) ------------------------------------------------------

    def _make_receiver(self, index: int, convert: Callable[[Any], float], scale: float):
        pending = self._pending
        lock = self._pending_lock
        quality_codes = {0: 0}
        log = self.log
        peer = self._peer

        def on_receive(point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage) -> c104.ResponseState:
            now = time.time()
            try:
                cot = message.cot
                if cot not in _MONITOR_COTS:
                    self.counters["dropped"] += 1
                    log.warning("iec104 %s: dropped IOA %s with cause of transmission %s", peer, point.io_address, cot.name)
                    return c104.ResponseState.NONE
                value = convert(point.value) * scale
                bits = quality_codes.get(point.quality.value)
                if bits is None:
                    bits = quality_to_bits(point.quality.value)
                recorded = point.recorded_at
                stamp = recorded.timestamp() if recorded is not None else now
            except Exception as exc:  # noqa: BLE001 - a bad object must not kill c104's thread
                self.counters["dropped"] += 1
                log.warning("iec104 %s: dropped IOA %s: %s: %s", peer, point.io_address, type(exc).__name__, exc)
                return c104.ResponseState.NONE
            with lock:
                pending.append((index, value, bits, stamp))
                schedule = not self._flush_scheduled
                self._flush_scheduled = True
            if schedule:
                self._call_soon(self._flush_soon)
            return c104.ResponseState.NONE

        return on_receive

    def _on_state_change(self, connection: c104.Connection, state: c104.ConnectionState) -> None:
        self._call_soon(self._state_event, state)

    def _on_unexpected_message(self, connection: c104.Connection, message: c104.IncomingMessage, cause: c104.Umc) -> None:
        try:
            detail = f"type {message.type.name} CA {message.common_address} IOA {message.io_address} COT {message.cot.name}"
            interrogated = message.cot.name.startswith("INTERROGATED")
        except Exception:  # noqa: BLE001
            detail, interrogated = "undecodable message", False
        if cause == c104.Umc.INVALID_COT and interrogated:
            # time-tagged types in a GI answer (c104's own server does this): c104 accepts the value
            self.log.debug("iec104 %s: time-tagged type in interrogation answer (%s); value accepted", self._peer, detail)
            return
        self.counters["unexpected"] += 1
        self.log.warning("iec104 %s: unexpected message (%s): %s; ignored", self._peer, cause.name, detail)

    def _call_soon(self, callback: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:  # loop closed meanwhile
            pass

    # --- asyncio side -----------------------------------------------------------------------

    def _state_event(self, state: c104.ConnectionState) -> None:
        self._state_changed.set()
        if self._online and state not in _OPEN:
            self._link_lost(f"connection state {state.name}")

    def _flush_soon(self) -> None:
        # coalesce: one publish per few ms instead of one per received ASDU
        self._loop.call_later(self.settings["publish_delay_s"], self._flush)

    def _flush(self) -> None:
        with self._pending_lock:
            items = self._pending[:]
            self._pending.clear()
            self._flush_scheduled = False
        if not items or self._context is None:
            return
        index = np.fromiter((item[0] for item in items), dtype=np.int64, count=len(items))
        values = np.fromiter((item[1] for item in items), dtype=np.float64, count=len(items))
        quality = np.fromiter((item[2] for item in items), dtype=np.uint16, count=len(items))
        stamps = np.fromiter((item[3] for item in items), dtype=np.float64, count=len(items))
        self._last[index] = values
        self.counters["received"] += len(items)
        self._context.publish(MeasurementBatch(self.name, self._numbers[index], values, quality, stamps))
        self.counters["published"] += len(items)

    def _link_lost(self, why: str) -> None:
        """Mark every point invalid + old-data at once (keeping the last value)."""
        if not self._online:
            return
        self._online = False
        self.counters["link_losses"] += 1
        self.log.warning("iec104 %s: link lost (%s); %d points invalid", self._peer, why, len(self.map))
        with self._pending_lock:  # values still queued from before the loss are stale
            self._pending.clear()
        if self._context is not None and len(self.map):
            now = time.time()
            values = self._last.copy()  # NaN for points never received
            self._context.publish(
                MeasurementBatch(
                    self.name, self._numbers, values, np.full(len(self.map), LINK_LOST_BITS, np.uint16), np.full(len(self.map), now)
                )
            )
        self._raise(AlarmState.RAISED, f"IEC 104 link to {self._peer} lost: {why}")
        self._state_changed.set()

    def _raise(self, state: AlarmState, message: str) -> None:
        if self._context is None:
            return
        alarm = Alarm(message, AlarmPriority.HIGH, source=self.name, state=state, category="comms")
        if state is AlarmState.RAISED:
            self._alarm = alarm
        try:
            self._context.raise_alarm(alarm)
        except Exception as exc:  # noqa: BLE001
            self.log.error("cannot raise alarm: %s", exc)

    # --- commands ---------------------------------------------------------------------------

    def _check(self, command: Command, step: str) -> tuple[Iec104Point, CommandResult | None]:
        point = self._by_name.get(command.target.name)
        if point is None or not point.controllable:
            reason = f"{command.target.name!r} is not a controllable point of {self.name!r}"
            return point, CommandResult(command.id, CommandStatus.REJECTED, reason, step=step)  # type: ignore[return-value]
        return point, None

    @staticmethod
    def _command_values(point: Iec104Point, value: float) -> list[Any]:
        if not math.isfinite(value):
            raise ValueError(f"command value {value!r} is not finite")
        if point.kind is PointKind.DOUBLE:
            if value not in (1, 2):
                raise ValueError(f"breaker command must be 1 (open) or 2 (close), got {value!r}")
            return [c104.Double.OFF if value == 1 else c104.Double.ON]
        if point.kind is PointKind.BINARY:
            if value not in (0, 1):
                raise ValueError(f"single command must be 0 or 1, got {value!r}")
            return [bool(value)]
        if point.kind is PointKind.STEP:
            steps = int(value)
            if steps != value or steps == 0 or abs(steps) > _MAX_STEPS:
                raise ValueError(f"tap command must be a non-zero whole step delta (±{_MAX_STEPS}), got {value!r}")
            return [c104.Step.HIGHER if steps > 0 else c104.Step.LOWER] * abs(steps)
        raw = value / point.scale
        if abs(raw) > 3.4e38:
            raise ValueError(f"set-point {value!r} does not fit a short float")
        return [float(raw)]

    async def _transmit(self, command: Command, point: Iec104Point, value: Any) -> CommandResult:
        """Send one command object and decide from the confirmations seen on the wire.

        c104's ``Point.transmit`` blocks until ACT_CON (and ACT_TERM after select/execute) but
        in 2.2.1 it can miss a confirmation that arrives before it starts waiting (a lost
        condition-variable wake-up, frequent on loopback). The source therefore watches the
        confirmations itself (``on_receive_raw``, decoded by ``c104.explain_bytes_dict``) and
        treats them as authoritative; c104's return value only ends the wait.
        """
        target = self._command_points.get(point.point)
        if not self._online or target is None:
            return CommandResult(command.id, CommandStatus.FAILED, f"link to {self._peer} is down")
        previous = self._inflight.get(point.point)
        if previous is not None and not previous.done():  # c104 still waits for an earlier command
            await asyncio.wait({previous}, timeout=self.settings["command_timeout_s"] + 1)
        type_ = command_type(point.kind, self.settings["command_time_tag"])
        what = f"{type_.name} {point.common_address}:{point.control_ioa}"
        key = (point.common_address, int(type_), point.control_ioa)
        connection = self._connection
        self._raw_users += 1
        if self._raw_users == 1 and connection is not None:
            # watch confirmations only while commands run: on_receive_raw costs on every APDU
            connection.on_receive_raw(callable=self._on_raw)
        try:
            return await self._transmit_watched(command, point, value, target, type_, what, key)
        finally:
            self._raw_users -= 1
            if self._raw_users == 0 and connection is not None and connection is self._connection:
                connection.on_receive_raw(callable=None)

    async def _transmit_watched(self, command, point, value, target, type_, what, key) -> CommandResult:
        for attempt in (1, 2):
            waiter = _Confirmations()
            self._waiters[key] = waiter
            target.value = value
            send = asyncio.ensure_future(asyncio.to_thread(target.transmit, cause=c104.Cot.ACTIVATION))
            self._inflight[point.point] = send
            try:
                status, reason = await self._decide(waiter, send, point.sbo)
            finally:
                if self._waiters.get(key) is waiter:
                    del self._waiters[key]
            if status is not None:
                return CommandResult(command.id, status, f"{what}: {reason}")
            # c104 lost the select confirmation and never sent the execute: select again once
            self.log.info("iec104 %s: %s select confirmed but c104 did not execute; selecting again", self._peer, what)
        return CommandResult(command.id, CommandStatus.FAILED, f"{what}: select confirmed twice but c104 did not send the execute")

    async def _decide(self, waiter: "_Confirmations", send: "asyncio.Future[bool]", sbo: bool) -> tuple[CommandStatus | None, str]:
        timeout = self.settings["command_timeout_s"]
        deadline = time.monotonic() + (2 * timeout if sbo else timeout) + 1.0
        while True:
            verdict = waiter.verdict(sbo)
            if verdict is not None:
                return verdict
            if send.done():
                try:
                    ok = send.result()
                except (ValueError, RuntimeError) as exc:
                    return CommandStatus.FAILED, f"c104 refused the command: {exc}"
                await asyncio.sleep(0.05)  # raw callbacks run on c104's task thread: let them land
                verdict = waiter.verdict(sbo)
                if verdict is not None:
                    return verdict
                if ok:
                    return CommandStatus.SUCCEEDED, "positive " + ("select ACT_CON, execute ACT_CON + ACT_TERM" if sbo else "ACT_CON")
                if not self._online:
                    return CommandStatus.FAILED, f"link to {self._peer} lost during the command"
                if sbo and waiter.selected and not waiter.executed:
                    return None, "retry"
                phase = "execute ACT_CON/ACT_TERM" if waiter.selected else "ACT_CON"
                return CommandStatus.TIMEOUT, f"no {phase} within {timeout:g} s"
            waiter.event.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return CommandStatus.TIMEOUT, f"no confirmation within {timeout:g} s"
            wakeup = asyncio.ensure_future(waiter.event.wait())
            await asyncio.wait({wakeup, send}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            wakeup.cancel()

    def _on_raw(self, connection: c104.Connection, data: bytes) -> None:
        # c104 task thread. Only I-frames (bit 0 of the first control octet clear) with a
        # command type id (45..64) can confirm a command; everything else is skipped cheaply.
        if len(data) < 12 or data[2] & 0x01 or not 45 <= data[6] <= 64:
            return
        try:
            info = c104.explain_bytes_dict(apdu=data)
            key = (int(info["commonAddress"]), int(info["type"]), int(info["firstInformationObjectAddress"]))
            event = (info["cot"], bool(info["negative"]), bool(info["select"]))
        except Exception:  # noqa: BLE001 - undecodable: c104's own handler reports it
            return
        self._call_soon(self._confirmation, key, event)

    def _on_new_station(self, client: c104.Client, connection: c104.Connection, common_address: int) -> None:
        # c104 asks before dropping data of an unknown common address: report it (and do not add it)
        self.counters["unexpected"] += 1
        self.log.warning("iec104 %s: unexpected message (UNKNOWN_CA): common address %d is not in the point map; ignored", self._peer, common_address)

    def _on_new_point(self, client: c104.Client, station: c104.Station, io_address: int, point_type: c104.Type) -> None:
        self.counters["unexpected"] += 1
        self.log.warning(
            "iec104 %s: unexpected message (UNKNOWN_IOA): %s at %d:%d is not in the point map; ignored",
            self._peer, point_type.name, station.common_address, io_address,
        )

    def _confirmation(self, key: tuple[int, int, int], event: tuple[Any, bool, bool]) -> None:
        waiter = self._waiters.get(key)
        if waiter is not None:
            waiter.add(*event)


class _Confirmations:
    """ACT_CON / ACT_TERM seen for one command object (asyncio side)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.selected = False
        self.executed = False
        self.terminated = False
        self.refused: str | None = None

    def add(self, cot: Any, negative: bool, select: bool) -> None:
        if cot == c104.Cot.ACTIVATION_CON:
            if negative:
                self.refused = "select" if select else "execute"
            elif select:
                self.selected = True
            else:
                self.executed = True
        elif cot == c104.Cot.ACTIVATION_TERMINATION and self.executed:
            self.terminated = True
        elif cot in (c104.Cot.UNKNOWN_TYPE_ID, c104.Cot.UNKNOWN_COT, c104.Cot.UNKNOWN_CA, c104.Cot.UNKNOWN_IOA):
            self.refused = f"outstation answered {cot.name}"
        self.event.set()

    def verdict(self, sbo: bool) -> tuple[CommandStatus, str] | None:
        if self.refused is not None:
            if self.refused in ("select", "execute"):
                return CommandStatus.FAILED, f"negative ACT_CON ({self.refused} refused by the outstation)"
            return CommandStatus.FAILED, self.refused
        if not sbo and self.executed:
            return CommandStatus.SUCCEEDED, "positive ACT_CON"
        if sbo and self.executed and self.terminated:
            return CommandStatus.SUCCEEDED, "positive select ACT_CON, execute ACT_CON + ACT_TERM"
        return None
