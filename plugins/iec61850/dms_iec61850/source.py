"""IEC 61850 MMS source: one IED connection, run by a client process (see :mod:`dms_iec61850.worker`)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence

import numpy as np

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    Command,
    CommandResult,
    CommandStatus,
    Detail,
    MeasurementBatch,
    PointSpec,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
    Validity,
)

from .address import parse_address

LINK_DOWN = int(Validity.INVALID) | int(Detail.OLD_DATA)
WORKER_DEAD = int(Validity.INVALID) | int(Detail.FAILURE)


def _load_point_map(settings, name: str):
    from dms_hookspecs.pointmap import load_point_map

    return load_point_map(settings, name)


def _point_map_settings():
    from dms_hookspecs.pointmap import point_map_settings

    return point_map_settings(points_file_required=True)


class Iec61850Source(Source):
    """Reads one IED's mapped data attributes over MMS (reports + GI, polling as fallback) and executes
    controls (SBO with enhanced security)."""

    settings_schema = SettingsSchema(
        (
            *_point_map_settings(),
            Setting("host", str, "127.0.0.1", "IED address"),
            Setting("port", int, 102, "MMS TCP port"),
            Setting("mode", str, "report", "acquisition: 'report' (RCBs + GI, polling only for points no data set covers) or 'poll'"),
            Setting("report_type", str, "unbuffered", "preferred report control blocks: 'unbuffered' or 'buffered' (the other type is the fallback)"),
            Setting("integrity_period_s", float, 0.0, "integrity period set in the RCBs (0 = none); no report for 2 periods + 1 s = link lost"),
            Setting("report_buf_tm_ms", int, -1, "buffer time written to the RCBs (-1 = keep the IED's)"),
            Setting("poll_period_s", float, 0.5, "cyclic read period of polled points (one MMS read per logical node and FC)"),
            Setting("connect_timeout_s", float, 1.0, "TCP + MMS association timeout"),
            Setting("request_timeout_s", float, 1.0, "timeout of one MMS request"),
            Setting("command_timeout_s", float, 5.0, "longest wait for CommandTermination after operate"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay (doubles per failure)"),
            Setting("reconnect_max_s", float, 10.0, "longest reconnect delay"),
            Setting("sbo", bool, True, "controls are declared select-before-operate"),
        )
    )

    def __init__(self, name: str, settings) -> None:
        super().__init__(name, settings)
        self.entries = _load_point_map(settings, name)
        self.addresses = [parse_address(entry.address, entry.kind) for entry in self.entries]
        if settings["poll_period_s"] <= 0 or settings["connect_timeout_s"] <= 0 or settings["request_timeout_s"] <= 0:
            raise ValueError("poll_period_s and the timeouts must be positive")
        if settings["mode"] not in ("report", "poll"):
            raise ValueError(f"mode must be 'report' or 'poll', not {settings['mode']!r}")
        if settings["report_type"] not in ("unbuffered", "buffered"):
            raise ValueError(f"report_type must be 'unbuffered' or 'buffered', not {settings['report_type']!r}")
        self.index = {entry.point: idx for idx, entry in enumerate(self.entries)}
        self._process: asyncio.subprocess.Process | None = None
        self._pending: dict[str, asyncio.Future] = {}
        self._ids = itertools.count()
        self.connected = False
        self.counters = {"batches": 0, "updates": 0, "worker_starts": 0, "link_losses": 0}

    def points(self) -> Sequence[PointSpec]:
        return [
            PointSpec(entry.point, entry.kind, controllable=address.control,
                      select_before_operate=address.control and bool(self.settings["sbo"]),
                      description=entry.address)
            for entry, address in zip(self.entries, self.addresses, strict=True)
        ]

    # -- run -----------------------------------------------------------------------------------------
    async def run(self, context: SourceContext) -> None:
        self._context = context
        self._numbers = np.asarray(context.point_numbers([entry.point for entry in self.entries]), dtype=np.int64)
        self._values = np.full(len(self._numbers), math.nan)
        backoff = self.settings["reconnect_min_s"]
        try:
            while True:
                started = time.monotonic()
                code = await self._run_worker(context)
                self._invalidate(WORKER_DEAD)
                self._fail_pending("client process ended")
                context.log.error("%s: IEC 61850 client process for %s:%d ended (exit code %s); restarting in %.1f s",
                                  self.name, self.settings["host"], self.settings["port"], code, backoff)
                if time.monotonic() - started > 60:
                    backoff = self.settings["reconnect_min_s"]
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings["reconnect_max_s"])
        finally:
            await self._kill()

    async def _run_worker(self, context: SourceContext) -> int | None:
        config = {key: self.settings[key] for key in (
            "host", "port", "poll_period_s", "connect_timeout_s", "request_timeout_s", "command_timeout_s",
            "reconnect_min_s", "reconnect_max_s", "mode", "report_type", "integrity_period_s", "report_buf_tm_ms")}
        config["points"] = [(entry.address, entry.kind.value, entry.scale) for entry in self.entries]
        self._process = process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dms_iec61850.worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            limit=1 << 24,
        )
        self.counters["worker_starts"] += 1
        process.stdin.write((json.dumps(config) + "\n").encode())
        await process.stdin.drain()
        stderr_task = asyncio.create_task(self._forward_stderr(process, context))
        try:
            while True:
                line = await process.stdout.readline()
                if not line:
                    break
                try:
                    message = json.loads(line)
                    self._on_message(message, context)
                except Exception as exc:  # noqa: BLE001 - a bad line must not end the source
                    context.log.warning("%s: bad message from the client process: %s: %s", self.name, type(exc).__name__, exc)
            return await process.wait()
        finally:
            stderr_task.cancel()
            self.connected = False

    async def _forward_stderr(self, process, context: SourceContext) -> None:
        while True:
            line = await process.stderr.readline()
            if not line:
                return
            context.log.debug("%s: libiec61850: %s", self.name, line.decode(errors="replace").rstrip())

    def _on_message(self, message: dict, context: SourceContext) -> None:
        event = message["ev"]
        if event == "data":
            rows = message["d"]
            idx = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
            values = np.fromiter((row[1] for row in rows), dtype=np.float64, count=len(rows))
            quality = np.fromiter((row[2] for row in rows), dtype=np.uint16, count=len(rows))
            stamps = np.fromiter((row[3] for row in rows), dtype=np.float64, count=len(rows))
            self._values[idx] = values
            context.publish(MeasurementBatch(self.name, self._numbers[idx], values, quality, stamps))
            self.counters["batches"] += 1
            self.counters["updates"] += len(rows)
        elif event == "result":
            future = self._pending.pop(message["id"], None)
            if future is not None and not future.done():
                future.set_result((CommandStatus(message["status"]), message["reason"]))
        elif event == "up":
            self.connected = True
            context.log.info("%s: connected to IED %s:%d", self.name, self.settings["host"], self.settings["port"])
        elif event == "down":
            was = self.connected
            self.connected = False
            self._invalidate(LINK_DOWN)
            if was:
                self.counters["link_losses"] += 1
                context.log.warning("%s: link to %s:%d lost: %s", self.name, self.settings["host"], self.settings["port"], message["reason"])
                context.raise_alarm(Alarm(f"IEC 61850 link {self.settings['host']}:{self.settings['port']} lost: {message['reason']}",
                                          AlarmPriority.HIGH, source=self.name, category="comms"))
            else:
                context.log.info("%s: %s", self.name, message["reason"])
        elif event == "log":
            getattr(context.log, message.get("level", "info"), context.log.info)("%s: %s", self.name, message["msg"])

    def _invalidate(self, quality: int) -> None:
        """Mark every point of this source invalid at once, keeping the last values."""
        context = getattr(self, "_context", None)
        if context is None or not len(self._numbers):
            return
        count = len(self._numbers)
        context.publish(MeasurementBatch(self.name, self._numbers, self._values.copy(),
                                         np.full(count, quality, dtype=np.uint16), np.full(count, time.time())))

    def _fail_pending(self, reason: str) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_result((CommandStatus.FAILED, reason))
        self._pending.clear()

    async def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        try:
            process.stdin.close()
            await asyncio.wait_for(process.wait(), 2.0)
        except (asyncio.TimeoutError, ConnectionError, OSError):
            process.kill()
            await process.wait()

    # -- commands ------------------------------------------------------------------------------------
    async def _request(self, op: str, command: Command) -> CommandResult:
        step = "select" if op == "select" else "operate"
        idx = self.index.get(command.target.name)
        if idx is None or not self.addresses[idx].control:
            return CommandResult(command.id, CommandStatus.REJECTED, f"{command.target} is not a control of {self.name!r}", step=step)
        process = self._process
        if process is None or process.returncode is not None or not self.connected:
            return CommandResult(command.id, CommandStatus.FAILED, f"{self.name}: not connected to the IED", step=step)
        request_id = f"{next(self._ids)}"
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            process.stdin.write((json.dumps({"op": op, "id": request_id, "idx": idx, "value": float(command.value)}) + "\n").encode())
            await process.stdin.drain()
            status, reason = await future
        finally:
            self._pending.pop(request_id, None)
        return CommandResult(command.id, status, reason, step=step)

    async def select(self, command: Command) -> CommandResult:
        return await self._request("select", command)

    async def operate(self, command: Command) -> CommandResult:
        return await self._request("operate", command)

    async def close(self) -> None:
        await self._kill()
