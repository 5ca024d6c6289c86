"""``NatsBus``: the kernel's event bus on NATS JetStream (``[kernel] bus = "nats"``).

* ``publish(event)`` encodes the event (schema v1) into a bounded outbound queue; one
  publisher task sends it to ``events.<Type>`` with up to ``publish_window`` publishes in
  flight and their acknowledgements awaited in order (:class:`Outbound`), so events keep their
  order. A full queue drops (counted, alarmed once per episode), never
  blocks ingest. The message id is a hash of the message: JetStream drops an identical event
  published twice within its duplicate window (e.g. re-ingested after a core restart).
* A ``MeasurementBatch`` whose names are the kernel's point names goes out **packed**
  (arrays as raw bytes, point numbers, the digest of the names table), once the table is
  stored in the KV bucket ``<prefix>_NAMES``; until then, and for any other batch, in the
  generic event form.
* ``subscribe(name, ...)`` is a durable pull consumer on ``events.>`` named after the
  subscriber (``sink:historian`` → ``sink_historian``): a restarted core or historian resumes
  after the last event it acknowledged. Events are acknowledged after the handler returns
  (also when it raises: the error is counted and alarmed, as with the in-process bus). The
  next batch is fetched while the handler works on the current one (a prefetch left at stop is
  returned to the server with a nak, never acknowledged). A packed batch whose names table is
  not cached is decoded after fetching the table from the bucket; a table that is not there
  drops the batch with an error.
* ``remote_source`` stands in for sources of front-end groups (:mod:`dms_nats.remote`).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import nats.errors
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import KeyNotFoundError

from dms_hookspecs import Alarm, AlarmPriority, KernelAPI, MeasurementBatch, Source
from dms_kernel.bus import Bus, SubscriberStats

from .connection import close_client, connect, ensure_streams, names_bucket, subjects_for
from .remote import RemoteSource
from .schema import (
    EVENT_TYPES,
    NamesTable,
    SchemaError,
    UnknownNamesTable,
    decode_event,
    decode_names_table,
    encode_event,
    encode_packed_batch,
    names_table_chunks,
    names_table_entries,
    token,
)

__all__ = ["NatsBus", "Outbound"]

log = logging.getLogger("leitstand.nats.bus")

Handler = Callable[[Sequence[Any]], Awaitable[None]]
_Item = tuple[str, bytes, str, int]  # subject, data, Nats-Msg-Id, number in queue order
_CACHED_TABLES = 8  # names tables a consumer keeps (one per point list the core had)
_MISSING_TABLE_RETRY_S = 5.0  # a table not found is looked up again after this long


class Outbound:
    """Bounded FIFO of ``(subject, data, msg_id)`` sent by one task, pipelined, with JetStream acks.

    Up to ``window`` messages are in flight: they are written to the connection in queue order
    and their acknowledgements awaited oldest first, so the server receives (and stores) them in
    order. A message leaves the queue only when JetStream acknowledged it. When a publish fails
    (no ack within ``timeout_s``, an error reply, the connection lost), the publisher stops
    sending, lets the rest of the window settle, and then sends every message not yet
    acknowledged again, in the original order and with the same ``Nats-Msg-Id`` (go-back-N): a
    message the server had stored after all is kept once (de-duplication window), so a retry
    never stores a message twice. Nothing is sent while the client is not connected.

    Order caveat: if the connection drops while a window is in flight, the server may have
    received a later message but not an earlier one (lost in the dead socket while the later
    one was still in the client's buffer and sent after the reconnect); the retry then stores
    the earlier one after it. The publisher counts this (``reordered``: a message acknowledged
    after an earlier one of its subject failed); the core counts it too (``reordered``: a batch
    with a lower sequence number than one of the same front-end it already ingested).

    :param maxsize: messages waiting or in flight before ``put`` drops.
    :param on_overflow: called with the number dropped so far when an overflow episode starts.
    :param window: messages in flight at most (1: one publish at a time).
    :param timeout_s: how long to wait for each acknowledgement.
    """

    def __init__(
        self, maxsize: int, on_overflow: Callable[[int], None] | None = None, window: int = 256, timeout_s: float = 2.0
    ) -> None:
        if window < 1:
            raise ValueError(f"publish window must be at least 1, not {window}")
        self.maxsize = maxsize
        self.window = window
        self.timeout_s = timeout_s
        self.queue: collections.deque[_Item] = collections.deque()
        self.inflight: collections.deque[tuple[_Item, asyncio.Future[Any], float]] = collections.deque()
        self.enqueued = 0  # number of the last message queued (1, 2, ...)
        self._progress = asyncio.Event()
        self.wakeup = asyncio.Event()
        self.stats = SubscriberStats()
        self.reordered = 0
        self.last_seq: dict[str, int] = {}
        self._overflowing = False
        self._on_overflow = on_overflow

    def __len__(self) -> int:
        return len(self.queue) + len(self.inflight)

    def put(self, subject: str, data: bytes, msg_id: str) -> bool:
        if len(self) >= self.maxsize:
            self.stats.dropped += 1
            if not self._overflowing:
                self._overflowing = True
                log.warning("NATS outbound queue full (%d): dropping messages", len(self))
                if self._on_overflow is not None:
                    self._on_overflow(self.stats.dropped)
            return False
        self.enqueued += 1
        self.queue.append((subject, data, msg_id, self.enqueued))
        self.wakeup.set()
        return True

    def put_anyway(self, subject: str, data: bytes, msg_id: str) -> None:
        """Queue beyond the limit (the one alarm that reports an overflow)."""
        self.enqueued += 1
        self.queue.append((subject, data, msg_id, self.enqueued))
        self.wakeup.set()

    def acknowledged(self, mark: int) -> bool:
        """Whether every message queued up to number ``mark`` is acknowledged (or was dropped)."""
        oldest = self.inflight[0][0][3] if self.inflight else self.queue[0][3] if self.queue else None
        return oldest is None or oldest > mark

    async def wait_acknowledged(self, mark: int, timeout_s: float) -> bool:
        """Wait until :meth:`acknowledged` (``True``) or ``timeout_s`` passed (``False``)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.acknowledged(mark):
            progress = self._progress
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(progress.wait(), remaining)
            except TimeoutError:
                return self.acknowledged(mark)
        return True

    @property
    def busy(self) -> bool:
        return bool(self.inflight)

    @property
    def idle(self) -> bool:
        return not self.queue and not self.inflight

    async def run(self, js: JetStreamContext) -> None:
        send = _sender(js, self.timeout_s)
        client = getattr(js, "_nc", None)
        queue, inflight = self.queue, self.inflight
        loop = asyncio.get_running_loop()
        while True:
            if not queue and not inflight:
                self.wakeup.clear()
                await self.wakeup.wait()
            failed = None
            while queue and len(inflight) < self.window:
                if client is not None and not client.is_connected:
                    break
                item = queue.popleft()
                try:
                    future = await send(item)
                except asyncio.CancelledError:
                    queue.appendleft(item)
                    raise
                except Exception as exc:  # noqa: BLE001 - resent below
                    queue.appendleft(item)
                    failed = exc
                    break
                inflight.append((item, future, loop.time()))
            if inflight and failed is None:
                failed = await self._settle_head(loop)
                if failed is None:
                    continue
            if failed is None:  # not connected: wait for the reconnect
                await asyncio.sleep(0.05)
                continue
            await self._go_back(failed)

    async def _settle_head(self, loop: asyncio.AbstractEventLoop) -> BaseException | None:
        """Wait for the oldest ack, then take every ack already there (refilled as one burst:
        one write for many messages); the error if the oldest one failed."""
        inflight = self.inflight
        _, future, sent = inflight[0]
        if not future.done():
            await asyncio.wait((future,), timeout=max(0.0, sent + self.timeout_s - loop.time()))
            if not future.done():
                return TimeoutError(f"no acknowledgement within {self.timeout_s} s")
        while inflight and inflight[0][1].done():
            future = inflight[0][1]
            if future.cancelled():
                return ConnectionError("acknowledgement cancelled by the client")
            if (exc := future.exception()) is not None:
                return exc
            inflight.popleft()
            self._acked(future.result())
        return None

    async def _go_back(self, exc: BaseException) -> None:
        """Let the window settle, then queue what is not acknowledged again, in order."""
        self.stats.errors += 1
        subject = self.inflight[0][0][0] if self.inflight else self.queue[0][0] if self.queue else "?"
        log.warning("publish to %s failed (%s: %s); resending %d unacknowledged", subject, type(exc).__name__, exc, len(self.inflight))
        loop = asyncio.get_running_loop()
        retry: list[_Item] = []
        failed_subjects: set[str] = set()
        while self.inflight:
            item, future, sent = self.inflight[0]
            try:
                ack = await asyncio.wait_for(future, max(0.0, sent + self.timeout_s - loop.time()))
            except asyncio.CancelledError:
                if _cancelling():
                    raise
                ack = None
            except Exception:  # noqa: BLE001 - not acknowledged: resent
                ack = None
            self.inflight.popleft()
            if ack is None:
                retry.append(item)
                failed_subjects.add(item[0])
                continue
            self._acked(ack)
            if item[0] in failed_subjects:
                self.reordered += 1
                log.warning("%s: a message was stored before an earlier one that is resent (connection lost mid-window)", item[0])
        self.queue.extendleft(reversed(retry))
        await asyncio.sleep(0.2)

    def _acked(self, ack: Any) -> None:
        self._progress.set()
        self._progress = asyncio.Event()
        self.stats.delivered += 1
        self.last_seq[ack.stream] = ack.seq
        if self._overflowing and len(self) < self.maxsize // 2:
            self._overflowing = False


def _cancelling() -> bool:
    """Whether the running task is being cancelled (not merely an awaited future)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _sender(js: JetStreamContext, timeout_s: float) -> Callable[[_Item], Awaitable[asyncio.Future[Any]]]:
    """``send(item)`` writes one message and returns the future of its acknowledgement:
    nats-py's ``publish_async`` (one reply subscription for all), else a task per publish."""
    if hasattr(js, "publish_async"):
        async def send(item: _Item) -> asyncio.Future[Any]:
            subject, data, msg_id, _ = item
            return await js.publish_async(subject, data, headers={"Nats-Msg-Id": msg_id})
    else:  # nats-py < 2.10
        async def send(item: _Item) -> asyncio.Future[Any]:
            subject, data, msg_id, _ = item
            return asyncio.ensure_future(js.publish(subject, data, headers={"Nats-Msg-Id": msg_id}, timeout=timeout_s))
    return send


class _Durable:
    def __init__(self, name: str, handler: Handler, accepts: tuple[type, ...], maxsize: int) -> None:
        self.name = name
        self.handler = handler
        self.wanted = {type_name for type_name, cls in EVENT_TYPES.items() if issubclass(cls, accepts)}
        self.maxsize = maxsize
        self.stats = SubscriberStats()
        self.acked_seq = 0
        self.busy = False
        self.failing = False
        self.stopping = False
        self.task: asyncio.Task[None] | None = None

    @property
    def durable(self) -> str:
        return token(self.name)


class NatsBus(Bus):
    """Event bus on NATS JetStream; created by the kernel as ``NatsBus(kernel)``."""

    def __init__(self, kernel: KernelAPI) -> None:
        self.settings = dict(kernel.settings_for("nats"))
        self.subjects = subjects_for(self.settings, kernel.name)
        self.instance = f"core-{socket.gethostname()}-{os.getpid()}"
        self.client: Client | None = None
        self._js: JetStreamContext | None = None
        self._connected: asyncio.Event | None = None
        self._subscribers: list[_Durable] = []
        self._outbound = Outbound(self.settings["outbound_queue"], self._on_overflow, self.settings["publish_window"])
        self._publisher: asyncio.Task[None] | None = None
        self._running = False
        self.remote_sources: dict[str, RemoteSource] = {}
        self._kernel = kernel
        self._table: NamesTable | None = None  # the kernel's point names, for packed batches
        self._table_stored = False
        self._table_task: asyncio.Task[None] | None = None
        self._tables: collections.OrderedDict[str, NamesTable] = collections.OrderedDict()
        self._missing_tables: dict[str, float] = {}

    # -- Bus interface ---------------------------------------------------------------------

    def subscribe(self, name: str, handler: Handler, accepts: tuple[type, ...], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"subscriber {name!r}: queue size must be at least 1")
        subscriber = _Durable(name, handler, accepts, maxsize)
        self._subscribers.append(subscriber)
        if self._running:
            subscriber.task = asyncio.get_running_loop().create_task(self._consume(subscriber), name=f"nats:{name}")

    def publish(self, event: Any) -> None:
        try:
            data = self._packed(event) if type(event) is MeasurementBatch else None
            if data is None:
                data = encode_event(event)
        except SchemaError as exc:
            log.error("event %s not published: %s", type(event).__name__, exc)
            self._outbound.stats.errors += 1
            return
        self._outbound.put(self.subjects.event(type(event).__name__), data, hashlib.blake2b(data, digest_size=16).hexdigest())

    async def start(self) -> None:
        await self.jetstream()
        self._running = True
        loop = asyncio.get_running_loop()
        self._publisher = loop.create_task(self._outbound.run(self._js), name="nats:publisher")
        if self._table is not None and not self._table_stored:
            self._store_table(self._table)
        for subscriber in self._subscribers:
            subscriber.stopping = False
            if subscriber.task is None:
                subscriber.task = loop.create_task(self._consume(subscriber), name=f"nats:{subscriber.name}")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        self._running = False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + flush_timeout_s
        while self._publisher is not None and not self._publisher.done() and not self._outbound.idle:
            if loop.time() > deadline:
                log.warning("%d events not published at shutdown", len(self._outbound))
                break
            await asyncio.sleep(0.01)
        target = self._outbound.last_seq.get(self.subjects.events_stream, 0)
        for subscriber in self._subscribers:
            while subscriber.task and not subscriber.task.done() and (subscriber.acked_seq < target or subscriber.busy):
                if loop.time() > deadline:
                    log.warning("subscriber %r: not caught up at shutdown (resumes from its durable consumer)", subscriber.name)
                    break
                await asyncio.sleep(0.01)
        for subscriber in self._subscribers:
            subscriber.stopping = True
        consumers = [s.task for s in self._subscribers if s.task is not None]
        if consumers:
            await asyncio.wait(consumers, timeout=2.0)  # each ends after its current fetch (<= 0.5 s)
        tasks = [t for t in (self._publisher, self._table_task, *consumers) if t is not None and not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=5.0)
            for task in stuck:
                log.error("bus task %s did not stop within 5 s", task.get_name())
        self._publisher = self._table_task = None
        for subscriber in self._subscribers:
            subscriber.task = None
        if self.client is not None:
            await close_client(self.client)
        self.client = self._js = None
        self._connected = None

    def stats(self) -> dict[str, SubscriberStats]:
        self._outbound.stats.queued = len(self._outbound)
        stats = {"nats:publisher": self._outbound.stats}
        stats.update({subscriber.name: subscriber.stats for subscriber in self._subscribers})
        return stats

    @property
    def outbound(self) -> Outbound:
        """The publisher of this process's events (``RemoteSource`` waits on it before acking)."""
        return self._outbound

    def remote_source(self, name: str, source: Source, group: str) -> Source:
        remote = RemoteSource(self, source, group)
        self.remote_sources[name] = remote
        return remote

    # -- internals -------------------------------------------------------------------------

    async def jetstream(self) -> JetStreamContext:
        """Connect once (later callers wait for the first) and make sure the streams exist."""
        if self._connected is None:
            self._connected = asyncio.Event()
            self.client = await connect(self.settings, self.instance)
            self._js = self.client.jetstream()
            await ensure_streams(self._js, self.subjects, self.settings)
            self._connected.set()
        await self._connected.wait()
        assert self._js is not None
        return self._js

    # -- packed measurement batches ---------------------------------------------------------

    def _point_names(self) -> list[str] | None:
        """The kernel's point names in point-number order (``None``: not a kernel with a point database)."""
        names = getattr(getattr(self._kernel, "points", None), "names", None)
        return names if isinstance(names, list) else None

    def _packed(self, batch: MeasurementBatch) -> bytes | None:
        """``batch`` packed against the kernel's names table, or ``None`` (send it unpacked): no
        table stored yet, or names that are not the kernel's names of the batch's points."""
        names = self._point_names()
        if names is None or not len(batch):
            return None
        table = self._table
        if table is None or len(table) != len(names):  # first batch, or points were added
            table = self._table = NamesTable.of(names)
            self._cache_table(table)
            self._table_stored = False
            if self._running:
                self._store_table(table)
        if not self._table_stored:
            return None
        return encode_packed_batch(batch, table)

    def _store_table(self, table: NamesTable) -> None:
        if self._table_task is not None and not self._table_task.done():
            self._table_task.cancel()
        self._table_task = asyncio.get_running_loop().create_task(self._put_table(table), name="nats:names-table")

    async def _put_table(self, table: NamesTable) -> None:
        """Store ``table`` in the names bucket (chunks, then the header), unless it is there;
        batches go out packed from then on. Retried until it succeeds."""
        delay = 0.5
        while True:
            try:
                kv = await names_bucket(await self.jetstream(), self.subjects, self.settings)
                try:
                    await kv.get(table.digest)
                except KeyNotFoundError:
                    for key, value in names_table_entries(table):
                        await kv.put(key, value)
                    log.info("names table %s (%d points) stored in %s", table.digest, len(table), self.subjects.names_bucket)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - NATS unavailable: batches stay unpacked meanwhile
                log.warning("names table %s not stored (%s: %s); retrying in %.1f s", table.digest, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
        if self._table is table:
            self._table_stored = True

    def _cache_table(self, table: NamesTable) -> None:
        self._tables[table.digest] = table
        self._tables.move_to_end(table.digest)
        while len(self._tables) > _CACHED_TABLES:
            self._tables.popitem(last=False)

    async def _fetch_table(self, digest: str) -> None:
        """Fetch names table ``digest`` from the bucket into the cache.

        :raises SchemaError: the table is not in the bucket, or is malformed (checked against its digest).
        """
        missing_since = self._missing_tables.get(digest)
        if missing_since is not None and time.monotonic() - missing_since < _MISSING_TABLE_RETRY_S:
            raise SchemaError(f"names table {digest} not found in KV bucket {self.subjects.names_bucket}")
        try:
            kv = await names_bucket(await self.jetstream(), self.subjects, self.settings)
            header = (await kv.get(digest)).value or b""
            chunks = [(await kv.get(f"{digest}.{n}")).value or b"" for n in range(names_table_chunks(digest, header))]
        except KeyNotFoundError:
            self._missing_tables[digest] = time.monotonic()
            raise SchemaError(
                f"names table {digest} not found in KV bucket {self.subjects.names_bucket} "
                "(deleted, or the batch comes from another deployment)"
            ) from None
        table = decode_names_table(digest, header, chunks)
        self._missing_tables.pop(digest, None)
        self._cache_table(table)
        log.info("names table %s (%d points) fetched from %s", digest, len(table), self.subjects.names_bucket)

    async def _decode(self, data: bytes) -> Any:
        try:
            return decode_event(data, self._tables)
        except UnknownNamesTable as exc:
            await self._fetch_table(exc.digest)
            return decode_event(data, self._tables)

    def _on_overflow(self, dropped: int) -> None:
        alarm = Alarm(
            f"NATS bus cannot keep up: its outbound queue is full and events are being dropped ({dropped} so far)",
            AlarmPriority.HIGH, source="nats", category="bus-overflow",
        )
        data = encode_event(alarm)
        self._outbound.put_anyway(self.subjects.event("Alarm"), data, alarm.id)

    async def _consume(self, subscriber: _Durable) -> None:
        js = await self.jetstream()
        config = ConsumerConfig(
            durable_name=subscriber.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.settings["ack_wait_s"],
            max_ack_pending=subscriber.maxsize,
        )
        pull = await js.pull_subscribe(
            f"{self.subjects.root}.events.>", durable=subscriber.durable, stream=self.subjects.events_stream, config=config
        )
        batch = max(1, min(self.settings["fetch_batch"], subscriber.maxsize // 2))  # two batches may be out: one prefetched
        loop = asyncio.get_running_loop()
        fetching: asyncio.Task[list[Any]] | None = None
        try:
            while not subscriber.stopping:  # a flag: nats-py's fetch can lose a cancellation
                if fetching is None:
                    fetching = loop.create_task(pull.fetch(batch=batch, timeout=0.5))
                task, fetching = fetching, None
                try:
                    messages = await task
                except (TimeoutError, nats.errors.TimeoutError):
                    subscriber.stats.queued = 0
                    continue
                except nats.errors.Error as exc:
                    log.warning("subscriber %r: fetch failed (%s); retrying", subscriber.name, exc)
                    await asyncio.sleep(0.5)
                    continue
                if not messages:  # nats-py can return an empty batch
                    continue
                events = []
                for message in messages:
                    if message.subject.rsplit(".", 1)[-1] not in subscriber.wanted:
                        continue
                    try:
                        events.append(await self._decode(message.data))
                    except SchemaError as exc:
                        subscriber.stats.errors += 1
                        log.error("subscriber %r: dropped a message on %s: %s", subscriber.name, message.subject, exc)
                subscriber.stats.queued = messages[-1].metadata.num_pending
                if not subscriber.stopping:  # the next batch comes in while the handler works
                    fetching = loop.create_task(pull.fetch(batch=batch, timeout=0.5))
                if events:
                    subscriber.busy = True
                    try:
                        await subscriber.handler(events)
                        subscriber.stats.delivered += len(events)
                        subscriber.failing = False
                    except asyncio.CancelledError:
                        subscriber.busy = False
                        raise
                    except Exception as exc:  # noqa: BLE001 - a failing subscriber must not stop the bus
                        subscriber.stats.errors += 1
                        log.exception("subscriber %r failed to handle %d events", subscriber.name, len(events))
                        if not subscriber.failing:
                            subscriber.failing = True
                            self.publish(Alarm(
                                f"{subscriber.name} is failing: {type(exc).__name__}: {exc}; its events are being lost",
                                AlarmPriority.HIGH, source="nats", category="sink-failure",
                            ))
                for message in messages:
                    await message.ack()
                subscriber.acked_seq = messages[-1].metadata.sequence.stream
                subscriber.busy = False
        finally:
            if fetching is not None:
                await self._release(fetching, subscriber)

    @staticmethod
    async def _release(fetching: asyncio.Task[list[Any]], subscriber: _Durable) -> None:
        """A prefetch left when the consumer stops: its messages go back to the server (nak: to
        be delivered again at once, to the next consumer of the durable) — never acknowledged."""
        done, _ = await asyncio.wait({fetching}, timeout=1.0)
        if not done:
            fetching.cancel()
            return
        if fetching.cancelled() or fetching.exception() is not None:
            return
        for message in fetching.result():
            try:
                await message.nak()
            except Exception:  # noqa: BLE001 - redelivered after ack_wait instead
                log.debug("subscriber %r: could not return a prefetched message", subscriber.name)
