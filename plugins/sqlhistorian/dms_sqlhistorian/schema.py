"""Table definitions of the historian (SQLAlchemy Core, portable across SQLite and PostgreSQL).

All tables live in :data:`metadata` without a schema; a database schema (PostgreSQL) is
applied per engine with ``schema_translate_map`` (see :func:`dms_sqlhistorian.engine.make_engine`).
Timestamps are ``float`` seconds since the Unix epoch, as in the event types.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateSchema

__all__ = [
    "metadata",
    "measurements",
    "alarms",
    "audit",
    "commands",
    "command_results",
    "study_results",
    "control_actions",
    "TABLES",
    "create_tables",
]

metadata = MetaData()


def _id() -> Column[int]:
    # BIGINT on PostgreSQL; INTEGER PRIMARY KEY (the rowid) on SQLite, which autoincrements
    return Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)


measurements = Table(
    "measurements",
    metadata,
    _id(),
    Column("point", Text, nullable=False),
    Column("value", Double),  # NULL for NaN on SQLite
    Column("quality", Integer, nullable=False),  # packed IEC 61850 bits (Quality.to_bits)
    Column("source_time", Double, nullable=False),
    Column("receive_time", Double, nullable=False),
    Column("source", Text, nullable=False),
    Index("ix_measurements_point_source_time", "point", "source_time"),
)

alarms = Table(
    "alarms",
    metadata,
    _id(),
    Column("alarm_id", Text, nullable=False),
    Column("time", Double, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("state", Text, nullable=False),
    Column("category", Text, nullable=False),
    Column("source", Text, nullable=False),
    Column("point", Text),
    Column("message", Text, nullable=False),
    Index("ix_alarms_time", "time"),
)

audit = Table(
    "audit",
    metadata,
    _id(),
    Column("time", Double, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("subject", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Index("ix_audit_time", "time"),
)

commands = Table(
    "commands",
    metadata,
    _id(),
    Column("command_id", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("select_before_operate", Boolean, nullable=False),
    Column("originator", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("timeout_s", Double, nullable=False),
    Column("created", Double, nullable=False),
    Index("ix_commands_command_id", "command_id"),
)

command_results = Table(
    "command_results",
    metadata,
    _id(),
    Column("command_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("step", Text, nullable=False),
    Column("finished", Double, nullable=False),
    Index("ix_command_results_command_id", "command_id"),
)

study_results = Table(
    "study_results",
    metadata,
    _id(),
    Column("study", Text, nullable=False),
    Column("solver", Text, nullable=False),
    Column("converged", Boolean, nullable=False),
    Column("message", Text, nullable=False),
    Column("started", Double, nullable=False),
    Column("finished", Double, nullable=False),
    Column("data", Text, nullable=False),  # JSON
    Index("ix_study_results_study_finished", "study", "finished"),
)

control_actions = Table(
    "control_actions",
    metadata,
    _id(),
    Column("controller", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("command_id", Text, nullable=False),
    Column("target", Text, nullable=False),
    Column("value", Double, nullable=False),
    Column("originator", Text, nullable=False),
    Column("created", Double, nullable=False),
)

TABLES: dict[str, Table] = {table.name: table for table in metadata.sorted_tables}
"""The tables by name."""


def create_tables(connection: Connection, schema: str | None = None) -> None:
    """Create the database schema (if given) and every missing table and index."""
    if schema:
        connection.execute(CreateSchema(schema, if_not_exists=True))
    metadata.create_all(connection, checkfirst=True)
