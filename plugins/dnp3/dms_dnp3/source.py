"""DNP3 master source (``dnp3py``, pure Python, asyncio).

One TCP association per source: integrity read at start, event reads every ``event_poll_s``
(and unsolicited responses when enabled), a periodic integrity read, controls with
SELECT/OPERATE or DIRECT_OPERATE. Between requests the master listens on the socket, so a
closed link is noticed at once; on link loss every point of the source is published invalid
(old data) and the association is re-opened with capped exponential backoff.

Reads name explicit variations (events with absolute time, floating-point analogues) instead
of class 0/1/2/3 objects, so values keep their precision and events their field timestamps
whatever default variations the outstation is configured with; ``read_mode = "class"`` uses
plain class polls instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dms_hookspecs import (
    REQUIRED,
    Alarm,
    AlarmPriority,
    Command,
    CommandResult,
    CommandStatus,
    Detail,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Quality,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
    Validity,
)
from dms_hookspecs.pointmap import PointMapEntry, load_point_map, point_map_settings

from .addresses import Control, Dnp3Address, Group, parse_address, quality_from_flags, value_from_wire

__all__ = ["Dnp3Source"]

_INVALID_OLD = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
_NEVER = _INVALID_OLD

# explicit variations: (static, event) per group
_VARIATIONS = {
    Group.BINARY: ((1, 2), (2, 2)),
    Group.DOUBLE: ((3, 2), (4, 2)),
    Group.BOS: ((10, 2), (11, 2)),
    Group.COUNTER: ((20, 1), (22, 5)),
    Group.ANALOG: ((30, 6), (32, 8)),
    Group.AOS: ((40, 4), (42, 8)),
}
_IIN_REQUEST_ERRORS = 0x0100 | 0x0200 | 0x0400  # NO_FUNC_CODE_SUPPORT | OBJECT_UNKNOWN | PARAMETER_ERROR


def _dnp3():
    from dnp3.application import builder  # noqa: PLC0415
    from dnp3.application.fragment import ObjectBlock  # noqa: PLC0415
    from dnp3.application.parser import parse_response  # noqa: PLC0415
    from dnp3.application.qualifiers import ObjectHeader, PrefixCode, RangeCode  # noqa: PLC0415
    from dnp3.core import enums  # noqa: PLC0415
    from dnp3.master import master as master_module  # noqa: PLC0415
    from dnp3.master import tcp_runner  # noqa: PLC0415

    return builder, ObjectBlock, parse_response, ObjectHeader, PrefixCode, RangeCode, enums, master_module, tcp_runner


class _Collector:
    """The SOE handler: collects ``(group, index, raw value, flags, timestamp)`` per response."""

    def __init__(self) -> None:
        self.rows: list[tuple[Group, int, Any, int, float | None]] = []

    def _add(self, group: Group, values) -> None:
        rows = self.rows
        for v in values:
            ts = v.timestamp.timestamp() if v.timestamp is not None else None
            rows.append((group, v.index, v.value, v.quality, ts))

    def on_binary_input(self, values, info) -> None:
        self._add(Group.BINARY, values)

    def on_binary_output(self, values, info) -> None:
        self._add(Group.BOS, values)

    def on_analog_input(self, values, info) -> None:
        self._add(Group.ANALOG, values)

    def on_analog_output(self, values, info) -> None:
        self._add(Group.AOS, values)

    def on_counter(self, values, info) -> None:
        self._add(Group.COUNTER, values)

    def on_frozen_counter(self, values, info) -> None:
        pass

    def on_double_bit_input(self, values, info) -> None:
        rows = self.rows
        for v in values:
            ts = v.timestamp.timestamp() if v.timestamp is not None else None
            rows.append((Group.DOUBLE, v.index, int(v.state), v.quality, ts))


def _master_class():
    *_, master_module, _ = _dnp3()

    class _Master(master_module.Master):
        """dnp3py's Master, keeping the last solicited fragment (command status lives in it) and
        turning any decoder exception into a dropped fragment instead of a dropped association."""

        last_solicited: bytes | None = None
        peer: str = ""

        def process_response(self, data: bytes):
            try:
                info = super().process_response(data)
            except Exception as exc:  # noqa: BLE001 - hostile input must not escape the decoder
                logging.getLogger("leitstand.dnp3").warning(
                    "DNP3 %s: dropped a %d-byte fragment that broke the decoder: %s: %s",
                    self.peer, len(data), type(exc).__name__, exc,
                )
                return None
            if info is not None and not info.is_unsolicited:
                self.last_solicited = bytes(data)
            return info

    return _Master


class Dnp3Source(Source):
    """DNP3 master over TCP for the points of one outstation (see ``docs/protocols/dnp3.md``)."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, REQUIRED, "outstation address"),
            Setting("port", int, 20000, "outstation TCP port"),
            *point_map_settings(),
            Setting("points", list, [], "point map rows inline: [[point, address, kind, scale], ...]"),
            Setting("master_address", int, 1, "DNP3 link address of this master"),
            Setting("outstation_address", int, 10, "DNP3 link address of the outstation"),
            Setting("connect_timeout_s", float, 3.0, "TCP connect timeout"),
            Setting("response_timeout_s", float, 3.0, "how long a request may wait for its response"),
            Setting("event_poll_s", float, 0.5, "period of event reads (0: only unsolicited)"),
            Setting("integrity_poll_s", float, 600.0, "period of integrity reads after the first (0: start only)"),
            Setting("unsolicited", bool, False, "enable unsolicited responses after the integrity read (they use the outstation's default variations)"),
            Setting("read_mode", str, "variations", "'variations' (explicit timed/float variations) or 'class'",
                    choices=("variations", "class")),
            Setting("select_before_operate", bool, True, "controls use SELECT then OPERATE (else DIRECT_OPERATE)"),
            Setting("crob_mode", str, "latch", "breaker CROBs: 'latch' (LATCH_ON/OFF) or 'pulse' (CLOSE/TRIP pulse)",
                    choices=("latch", "pulse")),
            Setting("pulse_ms", int, 500, "on-time of pulse CROBs"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay"),
            Setting("reconnect_max_s", float, 30.0, "reconnect delay cap (exponential backoff)"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        full = {s.name: s.default for s in self.settings_schema}
        full.update(settings)
        super().__init__(name, full)
        if full["points_file"] or full["point_map"] == "cim" or not full["points"]:
            entries = load_point_map(full, name)
        else:
            entries = [PointMapEntry(r[0], r[1], PointKind(r[2] if len(r) > 2 else "analog"), float(r[3]) if len(r) > 3 else 1.0)
                       for r in full["points"]]
        if not entries:
            raise ValueError(f"dnp3 source {name!r}: no points (set points_file)")
        self._entries = entries
        self._addresses: list[Dnp3Address] = []
        self._slot: dict[tuple[Group, int], int] = {}
        self._controls: dict[str, tuple[int, Dnp3Address]] = {}
        for slot, entry in enumerate(entries):
            try:
                address = parse_address(entry.address)
            except ValueError as exc:
                raise ValueError(f"dnp3 source {name!r}, point {entry.point!r}: {exc}") from None
            if address.status_key in self._slot:
                raise ValueError(f"dnp3 source {name!r}: {address.group.value}:{address.index} mapped twice")
            self._slot[address.status_key] = slot
            self._addresses.append(address)
            if address.control is not None:
                self._controls[entry.point] = (slot, address)
        n = len(entries)
        self._kinds = [e.kind for e in entries]
        self._scales = [e.scale for e in entries]
        self._values = np.zeros(n)
        self._times = np.zeros(n)
        self._quality = np.full(n, _NEVER, dtype=np.uint16)
        self._numbers: np.ndarray | None = None
        self._context: SourceContext | None = None
        self._master = None
        self._runner = None
        self._lock = asyncio.Lock()
        self._selected: dict[str, Any] = {}
        self._held_by: str | None = None
        self._hold_timer: asyncio.TimerHandle | None = None
        self._select_hold_s = 5.0
        self._expired: set[str] = set()
        self.peer = f"{full['host']}:{full['port']}"
        self.connected = asyncio.Event()
        self.sessions = 0
        self.log = logging.getLogger(f"leitstand.dnp3.{name}")

    def points(self) -> Sequence[PointSpec]:
        sbo = bool(self.settings["select_before_operate"])
        return [
            PointSpec(e.point, e.kind, controllable=a.control is not None,
                      select_before_operate=sbo and a.control is not None,
                      description=f"DNP3 {e.address} @ {self.peer}")
            for e, a in zip(self._entries, self._addresses, strict=True)
        ]

    # -- acquisition --------------------------------------------------------------------------

    async def run(self, context: SourceContext) -> None:
        self._context = context
        self.log = context.log
        self._numbers = np.asarray(context.point_numbers([e.point for e in self._entries]), dtype=np.int64)
        delay = float(self.settings["reconnect_min_s"])
        try:
            while True:
                good = False
                try:
                    good = await self._run_session()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - any failure ends the session, never the source
                    level = logging.WARNING if self.sessions else logging.INFO
                    self.log.log(level, "DNP3 %s (outstation %d): association lost: %s: %s", self.peer,
                                 self.settings["outstation_address"], type(exc).__name__, exc)
                finally:
                    was_connected = self.connected.is_set()
                    self.connected.clear()
                    if self._held_by is not None:
                        self._expire_hold(self._held_by)
                    await self._close_runner()
                    self._invalidate()
                    if was_connected:
                        context.raise_alarm(Alarm(f"DNP3 link to {self.peer} lost", AlarmPriority.HIGH,
                                                  source=self.name, category="comms"))
                if good:
                    delay = float(self.settings["reconnect_min_s"])
                await asyncio.sleep(delay)
                delay = min(delay * 2, float(self.settings["reconnect_max_s"]))
        finally:
            await self._close_runner()

    async def _run_session(self) -> bool:
        """Run one association in its own task. Cancelling ``run()`` aborts the socket first and
        then cancels the task: a cancellation that lands inside dnp3py's nested ``wait_for``
        reads can otherwise be lost on Python 3.11 and leave the task waiting forever."""
        io = asyncio.create_task(self._session(), name=f"dnp3:{self.name}")
        try:
            await asyncio.wait({io})
        except asyncio.CancelledError:
            self._abort_transport()
            io.cancel()
            await asyncio.wait({io}, timeout=2.0)
            if io.done() and not io.cancelled():
                io.exception()  # retrieved: the link error is the expected end of the association
            raise
        return io.result()

    def _abort_transport(self) -> None:
        runner = self._runner
        writer = getattr(getattr(runner, "channel", None), "_writer", None)
        transport = getattr(writer, "transport", None)
        if transport is not None:
            transport.abort()

    async def _session(self) -> bool:
        *_, tcp_runner = _dnp3()
        from dnp3.master.config import MasterConfig  # noqa: PLC0415

        s = self.settings
        config = MasterConfig(address=s["master_address"], outstation_address=s["outstation_address"],
                              response_timeout=s["response_timeout_s"], max_fragment_size=4096)
        master = _master_class()(config=config, handler=_Collector())
        master.peer = self.peer
        runner = tcp_runner.MasterTcpRunner(master=master, host=s["host"], port=s["port"],
                                            response_timeout=s["response_timeout_s"])
        self._master, self._runner = master, runner
        await asyncio.wait_for(runner.open(), timeout=s["connect_timeout_s"])
        self.sessions += 1
        self.log.info("DNP3 %s: connected (master %d → outstation %d)", self.peer, s["master_address"], s["outstation_address"])
        async with self._lock:
            await self._read(integrity=True)
            if s["unsolicited"]:
                await runner.request(master.build_enable_unsolicited())
                self._flush()
        self.connected.set()
        loop = asyncio.get_running_loop()
        event_every = float(s["event_poll_s"])
        integrity_every = float(s["integrity_poll_s"])
        next_event = loop.time() + event_every if event_every > 0 else float("inf")
        next_integrity = loop.time() + integrity_every if integrity_every > 0 else float("inf")
        while True:
            async with self._lock:
                now = loop.time()
                if now >= next_integrity:
                    await self._read(integrity=True)
                    next_integrity = now + integrity_every
                    next_event = now + event_every if event_every > 0 else float("inf")
                elif now >= next_event:
                    await self._read(integrity=False)
                    next_event = now + event_every
                else:
                    # idle: listen, which also notices a closed link at once
                    wait = min(0.05, next_event - now, next_integrity - now)
                    await runner.listen_unsolicited(timeout=max(wait, 0.001))
                    self._flush()
            await asyncio.sleep(0)

    def _read_request(self, integrity: bool):
        builder, ObjectBlock, _, ObjectHeader, PrefixCode, RangeCode, *_ = _dnp3()
        master = self._master
        seq = master.next_request_sequence()
        if self.settings["read_mode"] == "class":
            return builder.build_integrity_poll(seq=seq) if integrity else builder.build_class_poll(seq=seq)
        groups = sorted({a.group for a in self._addresses}, key=lambda g: _VARIATIONS[g][0])
        headers = []
        if integrity:
            headers += [_VARIATIONS[g][0] for g in groups]
        headers += [_VARIATIONS[g][1] for g in groups]
        blocks = tuple(
            ObjectBlock(header=ObjectHeader.build(group=g, variation=v, prefix=PrefixCode.NONE, range_code=RangeCode.ALL_OBJECTS))
            for g, v in headers
        )
        return builder.build_read_request(blocks, seq=seq)

    async def _read(self, integrity: bool) -> None:
        infos = await self._runner.request(self._read_request(integrity))
        self._flush()
        for info in infos:
            if int(info.iin) & _IIN_REQUEST_ERRORS:
                self.log.warning("DNP3 %s: outstation flags the read (IIN %s)", self.peer, info.iin)
                break

    def _flush(self) -> None:
        collector = self._master.handler if self._master is not None else None
        if collector is None or not collector.rows:
            return
        rows, collector.rows = collector.rows, []
        now = time.time()
        slots, values, quality, stamps = [], [], [], []
        slot_of = self._slot
        for group, index, raw, flags, ts in rows:
            slot = slot_of.get((group, index))
            if slot is None:
                continue  # an index the point map does not name
            try:
                value = value_from_wire(raw, group, self._kinds[slot], self._scales[slot])
            except (TypeError, ValueError, OverflowError):
                continue
            slots.append(slot)
            values.append(value)
            quality.append(quality_from_flags(flags, group))
            stamps.append(ts if ts is not None else now)
        if not slots:
            return
        idx = np.asarray(slots, dtype=np.int64)
        vals = np.asarray(values, dtype=np.float64)
        qual = np.asarray(quality, dtype=np.uint16)
        times = np.asarray(stamps, dtype=np.float64)
        self._values[idx] = vals
        self._quality[idx] = qual
        self._times[idx] = times
        self._context.publish(MeasurementBatch(self.name, self._numbers[idx], vals, qual, times, receive_time=now))

    def _invalidate(self) -> None:
        """Publish every point invalid / old data, keeping its last value and time."""
        if self._context is None or self._numbers is None:
            return
        self._quality[:] = _INVALID_OLD
        times = np.where(self._times > 0, self._times, time.time())
        self._context.publish(MeasurementBatch(self.name, self._numbers, self._values.copy(), self._quality.copy(), times))

    async def _close_runner(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.close()
            except Exception:  # noqa: BLE001
                pass

    async def close(self) -> None:
        await self._close_runner()

    # -- commands -----------------------------------------------------------------------------

    def _operations(self, command: Command):
        from dnp3.core.enums import ControlCode  # noqa: PLC0415
        from dnp3.master.commands import ControlOperation  # noqa: PLC0415

        slot, address = self._controls[command.target.name]
        kind = self._kinds[slot]
        if address.control is Control.CROB:
            value = int(round(command.value))
            if kind is PointKind.DOUBLE:
                if value not in (1, 2):
                    raise ValueError(f"breaker command must be 1 (open) or 2 (close), got {command.value!r}")
                on = value == 2
            else:
                if value not in (0, 1):
                    raise ValueError(f"binary command must be 0 or 1, got {command.value!r}")
                on = value == 1
            if self.settings["crob_mode"] == "pulse":
                code = ControlCode.CLOSE_PULSE_ON if on else ControlCode.TRIP_PULSE_ON
                return ControlOperation(address.control_index, code, 1, int(self.settings["pulse_ms"]), 0)
            return ControlOperation(address.control_index, ControlCode.LATCH_ON if on else ControlCode.LATCH_OFF)
        scale = self._scales[slot] or 1.0
        raw = round(command.value / scale)
        if not -(2**31) <= raw < 2**31:
            raise ValueError(f"set-point {command.value!r} / scale {scale:g} does not fit a 32-bit analogue output")
        return ControlOperation(address.control_index, analog_value=float(raw), is_analog=True)

    async def select(self, command: Command) -> CommandResult:
        return await self._control(command, "select")

    async def operate(self, command: Command) -> CommandResult:
        if command.id in self._expired:
            self._expired.discard(command.id)
            return CommandResult(command.id, CommandStatus.FAILED, "select expired before operate")
        return await self._control(command, "operate" if command.id in self._selected else "direct_operate")

    async def _control(self, command: Command, step: str) -> CommandResult:
        from dnp3.master.commands import DirectOperateTask, OperateTask, SelectTask  # noqa: PLC0415

        result_step = "select" if step == "select" else "operate"
        name = command.target.name
        if name not in self._controls:
            return CommandResult(command.id, CommandStatus.REJECTED, f"{name!r} has no crob/aout address in source {self.name!r}", step=result_step)
        held = step == "operate" and self._held_by == command.id
        if held:
            self._release_hold()  # the lock stays ours: the OPERATE follows its SELECT directly
        try:
            operation = self._selected.pop(command.id) if step == "operate" else self._operations(command)
        except ValueError as exc:
            return CommandResult(command.id, CommandStatus.REJECTED, str(exc), step=result_step)
        *_, tcp_runner = _dnp3()
        task = {"select": SelectTask, "operate": OperateTask, "direct_operate": DirectOperateTask}[step](operations=[operation])
        master, runner = self._master, self._runner
        label = step.upper()
        if not held:
            await self._lock.acquire()
        keep = False
        try:
            if not self.connected.is_set() or runner is None:
                return CommandResult(command.id, CommandStatus.FAILED, f"DNP3 {self.peer} not connected", step=result_step)
            if runner is not self._runner:
                return CommandResult(command.id, CommandStatus.FAILED, f"DNP3 {self.peer} reconnected during the command", step=result_step)
            build = {"select": master.build_select, "operate": master.build_operate, "direct_operate": master.build_direct_operate}[step]
            master.last_solicited = None
            await runner.request(build(task))
            fragment = master.last_solicited
            self._flush()
            ok, reason = self._command_status(fragment, operation)
            if ok and step == "select":
                self._selected[command.id] = operation
                self._hold(command.id)
                keep = True
        except tcp_runner.ResponseTimeoutError:
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"DNP3 {label} on {name}: no response from {self.peer}", step=result_step)
        except tcp_runner.MasterRunnerError as exc:
            return CommandResult(command.id, CommandStatus.FAILED, f"DNP3 {label} on {name}: link failed: {exc}", step=result_step)
        finally:
            if not keep:
                self._lock.release()
        status = CommandStatus.SUCCEEDED if ok else CommandStatus.FAILED
        return CommandResult(command.id, status, f"DNP3 {label} {name}: {reason}", step=result_step)

    def _hold(self, command_id: str) -> None:
        self._held_by = command_id
        self._hold_timer = asyncio.get_running_loop().call_later(self._select_hold_s, self._expire_hold, command_id)

    def _release_hold(self) -> None:
        self._held_by = None
        if self._hold_timer is not None:
            self._hold_timer.cancel()
            self._hold_timer = None

    def _expire_hold(self, command_id: str) -> None:
        if self._held_by == command_id:  # no OPERATE followed the SELECT in time
            self._release_hold()
            self._selected.pop(command_id, None)
            self._expired.add(command_id)
            self._lock.release()

    def _command_status(self, fragment: bytes | None, operation) -> tuple[bool, str]:
        """Status of ``operation`` echoed in the response (CROB/analogue output status octet)."""
        _, _, parse_response, *_, enums, master_module, _ = _dnp3()
        if fragment is None:
            return False, "no response fragment"
        try:
            response = parse_response(fragment)
        except Exception as exc:  # noqa: BLE001
            return False, f"unparseable response: {exc}"
        iin = int(response.header.iin)
        group, width = (41, 5) if operation.is_analog else (12, 11)
        for block in response.objects:
            if block.header.group != group:
                continue
            layout = master_module._decode_object_layout(block.header.qualifier, block.data)
            if layout is None:
                continue
            for index, offset in master_module._iter_object_slots(layout, block.data, width):
                if index == operation.index:
                    code = block.data[offset + width - 1] & 0x7F
                    try:
                        status = enums.CommandStatus(code)
                    except ValueError:
                        return False, f"status {code}"
                    return status is enums.CommandStatus.SUCCESS, status.name
        if iin & _IIN_REQUEST_ERRORS:
            return False, f"refused by the outstation (IIN 0x{iin:04X})"
        return False, "response carries no status for the point"
