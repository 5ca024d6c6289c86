"""Downsampling and retention: 1-minute and 15-minute aggregates, deleting expired rows.

:func:`rollup` folds the raw measurements stored since its last run (by row id, so late and
replayed rows are counted too, each exactly once) into ``measurements_1min`` and
``measurements_15min``: per point and bucket the count of values, min, max, avg, and the
quality of the newest sample (``last_quality``, at ``last_time``). A bucket that already has
an aggregate is merged with the new rows. NULL (and on PostgreSQL NaN) values are not
counted. The id up to which rows were rolled up is kept in ``historian_state``.

:func:`apply_retention` deletes raw rows older than the raw retention — only rows already
rolled up — and aggregates older than theirs. :func:`maintain` does both; the ``sql`` sink
runs it in its writer thread every ``maintenance_interval_s``.

Rollup assumes one writer per database (the sink): row ids then become visible in order.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, Double, Engine, Integer, Table, case, cast, delete, func, literal, select, true
from sqlalchemy.dialects import postgresql, sqlite

from .schema import AGGREGATES, historian_state, measurements

__all__ = ["rollup", "apply_retention", "maintain", "aggregate_select", "ROLLUP_STATE"]

ROLLUP_STATE = "rollup_last_id"
"""Name of the ``historian_state`` row holding the id of the newest rolled-up measurement."""

CHUNK_IDS = 500_000
"""Raw rows folded per transaction."""


def _bucket(dialect: str, width: float) -> Any:
    if dialect == "sqlite":  # no floor() in every SQLite build; CAST truncates (times are positive)
        return cast(cast(measurements.c.source_time / width, Integer) * width, Double)
    return func.floor(measurements.c.source_time / width) * width


def _value(dialect: str) -> Any:
    if dialect == "postgresql":
        return func.nullif(measurements.c.value, literal(float("nan"), Double))
    return measurements.c.value


def aggregate_select(dialect: str, width: float, after_id: int, until_id: int | None = None, points: Any = None) -> Any:
    """``SELECT point, bucket, count, min, max, avg, last_time, last_quality`` over raw rows with
    ``after_id < id <= until_id``, buckets of ``width`` seconds (optionally only ``points``)."""
    bucket = _bucket(dialect, width)
    value = _value(dialect)
    condition = measurements.c.id > after_id
    if until_id is not None:
        condition = condition & (measurements.c.id <= until_id)
    if points is not None:
        condition = condition & measurements.c.point.in_(points)
    grouped = (
        select(
            measurements.c.point.label("point"),
            bucket.label("bucket"),
            func.count(value).label("count"),
            func.min(value).label("min"),
            func.max(value).label("max"),
            func.avg(value).label("avg"),
            func.max(measurements.c.source_time).label("last_time"),
        )
        .where(condition)
        .group_by(measurements.c.point, bucket)
        .subquery("g")
    )
    newest = measurements.alias("newest")
    newest_condition = (newest.c.point == grouped.c.point) & (newest.c.source_time == grouped.c.last_time) & (newest.c.id > after_id)
    if until_id is not None:
        newest_condition = newest_condition & (newest.c.id <= until_id)
    last_quality = select(newest.c.quality).where(newest_condition).order_by(newest.c.id.desc()).limit(1).scalar_subquery()
    return select(
        grouped.c.point,
        grouped.c.bucket,
        grouped.c["count"],
        grouped.c.min,
        grouped.c.max,
        grouped.c.avg,
        grouped.c.last_time,
        last_quality.label("last_quality"),
    ).where(true())  # SQLite needs a WHERE before ON CONFLICT in INSERT ... SELECT


def _upsert(dialect: str, table: Table, source: Any) -> Any:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).from_select(
        ["point", "bucket", "count", "min", "max", "avg", "last_time", "last_quality"], source
    )
    old, new = table.c, statement.excluded
    smaller = func.least if dialect == "postgresql" else func.min
    larger = func.greatest if dialect == "postgresql" else func.max
    total = old["count"] + new["count"]
    return statement.on_conflict_do_update(
        index_elements=["point", "bucket"],
        set_={
            "count": total,
            "min": smaller(func.coalesce(old.min, new.min), func.coalesce(new.min, old.min)),
            "max": larger(func.coalesce(old.max, new.max), func.coalesce(new.max, old.max)),
            "avg": case(
                (total == 0, None),
                else_=(func.coalesce(old.avg, 0.0) * old["count"] + func.coalesce(new.avg, 0.0) * new["count"]) / total,
            ),
            "last_time": larger(old.last_time, new.last_time),
            "last_quality": case((new.last_time >= old.last_time, new.last_quality), else_=old.last_quality),
        },
    )


def _state(connection: Connection) -> int | None:
    return connection.execute(select(historian_state.c.value).where(historian_state.c.name == ROLLUP_STATE)).scalar()


def rolled_up_id(connection: Connection) -> int:
    """Id of the newest raw row already folded into the aggregates (0: none)."""
    return _state(connection) or 0


def rollup(engine: Engine) -> int:
    """Fold every raw row stored since the last rollup into both aggregate tables; returns how many."""
    dialect = engine.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"rollup supports SQLite and PostgreSQL, not {dialect}")
    total = 0
    while True:
        with engine.begin() as connection:
            state = _state(connection)
            after = state or 0
            newest = connection.execute(select(func.max(measurements.c.id))).scalar()
            if newest is None or newest <= after:
                return total
            until = min(newest, after + CHUNK_IDS)
            for table, width in AGGREGATES.values():
                connection.execute(_upsert(dialect, table, aggregate_select(dialect, width, after, until)))
            total += connection.execute(
                select(func.count()).select_from(measurements).where((measurements.c.id > after) & (measurements.c.id <= until))
            ).scalar_one()
            if state is None:
                connection.execute(historian_state.insert().values(name=ROLLUP_STATE, value=until))
            else:
                connection.execute(historian_state.update().where(historian_state.c.name == ROLLUP_STATE).values(value=until))


def apply_retention(
    engine: Engine,
    *,
    raw_s: float | None,
    one_minute_s: float | None = None,
    fifteen_minutes_s: float | None = None,
    now: float | None = None,
) -> dict[str, int]:
    """Delete raw rows older than ``raw_s`` (only rolled-up ones) and aggregates older than theirs.

    ``None`` keeps a table forever. Returns the deleted rows per table.
    """
    now = time.time() if now is None else now
    deleted: dict[str, int] = {}
    with engine.begin() as connection:
        if raw_s is not None:
            done = rolled_up_id(connection)
            result = connection.execute(
                delete(measurements).where((measurements.c.source_time < now - raw_s) & (measurements.c.id <= done))
            )
            deleted["measurements"] = result.rowcount
        for (table, _), keep in zip(AGGREGATES.values(), (one_minute_s, fifteen_minutes_s), strict=True):
            if keep is not None:
                deleted[table.name] = connection.execute(delete(table).where(table.c.bucket < now - keep)).rowcount
    return deleted


def maintain(
    engine: Engine,
    *,
    raw_s: float | None,
    one_minute_s: float | None = None,
    fifteen_minutes_s: float | None = None,
    now: float | None = None,
) -> dict[str, int]:
    """:func:`rollup`, then :func:`apply_retention`; returns ``{"rolled_up": n, <table>: deleted, ...}``."""
    result = {"rolled_up": rollup(engine)}
    result.update(apply_retention(engine, raw_s=raw_s, one_minute_s=one_minute_s, fifteen_minutes_s=fifteen_minutes_s, now=now))
    return result
