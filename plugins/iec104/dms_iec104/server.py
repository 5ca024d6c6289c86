"""IEC 60870-5-104 simulator server (controlled station / RTU) serving a twin, built on c104.

One ``c104.Server`` with a station per common address of the point map. Monitoring points
hold the twin's current value, quality and timestamp (answered on general interrogation);
twin changes are sent as spontaneous data with ``transmit_batch``. Commands received on the
control IOAs are executed with ``await twin.operate(point, value)`` in the asyncio loop and
answered with a positive or negative ACT_CON (c104 adds ACT_TERM after select/execute).

This module must not use ``from __future__ import annotations``: c104 checks callback
signatures by their annotation text.
"""

import asyncio
import concurrent.futures
import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import c104

from dms_hookspecs import REQUIRED, PointKind, Setting, SettingsSchema, SimulatorServer, TwinAPI

from .mapping import Iec104Point, bits_to_quality, command_type, epoch_to_datetime, load_point_map, monitor_type
from .tls import TLS_SETTINGS, describe_tls, transport_security

__all__ = ["Iec104Server", "make_info"]

log = logging.getLogger("leitstand.sim.iec104")

_OVERFLOW = c104.Quality.Overflow


def make_info(kind: PointKind, value: float, bits: int, stamp: float, scale: float = 1.0) -> c104.Information:
    """The c104 monitoring information of one twin value (engineering value → protocol value)."""
    quality = bits_to_quality(bits)
    recorded = epoch_to_datetime(stamp)
    if kind in (PointKind.ANALOG, PointKind.SETPOINT):
        raw = value / scale
        if not math.isfinite(raw) or abs(raw) > 3.4e38:
            raw, quality = 0.0, quality | _OVERFLOW
        return c104.ShortInfo(float(raw), quality, recorded)
    if kind is PointKind.BINARY:
        return c104.SingleInfo(bool(value), quality, recorded)
    if kind is PointKind.DOUBLE:
        state = int(value) if math.isfinite(value) and int(value) == value and 0 <= value <= 3 else 3
        return c104.DoubleInfo(c104.Double(state), quality, recorded)
    if kind is PointKind.STEP:
        position = round(value) if math.isfinite(value) else 0
        if not -64 <= position <= 63:
            position, quality = max(-64, min(63, position)), quality | _OVERFLOW
        return c104.StepInfo(c104.Int7(position), False, quality, recorded)
    raise ValueError(f"kind {kind.value!r} has no IEC 104 monitoring type")


class Iec104Server(SimulatorServer):
    """Serves the twin's points of a point map as an IEC 104 outstation on ``host:port``."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "listening address (loopback for the simulator)"),
            Setting("port", int, 2404, "listening TCP port"),
            Setting("points_file", str, REQUIRED, "point map CSV shared with the source"),
            Setting("select_before_operate", bool, False, "default for controllable points without an 'sbo' column"),
            Setting("command_time_tag", bool, True, "expect commands with CP56Time2a (C_*_TA_1 / C_SE_TC_1)"),
            Setting("control_ioa_offset", int, 100000, "control IOA = IOA + offset unless the address gives one"),
            Setting("select_timeout_s", float, 10.0, "execute must follow select within this time"),
            Setting("operate_timeout_s", float, 5.0, "longest wait for the twin to execute a command"),
            Setting("step_command", str, "position", "raise/lower → twin.operate(new position) or (±1)", choices=("position", "delta")),
            Setting("max_connections", int, 0, "0 = unlimited"),
            Setting("tick_rate_ms", int, 50, "c104 server thread tick (>= 50)"),
            *TLS_SETTINGS,
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        merged = {s.name: s.default for s in self.settings_schema}
        merged.update(settings)
        missing = [key for key, value in merged.items() if value is REQUIRED]
        if missing:
            raise ValueError(f"simulator {name!r}: missing setting(s) {missing}")
        super().__init__(name, merged, twin)
        self.map: list[Iec104Point] = load_point_map(
            merged["points_file"], control_ioa_offset=merged["control_ioa_offset"], sbo_default=merged["select_before_operate"]
        )
        known = {spec.id.name for spec in twin.points()}
        unknown = [p.point for p in self.map if p.point not in known]
        if unknown:
            raise ValueError(f"simulator {name!r}: the twin has no point(s) {unknown[:5]}")
        transport_security(merged)  # validate early
        self._server: c104.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitors: dict[str, tuple[Iec104Point, c104.Point]] = {}
        self._unsubscribe = None
        self.counters = {"commands": 0, "refused": 0, "unexpected": 0, "sent": 0}

    @property
    def address(self) -> str:
        return f"{self.settings['host']}:{self.settings['port']}"

    async def start(self) -> None:
        if self._server is not None:
            return
        settings = self.settings
        self._loop = asyncio.get_running_loop()
        server = c104.Server(
            ip=settings["host"],
            port=settings["port"],
            tick_rate_ms=max(50, settings["tick_rate_ms"]),
            select_timeout_ms=max(1, int(settings["select_timeout_s"] * 1000)),
            max_connections=settings["max_connections"],
            transport_security=transport_security(settings),
        )
        stations = {ca: server.add_station(common_address=ca) for ca in sorted({p.common_address for p in self.map})}
        time_tag = settings["command_time_tag"]
        self._monitors = {}
        for point in self.map:
            station = stations[point.common_address]
            monitor = station.add_point(io_address=point.ioa, type=monitor_type(point.kind))
            value, bits, stamp = self.twin.read(point.point)
            monitor.info = make_info(point.kind, value, bits, stamp, point.scale)
            self._monitors[point.point] = (point, monitor)
            if point.controllable:
                mode = c104.CommandMode.SELECT_AND_EXECUTE if point.sbo else c104.CommandMode.DIRECT
                control = station.add_point(io_address=point.control_ioa, type=command_type(point.kind, time_tag), command_mode=mode)
                control.on_receive(callable=self._command_handler(point))
        server.on_connect(callable=self._on_connect)
        server.on_unexpected_message(callable=self._on_unexpected_message)
        self._server = server
        self._unsubscribe = self.twin.subscribe(self._on_twin_changes)
        await asyncio.to_thread(server.start)
        if not server.is_running:
            await self.stop()
            raise OSError(f"IEC 104 simulator {self.name!r} cannot listen on {self.address}")
        log.info("iec104 simulator %r listening on %s (%s), %d points", self.name, self.address, describe_tls(settings), len(self.map))

    async def stop(self) -> None:
        server, self._server = self._server, None
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if server is not None:
            await asyncio.to_thread(server.stop)  # off the loop: command handlers may wait for it
            log.info("iec104 simulator %r on %s stopped", self.name, self.address)

    # --- monitoring -------------------------------------------------------------------------

    def _on_twin_changes(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        server = self._server
        if server is None:
            return
        groups: dict[tuple[int, int], dict[int, c104.Point]] = {}
        for name, value, bits, stamp in changes:
            entry = self._monitors.get(name)
            if entry is None:
                continue
            point, monitor = entry
            try:
                monitor.info = make_info(point.kind, value, bits, stamp, point.scale)
            except (ValueError, TypeError) as exc:
                log.error("iec104 simulator %r: cannot encode %s = %r: %s", self.name, name, value, exc)
                continue
            groups.setdefault((point.common_address, int(monitor_type(point.kind).value)), {})[point.ioa] = monitor
        for members in groups.values():
            # transmit_batch only queues the ASDUs: True is not a delivery confirmation
            if server.transmit_batch(c104.Batch(cause=c104.Cot.SPONTANEOUS, points=list(members.values()))):
                self.counters["sent"] += len(members)

    # --- commands (c104's thread) -----------------------------------------------------------

    def _command_handler(self, entry: Iec104Point):
        def on_command(point: c104.Point, previous_info: c104.Information, message: c104.IncomingMessage) -> c104.ResponseState:
            self.counters["commands"] += 1
            try:
                request = self._decode(entry, point.value)
            except (ValueError, TypeError) as exc:
                self.counters["refused"] += 1
                log.warning("iec104 simulator %r: refused command on %s: %s", self.name, entry.point, exc)
                return c104.ResponseState.FAILURE
            loop = self._loop
            if loop is None or loop.is_closed():
                return c104.ResponseState.FAILURE
            future = asyncio.run_coroutine_threadsafe(self._operate(entry, request), loop)
            try:
                accepted, reason = future.result(self.settings["operate_timeout_s"])
            except concurrent.futures.TimeoutError:
                future.cancel()
                accepted, reason = False, f"twin did not answer within {self.settings['operate_timeout_s']:g} s"
            except Exception as exc:  # noqa: BLE001 - the twin's failure is a negative confirmation
                accepted, reason = False, f"{type(exc).__name__}: {exc}"
            if not accepted:
                self.counters["refused"] += 1
            log.info(
                "iec104 simulator %r: %s %s on %s (originator %s): %s",
                self.name, point.type.name, "executed" if accepted else "refused", entry.point, message.originator_address, reason,
            )
            return c104.ResponseState.SUCCESS if accepted else c104.ResponseState.FAILURE

        return on_command

    @staticmethod
    def _decode(entry: Iec104Point, value: Any) -> float:
        if entry.kind is PointKind.DOUBLE:
            state = int(value)
            if state not in (1, 2):
                raise ValueError(f"double command state {state} is neither OFF (1) nor ON (2)")
            return float(state)
        if entry.kind is PointKind.BINARY:
            return 1.0 if value else 0.0
        if entry.kind is PointKind.STEP:
            if value == c104.Step.HIGHER:
                return 1.0
            if value == c104.Step.LOWER:
                return -1.0
            raise ValueError(f"regulating step command {value!r} is neither HIGHER nor LOWER")
        raw = float(value)
        if not math.isfinite(raw):
            raise ValueError(f"set-point {raw!r} is not finite")
        return raw * entry.scale

    async def _operate(self, entry: Iec104Point, value: float) -> tuple[bool, str]:
        if entry.kind is PointKind.STEP and self.settings["step_command"] == "position":
            current = self.twin.read(entry.point)[0]
            value = float(round(current) + int(value))
        return await self.twin.operate(entry.point, value)

    # --- diagnostics ------------------------------------------------------------------------

    def _on_connect(self, server: c104.Server, ip: str) -> bool:
        log.info("iec104 simulator %r: connection from %s", self.name, ip)
        return True

    def _on_unexpected_message(self, server: c104.Server, message: c104.IncomingMessage, cause: c104.Umc) -> None:
        self.counters["unexpected"] += 1
        try:
            detail = f"type {message.type.name} CA {message.common_address} IOA {message.io_address} originator {message.originator_address}"
        except Exception:  # noqa: BLE001
            detail = "undecodable message"
        log.warning("iec104 simulator %r: unexpected message (%s): %s", self.name, cause.name, detail)
