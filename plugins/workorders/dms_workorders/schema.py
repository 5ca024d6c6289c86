"""Tables of the workflow (SQLAlchemy Core, SQLite and PostgreSQL) and the engine factory.

Same conventions as the SQL historian: a database URL (SQLite file by default, PostgreSQL in
production), optional database schema applied with ``schema_translate_map``, tables created
if missing, timestamps as ``float`` seconds since the Unix epoch. Table names start with
``wo_`` so that the workflow can share a database with the historian.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    BigInteger,
    Column,
    Double,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    create_engine,
    event,
    make_url,
)
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool
from sqlalchemy.schema import CreateSchema

__all__ = ["metadata", "crews", "incidents", "orders", "transitions", "notes", "outages", "create_tables", "make_engine"]

metadata = MetaData()


def _id() -> Column[int]:
    # BIGINT on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite, which autoincrements
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


def _ref(column: str, target: str, nullable: bool = True) -> Column[int]:
    return Column(column, BigInteger().with_variant(Integer, "sqlite"), ForeignKey(target), nullable=nullable)


crews = Table(
    "wo_crews",
    metadata,
    Column("name", Text, primary_key=True),
    Column("skills", Text, nullable=False),  # JSON list
    Column("shift_start", Text, nullable=False),
    Column("shift_end", Text, nullable=False),
    Column("lat", Double),
    Column("lon", Double),
    Column("updated", Double, nullable=False),
)

incidents = Table(
    "wo_incidents",
    metadata,
    _id(),
    Column("title", Text, nullable=False),
    Column("source", Text, nullable=False),  # alarm | outage | operator
    Column("created", Double, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("element", Text),
    Column("lat", Double),
    Column("lon", Double),
    Column("status", Text, nullable=False),  # open | closed
    Column("alarm_id", Text, unique=True),
    Column("closed", Double),
    Index("ix_wo_incidents_created", "created"),
)

orders = Table(
    "wo_orders",
    metadata,
    _id(),
    _ref("incident_id", "wo_incidents.id", nullable=False),
    Column("state", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("skills", Text, nullable=False),  # JSON list
    Column("crew", Text),
    Column("created", Double, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("updated", Double, nullable=False),
    Index("ix_wo_orders_incident", "incident_id"),
    Index("ix_wo_orders_state", "state"),
)

transitions = Table(
    "wo_transitions",
    metadata,
    _id(),
    _ref("order_id", "wo_orders.id", nullable=False),
    Column("time", Double, nullable=False),
    Column("actor", Text, nullable=False),
    Column("from_state", Text),  # NULL at creation
    Column("to_state", Text, nullable=False),
    Column("crew", Text),
    Column("note", Text, nullable=False),
    Index("ix_wo_transitions_order", "order_id"),
)

notes = Table(
    "wo_notes",
    metadata,
    _id(),
    _ref("incident_id", "wo_incidents.id"),
    _ref("order_id", "wo_orders.id"),
    Column("time", Double, nullable=False),
    Column("actor", Text, nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_wo_notes_incident", "incident_id"),
)

outages = Table(
    "wo_outages",
    metadata,
    _id(),
    _ref("incident_id", "wo_incidents.id"),
    Column("started", Double, nullable=False),
    Column("restored", Double),
    Column("customers", Integer, nullable=False),
    Column("elements", Text, nullable=False),  # JSON list of consumer mRIDs
    Column("cause", Text, nullable=False),
    Index("ix_wo_outages_started", "started"),
)


def create_tables(connection: Connection, schema: str | None = None) -> None:
    """Create the database schema (if given) and every missing table and index."""
    if schema:
        connection.execute(CreateSchema(schema, if_not_exists=True))
    metadata.create_all(connection, checkfirst=True)


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # readers (HMI, reports) while the kernel writes
        cursor.execute("PRAGMA foreign_keys=ON")
    finally:
        cursor.close()


def make_engine(url: str | URL, schema: str | None = None) -> Engine:
    """An engine for ``url`` (tables looked up in ``schema`` if given; PostgreSQL only).

    A SQLite file's directory is created if missing; in-memory SQLite is shared by all threads.

    :raises ValueError: a schema with SQLite.
    """
    url = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    sqlite = url.get_backend_name() == "sqlite"
    if sqlite:
        if schema:
            raise ValueError("a database schema is not supported with SQLite; use a separate database file")
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        else:
            options.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
    engine = create_engine(url, **options)
    if sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine
