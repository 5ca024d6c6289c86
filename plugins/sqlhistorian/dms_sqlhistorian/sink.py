"""The ``sql`` sink: stores every event in SQL tables, one transaction per delivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, make_url

from dms_hookspecs import Event, Setting, SettingsSchema, Sink

from .engine import ensure_directory, is_sqlite, make_engine
from .rows import STORED_TYPES, group_rows
from .schema import create_tables

__all__ = ["SqlSink"]


class SqlSink(Sink):
    """Historian sink: measurements, alarms, audit trail, commands and study results in SQL.

    Database I/O runs in a worker thread (``asyncio.to_thread``) so the kernel's event loop
    never waits for the database. Each :meth:`write` inserts its events in one transaction
    (one ``executemany`` per table): on failure nothing of that delivery is stored, the
    exception propagates to the kernel's bus (logged and counted there), and rows committed
    earlier are untouched. The next delivery tries again on a fresh connection.
    """

    settings_schema = SettingsSchema(
        (
            Setting("url", str, "sqlite:///leitstand.db", "SQLAlchemy database URL (relative SQLite paths: from the CWD)"),
            Setting("schema", str, None, "database schema for the tables (PostgreSQL only), created if missing"),
        )
    )
    accepts = STORED_TYPES

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(name, settings)
        self.url = make_url(settings["url"])
        self.schema: str | None = settings.get("schema")
        if self.schema and is_sqlite(self.url):
            raise ValueError("setting 'schema' is not supported with SQLite; use a separate database file")
        self.engine: Engine | None = None
        self.rows_written = 0
        self.log = logging.getLogger(f"leitstand.sink.{name}")
        self._in_flight: asyncio.Future[int] | None = None

    async def open(self) -> None:
        """Connect, and create the schema, tables and indexes that are missing."""
        self.engine = await asyncio.to_thread(self._open)
        self.log.info("historian %r storing in %s", self.name, self.url.render_as_string(hide_password=True))

    def _open(self) -> Engine:
        ensure_directory(self.url)
        engine = make_engine(self.url, self.schema)
        try:
            with engine.begin() as connection:
                create_tables(connection, self.schema)
        except BaseException:
            engine.dispose()
            raise
        return engine

    async def write(self, events: Sequence[Event]) -> None:
        """Store ``events`` in one transaction.

        The insert runs to completion even if this call is cancelled (at shutdown the kernel
        may cancel a delivery in progress); :meth:`close` waits for it.
        """
        if self.engine is None:
            raise RuntimeError(f"sink {self.name!r} is not open")
        future = asyncio.ensure_future(asyncio.to_thread(self._store, self.engine, events))
        self._in_flight = future
        try:
            self.rows_written += await asyncio.shield(future)
        finally:
            if future.done():
                self._in_flight = None

    def _store(self, engine: Engine, events: Sequence[Event]) -> int:
        grouped = group_rows(events)
        if not grouped:
            return 0
        with engine.begin() as connection:
            for table, rows in grouped.items():
                connection.execute(table.insert(), rows)
        return sum(len(rows) for rows in grouped.values())

    async def close(self) -> None:
        """Wait for a write still in progress, then release the connections."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            try:
                self.rows_written += await in_flight
            except Exception as exc:  # noqa: BLE001 - nobody else will report it
                self.log.error("historian %r: last write failed at shutdown: %s: %s", self.name, type(exc).__name__, exc)
        if self.engine is not None:
            await asyncio.to_thread(self.engine.dispose)
            self.engine = None
