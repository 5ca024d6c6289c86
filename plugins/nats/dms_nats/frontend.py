"""``leitstand frontend DEPLOYMENT.toml --group NAME``: a SCADA front-end process.

Runs only the sources whose ``[[sources]]`` table has ``group = NAME``, once it holds the
group's lease (:mod:`dms_nats.lease`); until then it is the standby. Their batches go to
``meas.<source>`` as :class:`~dms_nats.schema.IngestBatch` (point offsets within the source's
point list, lease term, instance and sequence number), their alarms to ``events.Alarm``, and
it answers commands on ``cmd.<source>``. Losing the lease stops the sources and exits with
status 3 (a service manager restarts the process, which then waits as the standby).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import attrs
import nats.aio.msg
import numpy as np

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointId,
    Source,
)
from dms_kernel import ConfigError
from dms_kernel.config import load_deployment
from dms_kernel.kernel import Kernel

from .bus import Outbound
from .connection import close_client, connect, ensure_streams, lease_bucket, subjects_for
from .lease import Lease, LeaseLost
from .schema import (
    IngestBatch,
    SchemaError,
    Subjects,
    decode_command_request,
    encode_event,
    encode_ingest,
    points_digest,
    token,
)

__all__ = ["Frontend", "FrontendContext", "EXIT_LEASE_LOST"]

EXIT_LEASE_LOST = 3

log = logging.getLogger("leitstand.frontend")


class _Sequence:
    def __init__(self) -> None:
        self.value = 0

    def next(self) -> int:
        self.value += 1
        return self.value


class FrontendContext:
    """The ``SourceContext`` of a source in a front-end: batches go to NATS, not to a database."""

    def __init__(
        self, frontend: Frontend, source: str, numbers: np.ndarray, names: Sequence[str]
    ) -> None:
        self._frontend = frontend
        self._source = source
        self._subject = frontend.subjects.meas(source)
        self._digest = points_digest(names)
        self._offsets = np.full(len(frontend.kernel.points), -1, dtype=np.int64)
        self._offsets[numbers] = np.arange(numbers.size)
        self.log = logging.getLogger(f"leitstand.source.{source}")
        self.published = 0

    def point_numbers(self, points: Sequence[PointId | str]) -> np.ndarray:
        return self._frontend.kernel.points.numbers(points)

    def publish(self, batch: MeasurementBatch) -> None:
        points = np.asarray(batch.points, dtype=np.int64)
        if not (len(batch.values) == len(batch.quality) == len(batch.source_time) == points.size):
            self.log.error("source %r published a malformed batch; dropped", self._source)
            return
        if points.size == 0:
            return
        if points.min() < 0 or points.max() >= self._offsets.size or (offsets := self._offsets[points]).min() < 0:
            self.log.error("source %r published points it does not own; batch dropped", self._source)
            return
        frontend = self._frontend
        seq = frontend.sequence.next()
        ingest = IngestBatch(
            self._source, offsets, np.asarray(batch.values, dtype=np.float64), np.asarray(batch.quality, dtype=np.uint16),
            np.asarray(batch.source_time, dtype=np.float64), float(batch.receive_time), self._digest,
            frontend.group, frontend.lease.term if frontend.lease else 0, frontend.instance, seq,
        )
        if frontend.outbound.put(self._subject, encode_ingest(ingest), ingest.key):
            self.published += 1

    def publish_one(self, point: int, value: float, quality: int = 0, source_time: float | None = None) -> None:
        now = time.time()
        self.publish(MeasurementBatch(
            self._source, np.array((point,)), np.array((value,)), np.array((quality,), dtype=np.uint16),
            np.array((now if source_time is None else source_time,)), now,
        ))

    def raise_alarm(self, alarm: Alarm) -> None:
        self._frontend.publish_event(alarm)


class Frontend:
    """One front-end process of ``group``.

    :param path: the deployment file (the same file as the core's).
    :param group: which ``[[sources]]`` to run.
    :param instance: unique name of this process (default: group, host, pid, random).
    """

    def __init__(self, path: str | Path, group: str, instance: str | None = None) -> None:
        self.path = str(path)
        self.group = group
        self.instance = token(instance or f"{group}-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        self.sequence = _Sequence()
        self.lease: Lease | None = None
        self.kernel: Kernel
        self.subjects: Subjects
        self.outbound: Outbound
        self.contexts: dict[str, FrontendContext] = {}
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    def publish_event(self, event: object) -> None:
        data = encode_event(event)
        self.outbound.put(self.subjects.event(type(event).__name__), data, f"{self.instance}:e{self.sequence.next()}")

    async def prepare(self) -> None:
        """Load the deployment and create the group's sources (nothing runs yet)."""
        deployment = load_deployment(self.path)
        grouped = tuple(config for config in deployment.sources if config.group == self.group)
        if not grouped:
            groups = sorted({config.group for config in deployment.sources if config.group})
            raise ConfigError(deployment.path, "sources", "group", f"no source has group {self.group!r} (groups: {', '.join(groups) or 'none'})")
        local = attrs.evolve(deployment, sources=grouped, sinks=(), jobs=(), kernel={**deployment.kernel, "bus": "inprocess"})
        self.kernel = Kernel(local)
        await self.kernel.prepare()
        settings = self.kernel.settings_for("nats")
        if not settings:
            raise ConfigError(deployment.path, "settings.nats", None, "the nats plugin is not loaded (is dms-nats installed and not blocked?)")
        self.settings = settings
        self.subjects = subjects_for(settings, self.kernel.name)
        self.outbound = Outbound(settings["outbound_queue"], self._on_overflow, settings["publish_window"])

    def _on_overflow(self, dropped: int) -> None:
        alarm = Alarm(f"front-end {self.instance} cannot reach NATS fast enough: {dropped} batches dropped", AlarmPriority.HIGH, source=self.instance, category="bus-overflow")
        self.outbound.put_anyway(self.subjects.event("Alarm"), encode_event(alarm), alarm.id)

    async def run(self, duration_s: float | None = None) -> int:
        """Standby until the lease is ours, then run the sources; returns the exit status."""
        await self.prepare()
        loop = asyncio.get_running_loop()
        if duration_s is not None:
            loop.call_later(duration_s, self._stop.set)
        client = await connect(self.settings, self.instance)
        js = client.jetstream()
        await ensure_streams(js, self.subjects, self.settings)
        kv = await lease_bucket(js, self.subjects, self.settings)
        self.lease = Lease(kv, token(self.group), self.instance, self.settings["lease_ttl_s"], self.settings["lease_renew_s"])
        publisher = loop.create_task(self.outbound.run(js), name="frontend:publisher")
        status = 0
        tasks: list[asyncio.Task[None]] = []
        subscriptions = []
        try:
            log.info("front-end %s of group %r: standby (%d sources)", self.instance, self.group, len(self.kernel.sources))
            acquire = loop.create_task(self.lease.acquire())
            stopping = loop.create_task(self._stop.wait())
            await asyncio.wait({acquire, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not acquire.done():
                acquire.cancel()
                await asyncio.gather(acquire, return_exceptions=True)
                return 0
            log.info("front-end %s of group %r: ACTIVE (term %d)", self.instance, self.group, self.lease.term)
            self.publish_event(Alarm(
                f"front-end {self.instance} is active for group {self.group!r} (term {self.lease.term})",
                AlarmPriority.LOW, source=self.instance, category="failover",
            ))
            for name, source in self.kernel.sources.items():
                numbers = np.flatnonzero(self.kernel.points.owned_by(name))
                context = FrontendContext(self, name, numbers, self.kernel.points.names_of(numbers))
                self.contexts[name] = context
                subscriptions.append(await client.subscribe(self.subjects.cmd(name), cb=self._command_handler(source)))
                tasks.append(loop.create_task(self._supervise(name, source, context), name=f"source:{name}"))
            keeper = loop.create_task(self.lease.keep())
            await asyncio.wait({keeper, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if keeper.done():
                try:
                    keeper.result()
                except LeaseLost as exc:
                    log.error("front-end %s: %s; stopping its sources", self.instance, exc)
                    status = EXIT_LEASE_LOST
            else:
                keeper.cancel()
                await asyncio.gather(keeper, return_exceptions=True)
        finally:
            for subscription in subscriptions:
                try:
                    await asyncio.wait_for(subscription.unsubscribe(), timeout=2.0)
                except Exception:  # noqa: BLE001 - the connection may be gone already
                    pass
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5.0)
            for name, source in self.kernel.sources.items():
                try:
                    await source.close()
                except Exception as exc:  # noqa: BLE001
                    log.error("source %r failed to close: %s", name, exc)
            deadline = loop.time() + 5.0
            while not self.outbound.idle and loop.time() < deadline and status == 0:
                await asyncio.sleep(0.01)
            publisher.cancel()
            await asyncio.gather(publisher, return_exceptions=True)
            if status == 0:
                await self.lease.release()
            await close_client(client)
        return status

    def _command_handler(self, source: Source):  # noqa: ANN202
        async def handle(message: nats.aio.msg.Msg) -> None:
            try:
                step, command = decode_command_request(message.data)
            except SchemaError as exc:
                await message.respond(encode_event(CommandResult("", CommandStatus.FAILED, f"malformed request: {exc}", step="route")))
                return
            try:
                result = await asyncio.wait_for(getattr(source, step)(command), timeout=command.timeout_s)
            except TimeoutError:
                result = CommandResult(command.id, CommandStatus.TIMEOUT, f"source {source.name!r} did not answer {step} within {command.timeout_s} s", step=step)
            except Exception as exc:  # noqa: BLE001 - the source's failure becomes the result
                result = CommandResult(command.id, CommandStatus.FAILED, f"source {source.name!r} raised {type(exc).__name__}: {exc}", step=step)
            if not isinstance(result, CommandResult):
                result = CommandResult(command.id, CommandStatus.FAILED, f"source {source.name!r} returned {type(result).__name__}", step=step)
            await message.respond(encode_event(result))

        return handle

    async def _supervise(self, name: str, source: Source, context: FrontendContext) -> None:
        """Run a source; restart it with backoff (1 s doubling to 30 s) and alarm when it fails."""
        backoff = 1.0
        while True:
            started = time.monotonic()
            try:
                await source.run(context)
                log.info("source %r finished", name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing source must not stop the front-end
                log.error("source %r failed: %s: %s; restarting in %.0f s", name, type(exc).__name__, exc, backoff)
                context.raise_alarm(Alarm(f"source {name!r} failed: {type(exc).__name__}: {exc}", AlarmPriority.HIGH, source=name, category="comms"))
            if time.monotonic() - started > 60:
                backoff = 1.0
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


async def run_cli(args) -> int:  # noqa: ANN001 - argparse namespace
    """Handler of ``leitstand frontend``."""
    frontend = Frontend(args.deployment, args.group, args.instance)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, frontend.stop)
    return await frontend.run(args.duration)
