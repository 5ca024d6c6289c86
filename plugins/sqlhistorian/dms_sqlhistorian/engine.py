"""Engines for historian databases: SQLite in WAL mode, schema mapping for PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

__all__ = ["make_engine", "is_sqlite", "sqlite_path", "ensure_directory"]


def is_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite"


def sqlite_path(url: URL) -> Path | None:
    """The database file of a SQLite URL; ``None`` for other databases and in-memory SQLite."""
    database = url.database
    if not is_sqlite(url) or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def ensure_directory(url: URL) -> None:
    """Create the directory of a SQLite database file if it is missing (relative to the CWD)."""
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def _enable_wal(dbapi_connection: Any, connection_record: Any) -> None:
    # WAL lets readers (trend charts, reports) read while the kernel writes
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()


def make_engine(url: str | URL, schema: str | None = None) -> Engine:
    """An engine for ``url``; with ``schema``, the historian tables are looked up in that schema.

    SQLite connections switch to WAL mode; an in-memory SQLite database is shared by all
    threads (one connection), so the sink's worker threads and readers see the same data.
    """
    url = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if is_sqlite(url):
        if schema:
            raise ValueError("a database schema is not supported with SQLite; use a separate database file")
        if sqlite_path(url) is None and not (url.database or "").startswith("file:"):
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_engine(url, **options)
    if is_sqlite(url):
        event.listen(engine, "connect", _enable_wal)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine
