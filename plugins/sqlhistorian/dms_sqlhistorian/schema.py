"""Table definitions of the historian (SQLAlchemy Core, portable across SQLite and PostgreSQL).

All tables live in :data:`metadata` without a schema; a database schema (PostgreSQL) is
applied per engine with ``schema_translate_map`` (see :func:`dms_sqlhistorian.engine.make_engine`).
Timestamps are ``float`` seconds since the Unix epoch, as in the event types.

This is the schema at the newest migration (``migrations/versions``); the database is
created and upgraded by :func:`dms_sqlhistorian.migrate.upgrade`, never from this module.
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

__all__ = [
    "metadata",
    "measurements",
    "alarms",
    "audit",
    "commands",
    "command_results",
    "study_results",
    "control_actions",
    "forecasts",
    "measurements_1min",
    "measurements_15min",
    "AGGREGATES",
    "historian_state",
    "spool_progress",
    "TABLES",
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

forecasts = Table(
    "forecasts",
    metadata,
    _id(),
    Column("point", Text, nullable=False),  # point or aggregate (feeder) the forecast is for
    Column("feeder", Text),  # feeder of the point, if the forecaster names one
    Column("issued", Double, nullable=False),  # when the forecast was issued
    Column("target_time", Double, nullable=False),  # the time the value is forecast for
    Column("value", Double),
    Column("model", Text, nullable=False),
    Index("ix_forecasts_point_target_time", "point", "target_time"),
    Index("ix_forecasts_issued", "issued"),
)


def _aggregate(name: str) -> Table:
    # one row per point and bucket; ``bucket`` is the bucket's start (UTC epoch seconds)
    return Table(
        name,
        metadata,
        Column("point", Text, primary_key=True),
        Column("bucket", Double, primary_key=True),
        Column("count", Integer, nullable=False),  # values aggregated (NULL/NaN values not counted)
        Column("min", Double),
        Column("max", Double),
        Column("avg", Double),
        Column("last_time", Double, nullable=False),  # source time of the bucket's newest sample
        Column("last_quality", Integer, nullable=False),  # its packed quality bits
    )


measurements_1min = _aggregate("measurements_1min")
measurements_15min = _aggregate("measurements_15min")

AGGREGATES: dict[str, tuple[Table, float]] = {"1min": (measurements_1min, 60.0), "15min": (measurements_15min, 900.0)}
"""Aggregate tables by resolution name, with their bucket width in seconds."""

historian_state = Table(
    "historian_state",
    metadata,
    Column("name", Text, primary_key=True),  # e.g. "rollup_last_id"
    Column("value", BigInteger, nullable=False),
)

spool_progress = Table(
    "spool_progress",
    metadata,
    Column("file", Text, primary_key=True),  # spool file name (unique per file)
    Column("position", BigInteger, nullable=False),  # bytes replayed into this database
)

TABLES: dict[str, Table] = {table.name: table for table in metadata.sorted_tables}
"""The tables by name."""

