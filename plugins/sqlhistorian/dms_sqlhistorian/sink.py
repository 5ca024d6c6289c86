"""The ``sql`` sink: stores every event in SQL tables; nothing acknowledged is ever lost."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url
from sqlalchemy.exc import OperationalError

from dms_hookspecs import Event, Setting, SettingsSchema, Sink

from .engine import SYNCHRONOUS, enable_wal, ensure_directory, is_sqlite, make_engine, sqlite_path
from .migrate import upgrade
from .rollup import maintain
from .rows import STORED_TYPES, event_rows, row_count
from .spool import Spool
from .writer import Writer

__all__ = ["SqlSink"]

DAY_S = 86_400.0


class SqlSink(Sink):
    """Historian sink: measurements, alarms, audit trail, commands, study results and forecasts.

    :meth:`open` upgrades the database to the newest schema (Alembic; a database of
    dms-sqlhistorian 0.1 is adopted, a foreign or corrupt one refused by name). Writes go
    through a writer thread (:class:`~.writer.Writer`) that keeps their order and groups
    waiting deliveries into one transaction. :meth:`write` returns — the delivery is
    *acknowledged* — only once its rows are committed, or, while the database is
    unavailable, ``fsync``'d to the disk spool, from which they are replayed in order when
    the database is back (and at the next :meth:`open` after a crash). Without a spool
    (in-memory SQLite, ``spool = false``) a failed write raises, as any sink's would. A
    database server unreachable at :meth:`open` is not fatal when spooling: rows are spooled
    and the schema is upgraded once the server answers.
    """

    settings_schema = SettingsSchema(
        (
            Setting("url", str, "sqlite:///leitstand.db", "SQLAlchemy database URL (relative SQLite paths: from the CWD)"),
            Setting("schema", str, None, "database schema for the tables (PostgreSQL only), created if missing"),
            Setting("spool", bool, True, "buffer rows on disk while the database is unavailable (off: writes fail instead)"),
            Setting("spool_dir", str, None, 'spool directory (default: "<database file>.spool/<sink>" for SQLite, "var/spool/<sink>" otherwise)'),
            Setting("spool_max_bytes", int, 1 << 30, "largest spool size; beyond it writes fail (and are counted as errors)"),
            Setting("retry_s", float, 1.0, "first wait before retrying an unavailable database (doubles up to retry_max_s)"),
            Setting("retry_max_s", float, 30.0, "longest wait between retries of an unavailable database"),
            Setting("sqlite_synchronous", str, "FULL", "SQLite PRAGMA synchronous (FULL: commits survive power loss; NORMAL: a crash)", choices=SYNCHRONOUS),
            Setting("raw_retention_days", float, None, "delete raw measurements older than this, once rolled up (unset: keep)"),
            Setting("retention_1min_days", float, None, "delete 1-minute aggregates older than this (unset: keep)"),
            Setting("retention_15min_days", float, None, "delete 15-minute aggregates older than this (unset: keep)"),
            Setting("maintenance_interval_s", float, 60.0, "how often rollup and retention run in the writer thread (0: never; see maintain())"),
        )
    )
    accepts = STORED_TYPES

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        # fill defaults for settings left out (the sink is also created directly, e.g. by tools)
        settings = {setting.name: setting.default for setting in self.settings_schema} | dict(settings)
        super().__init__(name, settings)
        self.url = make_url(settings["url"])
        self.schema: str | None = settings.get("schema")
        if self.schema and is_sqlite(self.url):
            raise ValueError("setting 'schema' is not supported with SQLite; use a separate database file")
        self.where = str(sqlite_path(self.url) or self.url.render_as_string(hide_password=True))
        self.engine: Engine | None = None
        self.spool: Spool | None = None
        self.rows_written = 0
        """Rows acknowledged: committed, or spooled to disk."""
        self.log = logging.getLogger(f"leitstand.sink.{name}")
        self._writer: Writer | None = None
        self._in_flight: set[asyncio.Future[Any]] = set()

    # ---------------------------------------------------------------- lifecycle

    def spool_directory(self) -> Path | None:
        """Where this sink spools, or ``None`` if it does not."""
        if not self.settings["spool"]:
            return None
        if self.settings["spool_dir"]:
            return Path(self.settings["spool_dir"]).expanduser()
        path = sqlite_path(self.url)
        if is_sqlite(self.url):
            return None if path is None else Path(f"{path}.spool") / self.name
        return Path("var") / "spool" / self.name

    async def open(self) -> None:
        """Connect, create or upgrade the schema, and start the writer (which replays a leftover spool)."""
        await asyncio.to_thread(self._open)
        assert self._writer is not None
        if self._writer.outage_since is not None:
            spooled = " (database unavailable: spooling)"
        elif self._writer.spooling:
            spooled = " (replaying the spool left by the last run)"
        else:
            spooled = ""
        self.log.info("historian %r storing in %s%s", self.name, self.where, spooled)

    def _open(self) -> None:
        ensure_directory(self.url)
        engine = make_engine(self.url, self.schema, synchronous=self.settings["sqlite_synchronous"])
        spool = None
        prepare = None
        directory = self.spool_directory()
        try:
            try:
                upgrade(engine, self.schema, self.where)
            except OperationalError as exc:
                # a database server that is down at start: spool until it is back (a SQLite
                # file that cannot be opened is a configuration error, raised)
                if directory is None or is_sqlite(self.url):
                    raise
                self.log.error(
                    "historian %r: database %s unavailable at start (%s); spooling to %s until it is back",
                    self.name, self.where, str(exc.orig or exc).splitlines()[0], directory,
                )
                prepare = functools.partial(upgrade, engine, self.schema, self.where)
            enable_wal(engine)
            if directory is not None:
                spool = Spool(directory, self.settings["spool_max_bytes"])
                spool.open()
        except BaseException:
            engine.dispose()
            raise
        interval = self.settings["maintenance_interval_s"] or 0.0
        self._writer = Writer(
            engine,
            self.schema,
            spool,
            log=self.log,
            where=self.where,
            retry_s=self.settings["retry_s"],
            retry_max_s=self.settings["retry_max_s"],
            maintenance=self._maintenance if interval > 0 else None,
            maintenance_interval_s=interval if interval > 0 else 60.0,
            prepare=prepare,
        )
        self.engine, self.spool = engine, spool
        self._writer.start()

    async def close(self) -> None:
        """Finish every write in progress, replay what the spool holds if the database is there, release it."""
        writer, self._writer = self._writer, None
        if writer is not None:
            await asyncio.to_thread(writer.stop)
        if self._in_flight:
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        if self.spool is not None:
            self.spool.close()
            self.spool = None
        if self.engine is not None:
            await asyncio.to_thread(self.engine.dispose)
            self.engine = None

    # ---------------------------------------------------------------- writing

    async def write(self, events: Sequence[Event]) -> None:
        """Store ``events``; returns once they are acknowledged (committed or spooled).

        The rows are written even if this call is cancelled (at shutdown the kernel may
        cancel a delivery in progress); :meth:`close` waits for them.

        :raises TypeError: an event type the historian does not store.
        :raises Exception: the database error, if the rows could be neither stored nor
            spooled (no spool, spool full or not writable).
        """
        writer = self._require_open()
        rows = event_rows(events)
        count = row_count(rows)
        if not count:
            return
        future = self._submit(writer.submit, rows, rows=True)
        await asyncio.shield(future)

    def _require_open(self) -> Writer:
        if self._writer is None:
            raise RuntimeError(f"sink {self.name!r} is not open")
        return self._writer

    def _submit(self, method: Any, argument: Any, *, rows: bool = False) -> asyncio.Future[Any]:
        """Hand ``argument`` to ``method`` of the writer; the future resolves in the event loop.

        :param rows: the result is a count of acknowledged rows (added to ``rows_written``).
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._in_flight.add(future)
        future.add_done_callback(self._in_flight.discard)

        def resolve(result: Any) -> None:
            if future.done():
                return
            if isinstance(result, BaseException):
                future.set_exception(result)
            else:
                if rows:
                    self.rows_written += result
                future.set_result(result)

        def done(result: Any) -> None:  # called in the writer thread
            try:
                loop.call_soon_threadsafe(resolve, result)
            except RuntimeError:  # the event loop is gone (interpreter shutdown)
                pass

        method(argument, done)
        return future

    # ---------------------------------------------------------------- operations

    async def flush(self, timeout_s: float = 30.0) -> bool:
        """Wait until every write so far is done and the spool is replayed; ``False`` on timeout."""
        writer = self._require_open()
        deadline = time.monotonic() + timeout_s
        await asyncio.wait_for(asyncio.shield(self._submit(writer.call, lambda: None)), timeout_s)
        while writer.spooling:
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def maintain(self, now: float | None = None) -> dict[str, int]:
        """Roll up and apply retention now, in the writer thread (after the writes before it).

        :returns: ``{"rolled_up": rows, <table>: rows deleted, ...}``.
        """
        writer = self._require_open()
        return await asyncio.shield(self._submit(writer.call, functools.partial(self._maintenance, writer.engine, now)))

    def _maintenance(self, engine: Engine, now: float | None = None) -> dict[str, int]:
        days = {key: None if self.settings[key] is None else self.settings[key] * DAY_S for key in
                ("raw_retention_days", "retention_1min_days", "retention_15min_days")}
        return maintain(
            engine,
            raw_s=days["raw_retention_days"],
            one_minute_s=days["retention_1min_days"],
            fifteen_minutes_s=days["retention_15min_days"],
            now=now,
        )

    def status(self) -> dict[str, Any]:
        """Counters and state: rows acknowledged/stored/spooled/replayed, whether spooling, since when."""
        writer = self._writer
        return {
            "rows_written": self.rows_written,
            "rows_stored": writer.rows_stored if writer else 0,
            "rows_spooled": writer.rows_spooled if writer else 0,
            "rows_replayed": writer.rows_replayed if writer else 0,
            "spooling": bool(writer and writer.spooling),
            "spool_bytes": self.spool.bytes if self.spool else 0,
            "outage_since": writer.outage_since if writer else None,
            "last_error": writer.last_error if writer else None,
        }
