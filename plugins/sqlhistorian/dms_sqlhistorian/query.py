"""Reading the historian: time series of a point, latest values, counts and raw rows.

Every function takes an :class:`~sqlalchemy.Engine` (e.g. ``SqlSink.engine``, which carries
its schema) or a database URL (a temporary engine is created and disposed per call).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import URL, Connection, Engine, func, select

from dms_hookspecs import Measurement, PointId, Quality

from .engine import make_engine
from .schema import TABLES, measurements

__all__ = ["history", "latest", "count", "counts_by_point", "records"]

Target = Engine | URL | str
"""An engine, or a database URL."""


@contextmanager
def _connect(target: Target, schema: str | None) -> Iterator[Connection]:
    if isinstance(target, Engine):
        with target.connect() as connection:
            if schema:
                connection = connection.execution_options(schema_translate_map={None: schema})
            yield connection
        return
    engine = make_engine(target, schema)
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def _measurement(row: Any) -> Measurement:
    return Measurement(
        point=PointId(row.point),
        value=math.nan if row.value is None else float(row.value),
        quality=Quality.from_bits(row.quality),
        source_time=row.source_time,
        receive_time=row.receive_time,
    )


def history(
    target: Target,
    point: PointId | str,
    since: float | None = None,
    until: float | None = None,
    *,
    limit: int | None = None,
    schema: str | None = None,
) -> list[Measurement]:
    """Stored values of one point with ``since <= source_time <= until``, oldest first.

    :param limit: at most this many (the oldest ones).
    """
    query = select(measurements).where(measurements.c.point == str(point))
    if since is not None:
        query = query.where(measurements.c.source_time >= since)
    if until is not None:
        query = query.where(measurements.c.source_time <= until)
    query = query.order_by(measurements.c.source_time, measurements.c.id).limit(limit)
    with _connect(target, schema) as connection:
        return [_measurement(row) for row in connection.execute(query)]


def latest(target: Target, point: PointId | str, *, schema: str | None = None) -> Measurement | None:
    """The newest stored value of one point (by source time, then storage order), or ``None``."""
    query = (
        select(measurements)
        .where(measurements.c.point == str(point))
        .order_by(measurements.c.source_time.desc(), measurements.c.id.desc())
        .limit(1)
    )
    with _connect(target, schema) as connection:
        row = connection.execute(query).first()
    return None if row is None else _measurement(row)


def count(target: Target, table: str = "measurements", *, point: PointId | str | None = None, schema: str | None = None) -> int:
    """Number of rows in a historian table, of one point if given (``measurements``, ``alarms``).

    :raises KeyError: unknown table name.
    :raises ValueError: ``point`` given for a table without a point column.
    """
    selected = TABLES[table]
    query = select(func.count()).select_from(selected)
    if point is not None:
        if "point" not in selected.c:
            raise ValueError(f"table {table!r} has no point column")
        query = query.where(selected.c.point == str(point))
    with _connect(target, schema) as connection:
        return int(connection.execute(query).scalar_one())


def counts_by_point(target: Target, *, schema: str | None = None) -> dict[str, int]:
    """Number of stored values per point."""
    query = select(measurements.c.point, func.count()).group_by(measurements.c.point)
    with _connect(target, schema) as connection:
        return {point: int(number) for point, number in connection.execute(query)}


def records(target: Target, table: str, *, limit: int | None = None, schema: str | None = None) -> list[dict[str, Any]]:
    """Rows of a historian table as dicts, in storage order.

    :raises KeyError: unknown table name.
    """
    selected = TABLES[table]
    query = select(selected).order_by(selected.c.id).limit(limit)
    with _connect(target, schema) as connection:
        return [dict(row._mapping) for row in connection.execute(query)]
