"""Event bus: fans events out to subscribers through bounded queues.

:class:`Bus` is the interface; :class:`InProcessBus` the asyncio implementation. A networked
bus (NATS JetStream) can replace it without touching sources or sinks.

Each subscriber has its own bounded queue and worker task. When a queue is full the new
event is dropped and counted, and the ``on_overflow`` callback fires once per overflow
episode (an episode ends when the queue has drained below half) — so a slow sink never
blocks ingest, and operators learn that it is losing data.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from dms_hookspecs import Source

__all__ = ["Bus", "InProcessBus", "SubscriberStats"]

Handler = Callable[[Sequence[Any]], Awaitable[None]]
OverflowCallback = Callable[[str, int], None]
ErrorCallback = Callable[[str, BaseException], None]

log = logging.getLogger("leitstand.bus")


@attrs.define
class SubscriberStats:
    """Counters of one subscriber."""

    delivered: int = 0
    dropped: int = 0
    errors: int = 0
    queued: int = 0


class Bus(abc.ABC):
    """Interface of the event bus."""

    @abc.abstractmethod
    def subscribe(self, name: str, handler: Handler, accepts: tuple[type, ...], maxsize: int) -> None:
        """Deliver events of the ``accepts`` types to ``handler`` in batches, oldest first."""

    @abc.abstractmethod
    def publish(self, event: Any) -> None:
        """Queue ``event`` for every subscriber that accepts its type; never blocks."""

    @abc.abstractmethod
    async def start(self) -> None:
        """Start delivering."""

    @abc.abstractmethod
    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Deliver what is queued (up to the timeout), then stop."""

    @abc.abstractmethod
    def stats(self) -> dict[str, SubscriberStats]:
        """Counters per subscriber."""

    def remote_source(self, name: str, source: Source, group: str) -> Source | None:
        """A stand-in for source ``name`` when it runs in a front-end process of ``group``.

        Called while the kernel prepares, for each ``[[sources]]`` table with a ``group``. The
        stand-in keeps ``source.points()``; its ``run`` receives the front-end's batches and its
        ``select``/``operate`` forward commands to the front-end. ``None`` (the default, and
        what :class:`InProcessBus` returns) runs the source in this process.
        """
        return None


class _Subscriber:
    def __init__(self, name: str, handler: Handler, accepts: tuple[type, ...], maxsize: int) -> None:
        self.name = name
        self.handler = handler
        self.accepts = accepts
        self.maxsize = maxsize
        self.queue: collections.deque[Any] = collections.deque()
        self.wakeup = asyncio.Event()
        self.stats = SubscriberStats()
        self.overflowing = False
        self.busy = False
        self.failing = False
        self.task: asyncio.Task[None] | None = None


class InProcessBus(Bus):
    """Bounded in-process fan-out on asyncio.

    :param on_overflow: called with ``(subscriber, dropped_so_far)`` when a subscriber starts
        dropping events.
    :param on_error: called with ``(subscriber, exception)`` when a subscriber's handler starts
        failing (once per failure episode; an episode ends with the next successful call).
    :param max_batch: most events handed to one handler call.
    """

    def __init__(
        self,
        on_overflow: OverflowCallback | None = None,
        max_batch: int = 1000,
        on_error: ErrorCallback | None = None,
    ) -> None:
        self._subscribers: list[_Subscriber] = []
        self._by_type: dict[type, list[_Subscriber]] = {}
        self._on_overflow = on_overflow
        self._on_error = on_error
        self._max_batch = max_batch
        self._running = False

    def subscribe(self, name: str, handler: Handler, accepts: tuple[type, ...], maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError(f"subscriber {name!r}: queue size must be at least 1")
        subscriber = _Subscriber(name, handler, accepts, maxsize)
        self._subscribers.append(subscriber)
        self._by_type.clear()
        if self._running:
            subscriber.task = asyncio.get_running_loop().create_task(self._work(subscriber), name=f"bus:{name}")

    def wants(self, event_type: type) -> bool:
        """Whether any subscriber accepts events of this type (lets producers skip work)."""
        return bool(self._targets(event_type))

    def _targets(self, event_type: type) -> list[_Subscriber]:
        targets = self._by_type.get(event_type)
        if targets is None:
            targets = [s for s in self._subscribers if issubclass(event_type, s.accepts)]
            self._by_type[event_type] = targets
        return targets

    def publish(self, event: Any) -> None:
        for subscriber in self._targets(type(event)):
            queue = subscriber.queue
            if len(queue) >= subscriber.maxsize:
                subscriber.stats.dropped += 1
                if not subscriber.overflowing:
                    subscriber.overflowing = True
                    log.warning("subscriber %r is too slow: queue full (%d), dropping events", subscriber.name, len(queue))
                    if self._on_overflow is not None:
                        self._on_overflow(subscriber.name, subscriber.stats.dropped)
                continue
            queue.append(event)
            subscriber.wakeup.set()

    async def _work(self, subscriber: _Subscriber) -> None:
        queue = subscriber.queue
        while True:
            if not queue:
                subscriber.wakeup.clear()
                await subscriber.wakeup.wait()
            count = min(len(queue), self._max_batch)
            events = [queue.popleft() for _ in range(count)]
            if subscriber.overflowing and len(queue) < subscriber.maxsize // 2:
                subscriber.overflowing = False
            subscriber.busy = True
            try:
                await subscriber.handler(events)
                subscriber.stats.delivered += count
                subscriber.failing = False
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing subscriber must not stop the bus
                subscriber.stats.errors += 1
                log.exception("subscriber %r failed to handle %d events", subscriber.name, count)
                if not subscriber.failing:
                    subscriber.failing = True
                    if self._on_error is not None:
                        self._on_error(subscriber.name, exc)
            finally:
                subscriber.busy = False

    async def start(self) -> None:
        self._running = True
        loop = asyncio.get_running_loop()
        for subscriber in self._subscribers:
            if subscriber.task is None:
                subscriber.task = loop.create_task(self._work(subscriber), name=f"bus:{subscriber.name}")

    async def stop(self, flush_timeout_s: float = 5.0) -> None:
        self._running = False
        deadline = asyncio.get_running_loop().time() + flush_timeout_s
        for subscriber in self._subscribers:
            while (subscriber.queue or subscriber.busy) and subscriber.task and not subscriber.task.done():
                if asyncio.get_running_loop().time() > deadline:
                    log.warning("subscriber %r: %d events not flushed at shutdown", subscriber.name, len(subscriber.queue))
                    break
                await asyncio.sleep(0.01)
        for subscriber in self._subscribers:
            if subscriber.task is not None:
                subscriber.task.cancel()
        await asyncio.gather(*(s.task for s in self._subscribers if s.task), return_exceptions=True)
        for subscriber in self._subscribers:
            subscriber.task = None

    def stats(self) -> dict[str, SubscriberStats]:
        for subscriber in self._subscribers:
            subscriber.stats.queued = len(subscriber.queue)
        return {subscriber.name: subscriber.stats for subscriber in self._subscribers}
