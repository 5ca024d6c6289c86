"""Engines for historian databases: SQLite in WAL mode, schema mapping for PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.pool import StaticPool

__all__ = ["make_engine", "enable_wal", "is_sqlite", "sqlite_path", "ensure_directory"]


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


SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
"""Values of SQLite's ``PRAGMA synchronous``."""


def _sqlite_pragmas(synchronous: str) -> Any:
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # FULL makes every commit durable against power loss too (NORMAL: against a process
        # crash only); WAL is switched on once, persistently, by enable_wal after the schema
        # check, so a foreign database file is never changed
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA busy_timeout=5000")
        finally:
            cursor.close()

    return on_connect


def enable_wal(engine: Engine) -> None:
    """Switch a SQLite database to WAL mode (stored in the file: readers — trend charts,
    reports — then read while the historian writes). Does nothing for other databases."""
    if engine.dialect.name != "sqlite":
        return
    with engine.connect() as connection:
        mode = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
        if mode not in ("wal", "memory"):
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")


def make_engine(url: str | URL, schema: str | None = None, *, synchronous: str = "FULL", connect_timeout_s: float = 10.0) -> Engine:
    """An engine for ``url``; with ``schema``, the historian tables are looked up in that schema.

    SQLite connections use ``PRAGMA synchronous`` = ``synchronous`` (see :func:`enable_wal`); an
    in-memory SQLite database is shared by all threads (one connection), so the sink's
    worker thread and readers see the same data. PostgreSQL connections give up after
    ``connect_timeout_s`` and use TCP keepalives, unless the URL sets these parameters.
    """
    url = make_url(url)
    if synchronous.upper() not in SYNCHRONOUS:
        raise ValueError(f"synchronous must be one of {', '.join(SYNCHRONOUS)}, not {synchronous!r}")
    options: dict[str, Any] = {"pool_pre_ping": True}
    if is_sqlite(url):
        if schema:
            raise ValueError("a database schema is not supported with SQLite; use a separate database file")
        if sqlite_path(url) is None and not (url.database or "").startswith("file:"):
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.get_backend_name() == "postgresql":
        # give up on a server that does not answer, and notice a connection that died silently
        # (TCP keepalives), instead of blocking the writer thread for the kernel's TCP timeout
        defaults = {"connect_timeout": max(1, round(connect_timeout_s)), "keepalives": 1, "keepalives_idle": 30,
                    "keepalives_interval": 10, "keepalives_count": 3}
        options["connect_args"] = {key: value for key, value in defaults.items() if key not in url.query}
    engine = create_engine(url, **options)
    if is_sqlite(url):
        event.listen(engine, "connect", _sqlite_pragmas(synchronous.upper()))
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine
