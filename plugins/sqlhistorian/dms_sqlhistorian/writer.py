"""The historian's writer thread: stores rows in order, spools them while the database is down.

One thread owns all writes of a sink, so rows reach the database in the order they were
submitted. A submission is acknowledged (its callback called with the row count) only when
its rows are committed in the database or ``fsync``'d in the spool:

* **direct**: consecutive submissions waiting in the queue are stored in one transaction
  (group commit);
* **spooling**: when a store fails with a database error, the rows go to the spool and so
  does every later submission, until the spool has been replayed — order is kept;
* **replay**: while spooling, the thread retries the database with exponential backoff
  (``retry_s`` doubling to ``retry_max_s``) and replays the spool in chunks of about
  ``replay_rows`` rows, each chunk in one transaction together with its progress.

Maintenance (rollup and retention) runs in the same thread every ``maintenance_interval_s``
while the database is available, so it never races with the inserts.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from .rows import Rows, merge, row_count
from .schema import spool_progress
from .spool import Spool, SpoolError
from .store import store

__all__ = ["Writer", "DATABASE_ERRORS"]

DATABASE_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, sqlite3.Error, psycopg.Error)
"""Exceptions meaning "the database did not take the rows" (spooled, retried later)."""

Done = Callable[[Any], None]
"""Called once per submission from the writer thread: the row count, or the exception."""

_STOP = object()


class Writer:
    """Writes :data:`~.rows.Rows` to ``engine`` from a thread of its own; see the module docs.

    :param spool: ``None`` disables spooling: a failed store is reported to the submitter.
    :param maintenance: called with the engine every ``maintenance_interval_s`` while the
        database is available (exceptions are logged).
    :param prepare: the database was unreachable at start: everything is spooled until
        ``prepare()`` (the schema upgrade) has succeeded, retried like a replay.
    """

    def __init__(
        self,
        engine: Engine,
        schema: str | None,
        spool: Spool | None,
        *,
        log: logging.Logger,
        where: str,
        retry_s: float = 1.0,
        retry_max_s: float = 30.0,
        replay_rows: int = 50_000,
        maintenance: Callable[[Engine], Any] | None = None,
        maintenance_interval_s: float = 60.0,
        prepare: Callable[[], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.spool = spool
        self.log = log
        self.where = where
        self.retry_s = retry_s
        self.retry_max_s = retry_max_s
        self.replay_rows = replay_rows
        self.maintenance = maintenance
        self.maintenance_interval_s = maintenance_interval_s
        self.rows_stored = 0
        self.rows_spooled = 0
        self.rows_replayed = 0
        self.outage_since: float | None = None
        self.last_error: str | None = None
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._backoff = retry_s
        self._next_attempt = 0.0
        self._next_maintenance = time.monotonic() + maintenance_interval_s
        self._thread: threading.Thread | None = None
        self._prepare = prepare
        self._pending = bool(spool is not None and (spool.pending or prepare is not None))
        if prepare is not None:
            self.outage_since = time.time()

    # ---------------------------------------------------------------- interface

    @property
    def spooling(self) -> bool:
        """Whether rows wait in the spool (new rows are spooled behind them)."""
        return self._pending

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"historian-writer:{self.where}", daemon=True)
        self._thread.start()

    def submit(self, rows: Rows, done: Done) -> None:
        """Queue ``rows``; ``done(count)`` once they are committed or spooled, ``done(exc)`` if neither."""
        self._jobs.put(("rows", rows, done))

    def call(self, function: Callable[[], Any], done: Done) -> None:
        """Run ``function()`` in the writer thread after everything submitted before it."""
        self._jobs.put(("call", function, done))

    def stop(self, timeout_s: float | None = None) -> None:
        """Finish the queued submissions, try once more to replay the spool, end the thread."""
        if self._thread is None:
            return
        self._jobs.put(_STOP)
        self._thread.join(timeout_s)
        self._thread = None

    # ---------------------------------------------------------------- thread

    def _run(self) -> None:
        while True:
            try:
                timeout = self._idle_timeout()
                job = self._jobs.get(timeout=timeout) if timeout is None or timeout > 0 else self._jobs.get_nowait()
            except queue.Empty:
                job = None
            if job is not None:
                batch = [job]
                while batch[-1] is not _STOP and batch[-1][0] == "rows":
                    try:
                        batch.append(self._jobs.get_nowait())
                    except queue.Empty:
                        break
                if self._handle(batch):
                    self._final_replay()
                    return
            self._replay_if_due()
            self._maintain_if_due()

    def _idle_timeout(self) -> float | None:
        now = time.monotonic()
        if self._pending:
            return max(0.0, self._next_attempt - now)
        if self.maintenance is not None:
            return max(0.0, self._next_maintenance - now)
        return None

    def _handle(self, batch: list[Any]) -> bool:
        """Process jobs in order; returns whether a stop was requested."""
        group: list[tuple[Rows, Done]] = []
        for job in batch:
            if job is _STOP or job[0] == "call":
                self._write(group)
                group = []
                if job is _STOP:
                    return True
                _, function, done = job
                try:
                    result = function()
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    done(exc)
                else:
                    done(result)
            else:
                group.append((job[1], job[2]))
        self._write(group)
        return False

    def _write(self, group: list[tuple[Rows, Done]]) -> None:
        if not group:
            return
        if len(group) == 1:
            rows = group[0][0]
        else:
            rows = {}
            for part, _ in group:
                merge(rows, part)
        if not self._pending:
            try:
                with self.engine.begin() as connection:
                    count = store(connection, rows, self.schema)
            except DATABASE_ERRORS as exc:
                if self.spool is None:
                    for _, done in group:
                        done(exc)
                    return
                self._outage(exc)
            except BaseException as exc:  # noqa: BLE001 - a bug, not an outage: reported to the caller
                for _, done in group:
                    done(exc)
                return
            else:
                self.rows_stored += count
                for part, done in group:
                    done(row_count(part))
                return
        assert self.spool is not None
        try:
            self.spool.append(rows)
        except (SpoolError, OSError) as exc:
            self.log.error("historian %s: cannot spool %d rows: %s", self.where, row_count(rows), exc)
            for _, done in group:
                done(exc)
            return
        self.rows_spooled += row_count(rows)
        for part, done in group:
            done(row_count(part))

    def _outage(self, exc: BaseException) -> None:
        self._pending = True
        self.outage_since = time.time()
        self.last_error = f"{type(exc).__name__}: {exc}"
        self._backoff = self.retry_s
        self._next_attempt = time.monotonic() + self._backoff
        assert self.spool is not None
        self.log.error(
            "historian %s: database unavailable (%s); spooling rows to %s until it is back",
            self.where, self.last_error.splitlines()[0], self.spool.directory,
        )

    # ---------------------------------------------------------------- replay

    def _replay_if_due(self) -> None:
        if not self._pending or time.monotonic() < self._next_attempt:
            return
        assert self.spool is not None
        try:
            if self._prepare is not None:
                self._prepare()
                self._prepare = None
            finished = self._replay_chunk()
        except Exception as exc:  # noqa: BLE001 - database errors, or a database refused at start: retried
            self.last_error = f"{type(exc).__name__}: {exc}"
            self._next_attempt = time.monotonic() + self._backoff
            self.log.warning(
                "historian %s: database still unavailable (%s); next attempt in %.1f s",
                self.where, self.last_error.splitlines()[0], self._backoff,
            )
            self._backoff = min(self._backoff * 2, self.retry_max_s)
            return
        if finished:
            self._pending = False
            self._backoff = self.retry_s
            since = self.outage_since
            self.outage_since = None
            self.log.warning(
                "historian %s: database available again%s; spool replayed (%d rows so far)",
                self.where, "" if since is None else f" after {time.time() - since:.1f} s", self.rows_replayed,
            )

    def _replay_chunk(self) -> bool:
        """Replay up to ``replay_rows`` rows of the oldest spool file; returns whether the spool is empty."""
        assert self.spool is not None
        files = self.spool.files()
        if not files:
            return True
        file = files[0]
        with self.engine.begin() as connection:
            position = connection.execute(select(spool_progress.c.position).where(spool_progress.c.file == file.name)).scalar()
            chunk: Rows = {}
            count = 0
            end = position
            complete = True
            try:
                for end, rows in file.records(position or 0):
                    merge(chunk, rows)
                    count += row_count(rows)
                    if count >= self.replay_rows:
                        complete = False
                        break
            except SpoolError as exc:
                self.log.error("historian %s: %s; set aside as .unreadable", self.where, exc)
                file.path.rename(file.path.with_suffix(".unreadable"))
                return not self.spool.files()
            if count:
                store(connection, chunk, self.schema)
            if end != position:
                if position is None:
                    connection.execute(insert(spool_progress).values(file=file.name, position=end))
                else:
                    connection.execute(update(spool_progress).where(spool_progress.c.file == file.name).values(position=end))
        self.rows_replayed += count
        if complete:  # every record read (a torn tail was never acknowledged)
            self.spool.remove(file)
            with self.engine.begin() as connection:
                connection.execute(delete(spool_progress).where(spool_progress.c.file == file.name))
            return not self.spool.files()
        return False

    def _final_replay(self) -> None:
        if self.spool is None:
            return
        deadline = time.monotonic() + 10.0
        while self._pending and time.monotonic() < deadline:
            self._next_attempt = 0.0
            errors_before = self.last_error
            self._replay_if_due()
            if self._pending and self.last_error is not errors_before:
                break
        if self._pending:
            self.log.warning(
                "historian %s: %d bytes remain in the spool %s; they are replayed when the historian opens again",
                self.where, self.spool.bytes, self.spool.directory,
            )

    # ---------------------------------------------------------------- maintenance

    def _maintain_if_due(self) -> None:
        if self.maintenance is None or self._pending or time.monotonic() < self._next_maintenance:
            return
        self._next_maintenance = time.monotonic() + self.maintenance_interval_s
        try:
            self.maintenance(self.engine)
        except Exception as exc:  # noqa: BLE001 - maintenance is retried at the next interval
            self.log.warning("historian %s: maintenance failed: %s: %s", self.where, type(exc).__name__, exc)
