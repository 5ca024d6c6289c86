"""Cyclic jobs on asyncio with overrun detection.

A job runs every ``period_s`` seconds on a fixed grid. If it is still running when its next
tick is due, that tick is skipped and an overrun is reported — jobs are never stacked.
A job that raises is reported and runs again at its next tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import attrs

__all__ = ["Scheduler", "JobStats"]

log = logging.getLogger("leitstand.scheduler")

Job = Callable[[], Awaitable[None]]
OverrunCallback = Callable[[str, float, float], None]
ErrorCallback = Callable[[str, BaseException], None]


@attrs.define
class JobStats:
    """Counters of one job."""

    period_s: float
    runs: int = 0
    overruns: int = 0
    failures: int = 0
    last_duration_s: float = 0.0
    max_duration_s: float = 0.0


class Scheduler:
    """Runs named jobs periodically.

    :param on_overrun: ``(job, period_s, running_for_s)`` when a tick is skipped because the
        previous run has not finished.
    :param on_error: ``(job, exception)`` when a run raised.
    """

    def __init__(self, on_overrun: OverrunCallback | None = None, on_error: ErrorCallback | None = None) -> None:
        self._jobs: dict[str, tuple[float, Job]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._runs: set[asyncio.Task[None]] = set()
        self.stats: dict[str, JobStats] = {}
        self._on_overrun = on_overrun
        self._on_error = on_error

    def every(self, name: str, period_s: float, job: Job) -> None:
        """Schedule ``job`` every ``period_s`` seconds (first run immediately at start)."""
        if period_s <= 0:
            raise ValueError(f"job {name!r}: period must be positive, got {period_s}")
        if name in self._jobs:
            raise ValueError(f"job {name!r} is already scheduled")
        self._jobs[name] = (period_s, job)
        self.stats[name] = JobStats(period_s)

    async def start(self) -> None:
        for name, (period_s, job) in self._jobs.items():
            self._tasks.append(asyncio.get_running_loop().create_task(self._loop(name, period_s, job), name=f"job:{name}"))

    async def stop(self) -> None:
        for task in [*self._tasks, *self._runs]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._runs, return_exceptions=True)
        self._tasks.clear()
        self._runs.clear()

    async def _loop(self, name: str, period_s: float, job: Job) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats[name]
        running: asyncio.Task[None] | None = None
        started = 0.0
        tick = loop.time()
        while True:
            now = loop.time()
            if running is not None and not running.done():
                stats.overruns += 1
                log.warning("job %r overran its period of %.3f s (running for %.3f s); tick skipped", name, period_s, now - started)
                if self._on_overrun is not None:
                    self._on_overrun(name, period_s, now - started)
            else:
                started = now
                running = loop.create_task(self._run(name, job), name=f"run:{name}")
                self._runs.add(running)
                running.add_done_callback(self._runs.discard)
            tick += period_s
            if tick < loop.time():  # the event loop was blocked: realign instead of bursting
                tick = loop.time() + period_s
            await asyncio.sleep(tick - loop.time())

    async def _run(self, name: str, job: Job) -> None:
        loop = asyncio.get_running_loop()
        stats = self.stats[name]
        started = loop.time()
        try:
            await job()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported, the job runs again next tick
            stats.failures += 1
            log.error("job %r failed: %s", name, exc)
            if self._on_error is not None:
                self._on_error(name, exc)
        finally:
            duration = loop.time() - started
            stats.runs += 1
            stats.last_duration_s = duration
            stats.max_duration_s = max(stats.max_duration_s, duration)
