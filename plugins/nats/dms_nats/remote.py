"""The core's stand-in for a source that runs in a front-end process (``[[sources]] group``).

Its ``run`` is a durable JetStream consumer of ``meas.<source>``: every batch the active
front-end published goes through the kernel's own :class:`SourceContext` (ownership checks,
point database, change detection, sinks), then is acknowledged — a restarted core resumes
after the last acknowledged batch. For throughput, the batches of one fetch (up to
``fetch_batch``) are checked one by one and then ingested as one point-database update (split
where a point repeats, so no change is lost for the sinks), and acknowledged with one ack
(``AckPolicy.ALL``: the last message acknowledges the ones before) — after JetStream has
acknowledged the events the batches caused (the changes for the sinks), so a core killed in
between ingests them again on restart rather than leaving a gap in a historian. ``select``/``operate`` are NATS requests on
``cmd.<source>``, answered by the front-end that holds the group's lease.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
from typing import TYPE_CHECKING

import nats.errors
import numpy as np
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    Command,
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointSpec,
    Source,
    SourceContext,
)

from .schema import IngestBatch, SchemaError, decode_event, decode_ingest, encode_command_request, points_digest, token

if TYPE_CHECKING:
    from .bus import NatsBus

__all__ = ["RemoteSource"]

log = logging.getLogger("leitstand.nats.remote")

_RECENT_KEYS = 10_000


class RemoteSource(Source):
    """Stands in for source ``wrapped`` run by a front-end of ``group``.

    :ivar counters: ``ingested``, ``duplicates`` (redelivered or republished batches skipped),
        ``fenced`` (batches of a replaced front-end, lower lease term), ``rejected`` (schema or
        point-list mismatch), ``reordered`` (ingested, but with a lower sequence number than a
        batch of the same front-end ingested before: a publish retried after a connection loss,
        see :class:`~dms_nats.bus.Outbound`).
    :ivar ingested_keys: ``instance:seq`` of the last ingested batches, oldest first.
    """

    def __init__(self, bus: NatsBus, wrapped: Source, group: str) -> None:
        super().__init__(wrapped.name, wrapped.settings)
        self.wrapped = wrapped
        self.group = group
        self._bus = bus
        self._specs: list[PointSpec] = list(wrapped.points())
        self.counters = {"ingested": 0, "duplicates": 0, "fenced": 0, "rejected": 0, "reordered": 0}
        self.ingested_keys: collections.deque[str] = collections.deque(maxlen=100_000)
        self._recent: set[str] = set()
        self._recent_order: collections.deque[str] = collections.deque()
        self._term = 0
        self._last_seq: dict[str, int] = {}
        self._mismatch_alarmed = False

    def points(self) -> list[PointSpec]:
        return self._specs

    @property
    def durable(self) -> str:
        return f"core_meas_{token(self.name)}"

    async def run(self, context: SourceContext) -> None:
        bus = self._bus
        js = await bus.jetstream()
        names = [spec.id.name for spec in self._specs]
        numbers = np.asarray(context.point_numbers(names), dtype=np.int64)
        digest = points_digest(names)
        config = ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.ALL,  # one ack per fetch: the last message acknowledges the ones before
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=bus.settings["ack_wait_s"],
            max_ack_pending=max(bus.settings["fetch_batch"] * 4, 1024),
        )
        config = await self._resume_point(js, config)
        subscription = await js.pull_subscribe(
            bus.subjects.meas(self.name), durable=self.durable, stream=bus.subjects.meas_stream, config=config
        )
        # nats-py's fetch can lose a cancellation (the task then hangs): the pull loop runs in a
        # task of its own that is asked to stop and ends after its current fetch (<= 1 s).
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        puller = loop.create_task(self._pull(subscription, stopping, context, numbers, digest), name=f"pull:{self.name}")
        try:
            await asyncio.shield(puller)
        finally:
            stopping.set()
            done, _ = await asyncio.wait({puller}, timeout=5.0)
            if not done:
                puller.cancel()
                log.error("source %r: pull loop did not stop within 5 s", self.name)
            try:
                await asyncio.wait_for(subscription.unsubscribe(), timeout=2.0)
            except Exception:  # noqa: BLE001 - the connection may be gone already
                pass

    async def _resume_point(self, js, config: ConsumerConfig) -> ConsumerConfig:  # noqa: ANN001
        """Resume right after the last acknowledged batch, in order.

        Batches a killed core had fetched but not acknowledged are still "delivered" to it: the
        server would resend them only after ``ack_wait``, after newer ones — and with
        ``AckPolicy.ALL`` the first ack of the new core would acknowledge them unseen (a gap).
        So a consumer with such batches is recreated to start at its ack floor + 1."""
        stream = self._bus.subjects.meas_stream
        try:
            info = await js.consumer_info(stream, self.durable)
        except NotFoundError:
            return config
        floor = info.ack_floor.stream_seq if info.ack_floor else 0
        delivered = info.delivered.stream_seq if info.delivered else 0
        if delivered <= floor:
            return config
        await js.delete_consumer(stream, self.durable)
        log.info("source %r: resuming after stream sequence %d (%d fetched, not acknowledged)", self.name, floor, info.num_ack_pending)
        return dataclasses.replace(config, deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=floor + 1)

    async def _pull(self, subscription, stopping: asyncio.Event, context: SourceContext, numbers: np.ndarray, digest: int) -> None:  # noqa: ANN001
        batch = self._bus.settings["fetch_batch"]
        info = await subscription.consumer_info()
        ack_all = info.config.ack_policy == AckPolicy.ALL  # a consumer created by an older version acks each
        merge = _Merge(numbers.size)
        while not stopping.is_set():
            try:
                messages = await subscription.fetch(batch=batch, timeout=1.0)
            except (TimeoutError, nats.errors.TimeoutError):
                continue
            except nats.errors.Error as exc:
                log.warning("source %r: fetch failed (%s); retrying", self.name, exc)
                await asyncio.sleep(0.5)
                continue
            if not messages:  # nats-py can return an empty batch
                continue
            for message in messages:
                accepted = self._accept(message.data, context, numbers.size, digest)
                if accepted is not None and not merge.add(accepted):
                    self._publish(context, numbers, merge.take())
                    merge.add(accepted)
            self._publish(context, numbers, merge.take())
            # ack only once the events it caused (changes for the sinks) are in the events stream:
            # a core killed before that gets the batches again instead of leaving a gap for the sinks
            mark = self._bus.outbound.enqueued
            while not await self._bus.outbound.wait_acknowledged(mark, 1.0):
                if stopping.is_set():
                    return
            if ack_all:
                await messages[-1].ack()
            else:
                for message in messages:
                    await message.ack()

    def _accept(self, data: bytes, context: SourceContext, size: int, digest: int) -> IngestBatch | None:
        """Decode and check one message; the batch to ingest, or ``None`` (counted)."""
        try:
            batch = decode_ingest(data)
        except SchemaError as exc:
            self.counters["rejected"] += 1
            context.log.error("source %r: dropped a message from the front-end: %s", self.name, exc)
            return None
        if batch.digest != digest or batch.source != self.name:
            self.counters["rejected"] += 1
            if not self._mismatch_alarmed:
                self._mismatch_alarmed = True
                context.raise_alarm(Alarm(
                    f"front-end {batch.instance!r} runs source {self.name!r} with a different point list than the core "
                    "(deployment files differ); its batches are dropped",
                    AlarmPriority.HIGH, source=self.name, category="config-mismatch",
                ))
            return None
        if batch.term < self._term:
            self.counters["fenced"] += 1
            return None
        self._term = batch.term
        key = batch.key
        if key in self._recent:
            self.counters["duplicates"] += 1
            return None
        self._remember(key)
        if batch.offsets.size and (batch.offsets.min() < 0 or batch.offsets.max() >= size):
            self.counters["rejected"] += 1
            context.log.error("source %r: batch %s names points outside the source's list; dropped", self.name, key)
            return None
        if batch.seq < self._last_seq.get(batch.instance, 0):
            self.counters["reordered"] += 1
            context.log.warning("source %r: batch %s arrived after a later one of its front-end", self.name, key)
        else:
            self._last_seq[batch.instance] = batch.seq
        self.counters["ingested"] += 1
        self.ingested_keys.append(key)
        return batch

    def _publish(self, context: SourceContext, numbers: np.ndarray, batches: list[IngestBatch]) -> None:
        if not batches:
            return
        if len(batches) == 1:
            (batch,) = batches
            offsets, values, quality, source_time = batch.offsets, batch.values, batch.quality, batch.source_time
        else:
            offsets = np.concatenate([batch.offsets for batch in batches])
            values = np.concatenate([batch.values for batch in batches])
            quality = np.concatenate([batch.quality for batch in batches])
            source_time = np.concatenate([batch.source_time for batch in batches])
        context.publish(MeasurementBatch(self.name, numbers[offsets], values, quality, source_time, batches[-1].receive_time))

    def _remember(self, key: str) -> None:
        self._recent.add(key)
        self._recent_order.append(key)
        if len(self._recent_order) > _RECENT_KEYS:
            self._recent.discard(self._recent_order.popleft())

    async def select(self, command: Command) -> CommandResult:
        return await self._forward("select", command)

    async def operate(self, command: Command) -> CommandResult:
        return await self._forward("operate", command)

    async def _forward(self, step: str, command: Command) -> CommandResult:
        client = self._bus.client
        if client is None or not client.is_connected:
            return CommandResult(command.id, CommandStatus.FAILED, "not connected to NATS", step=step)
        try:
            reply = await client.request(
                self._bus.subjects.cmd(self.name), encode_command_request(step, command), timeout=command.timeout_s
            )
        except nats.errors.NoRespondersError:
            return CommandResult(
                command.id, CommandStatus.FAILED,
                f"no active front-end of group {self.group!r} runs source {self.name!r}", step=step,
            )
        except (TimeoutError, nats.errors.TimeoutError):
            return CommandResult(
                command.id, CommandStatus.TIMEOUT,
                f"front-end of group {self.group!r} did not answer {step} within {command.timeout_s} s", step=step,
            )
        try:
            result = decode_event(reply.data)
        except SchemaError as exc:
            return CommandResult(command.id, CommandStatus.FAILED, f"malformed reply from the front-end: {exc}", step=step)
        if not isinstance(result, CommandResult):
            return CommandResult(command.id, CommandStatus.FAILED, f"front-end replied {type(result).__name__}", step=step)
        return result

    async def close(self) -> None:
        await asyncio.sleep(0)


class _Merge:
    """Consecutive batches of one fetch merged into one point-database update (its fixed cost
    is per update), as long as no point repeats: a repeated point would lose its earlier value
    for the sinks, so such a batch starts the next merge."""

    def __init__(self, size: int) -> None:
        self._seen = np.zeros(size, dtype=np.bool_)
        self._batches: list[IngestBatch] = []

    def add(self, batch: IngestBatch) -> bool:
        if self._batches and self._seen[batch.offsets].any():
            return False
        self._seen[batch.offsets] = True
        self._batches.append(batch)
        return True

    def take(self) -> list[IngestBatch]:
        batches, self._batches = self._batches, []
        for batch in batches:
            self._seen[batch.offsets] = False
        return batches
