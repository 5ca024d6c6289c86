"""Reading the historian: time series (raw, 1-minute, 15-minute), forecasts, latest values, counts.

Every function takes an :class:`~sqlalchemy.Engine` (e.g. ``SqlSink.engine``, which carries
its schema) or a database URL (a temporary engine is created and disposed per call).

* :func:`series` — several points over a time range, raw or aggregated, as numpy columns
  (trend charts, forecasting, reports);
* :func:`forecasts` — stored forecasts, the newest issue per target time by default;
* :func:`history` / :func:`latest` — one point as :class:`~dms_hookspecs.Measurement` objects;
* :func:`count`, :func:`counts_by_point`, :func:`records` — table contents.

See docs/historian.md for the semantics of time ranges and aggregates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import numpy as np
from sqlalchemy import URL, Connection, Engine, func, select

from dms_hookspecs import Measurement, PointId, Quality

from .engine import make_engine
from .rollup import aggregate_select, rolled_up_id
from .schema import AGGREGATES, TABLES, forecasts as forecasts_table, measurements

__all__ = [
    "AGGREGATE_NAMES",
    "Series",
    "ForecastSeries",
    "series",
    "forecasts",
    "history",
    "latest",
    "count",
    "counts_by_point",
    "records",
]

AGGREGATE_NAMES = ("raw", "1min", "15min")
"""Values of the ``aggregate`` argument of :func:`series`."""

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
    """Rows of a historian table as dicts, in storage order (aggregates: by point and bucket).

    :raises KeyError: unknown table name.
    """
    selected = TABLES[table]
    query = select(selected).order_by(*selected.primary_key.columns).limit(limit)
    with _connect(target, schema) as connection:
        return [dict(row._mapping) for row in connection.execute(query)]


def _empty(dtype: Any = np.float64) -> np.ndarray:
    return np.empty(0, dtype=dtype)


@attrs.frozen(eq=False)
class Series:
    """One point's values over time, as numpy columns of equal length, oldest first.

    Raw (``aggregate="raw"``): ``time`` is the source time, ``value`` the value (NaN if none
    was stored), ``quality`` the packed quality bits; ``count``/``min``/``max`` are ``None``.
    Aggregated: ``time`` is the bucket's start, ``value`` its average, ``quality`` the
    quality of its newest sample, ``count`` the values averaged, ``min``/``max`` the extremes.
    """

    point: str
    aggregate: str
    time: np.ndarray
    value: np.ndarray
    quality: np.ndarray
    count: np.ndarray | None = None
    min: np.ndarray | None = None
    max: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.time)


@attrs.frozen(eq=False)
class ForecastSeries:
    """Forecast values of one point by target time, with the issue time and model of each."""

    point: str
    time: np.ndarray
    value: np.ndarray
    issued: np.ndarray
    model: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.time)


def _point_list(points: PointId | str | Iterable[PointId | str]) -> list[str]:
    if isinstance(points, str | PointId):
        return [str(points)]
    return list(dict.fromkeys(str(point) for point in points))


def _floats(values: list[Any]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=np.float64)


def series(
    target: Target,
    points: PointId | str | Iterable[PointId | str],
    since: float | None = None,
    until: float | None = None,
    *,
    aggregate: str = "raw",
    pending: bool = True,
    schema: str | None = None,
) -> dict[str, Series]:
    """Values of ``points`` between ``since`` and ``until`` (seconds since the epoch, inclusive).

    :param points: one point name or several; the result has an entry for each, in this
        order (empty if nothing is stored).
    :param aggregate: ``"raw"``, ``"1min"`` or ``"15min"``. Aggregates are the buckets that
        overlap the range (``since - width < bucket <= until``).
    :param pending: for aggregates, include raw rows not rolled up yet (computed on the fly
        and merged), so the newest buckets are there before the next rollup.
    :raises ValueError: unknown ``aggregate``.
    """
    names = _point_list(points)
    if aggregate not in AGGREGATE_NAMES:
        raise ValueError(f"unknown aggregate {aggregate!r} (known: {', '.join(AGGREGATE_NAMES)})")
    if not names:
        return {}
    with _connect(target, schema) as connection:
        if aggregate == "raw":
            return _raw_series(connection, names, since, until)
        return _aggregate_series(connection, names, since, until, aggregate, pending)


def _raw_series(connection: Connection, names: list[str], since: float | None, until: float | None) -> dict[str, Series]:
    m = measurements.c
    query = select(m.point, m.source_time, m.value, m.quality).where(m.point.in_(names))
    if since is not None:
        query = query.where(m.source_time >= since)
    if until is not None:
        query = query.where(m.source_time <= until)
    columns: dict[str, tuple[list[float], list[Any], list[int]]] = {name: ([], [], []) for name in names}
    for point, time_, value, quality in connection.execute(query.order_by(m.point, m.source_time, m.id)):
        column = columns[point]
        column[0].append(time_)
        column[1].append(value)
        column[2].append(quality)
    return {
        name: Series(name, "raw", np.array(t, dtype=np.float64), _floats(v), np.array(q, dtype=np.uint16))
        for name, (t, v, q) in columns.items()
    }


def _combine(old: list[Any], new: tuple[Any, ...]) -> list[Any]:
    # [count, min, max, avg, last_time, last_quality]
    count = old[0] + new[0]
    low = [v for v in (old[1], new[1]) if v is not None]
    high = [v for v in (old[2], new[2]) if v is not None]
    avg = None if count == 0 else ((old[3] or 0.0) * old[0] + (new[3] or 0.0) * new[0]) / count
    last = (new[4], new[5]) if new[4] >= old[4] else (old[4], old[5])
    return [count, min(low) if low else None, max(high) if high else None, avg, *last]


def _aggregate_series(
    connection: Connection, names: list[str], since: float | None, until: float | None, aggregate: str, pending: bool
) -> dict[str, Series]:
    table, width = AGGREGATES[aggregate]
    c = table.c
    query = select(c.point, c.bucket, c["count"], c.min, c.max, c.avg, c.last_time, c.last_quality).where(c.point.in_(names))
    if since is not None:
        query = query.where(c.bucket > since - width)
    if until is not None:
        query = query.where(c.bucket <= until)
    buckets: dict[str, dict[float, list[Any]]] = {name: {} for name in names}
    for point, bucket, *rest in connection.execute(query):
        buckets[point][bucket] = rest
    if pending:
        fresh = aggregate_select(connection.dialect.name, width, rolled_up_id(connection), points=names).subquery()
        query = select(fresh)
        if since is not None:
            query = query.where(fresh.c.bucket > since - width)
        if until is not None:
            query = query.where(fresh.c.bucket <= until)
        for point, bucket, *rest in connection.execute(query):
            known = buckets[point].get(bucket)
            buckets[point][bucket] = list(rest) if known is None else _combine(known, tuple(rest))
    result = {}
    for name, rows in buckets.items():
        ordered = sorted(rows.items())
        result[name] = Series(
            name,
            aggregate,
            time=np.array([bucket for bucket, _ in ordered], dtype=np.float64),
            value=_floats([row[3] for _, row in ordered]),
            quality=np.array([row[5] for _, row in ordered], dtype=np.uint16),
            count=np.array([row[0] for _, row in ordered], dtype=np.int64),
            min=_floats([row[1] for _, row in ordered]),
            max=_floats([row[2] for _, row in ordered]),
        )
    return result


def forecasts(
    target: Target,
    points: PointId | str | Iterable[PointId | str] | None = None,
    since: float | None = None,
    until: float | None = None,
    *,
    model: str | None = None,
    issued_before: float | None = None,
    latest: bool = True,
    schema: str | None = None,
) -> dict[str, ForecastSeries]:
    """Stored forecasts with ``since <= target time <= until``, per point, by target time.

    :param points: only these points (default: every point with forecasts).
    :param model: only forecasts of this model.
    :param issued_before: only forecasts issued at or before this time (what was known then).
    :param latest: keep only the newest issue per target time; ``False``: every stored value
        (ordered by target time, then issue time).
    """
    f = forecasts_table.c
    query = select(f.point, f.target_time, f.value, f.issued, f.model)
    names = None if points is None else _point_list(points)
    if names is not None:
        query = query.where(f.point.in_(names))
    if since is not None:
        query = query.where(f.target_time >= since)
    if until is not None:
        query = query.where(f.target_time <= until)
    if model is not None:
        query = query.where(f.model == model)
    if issued_before is not None:
        query = query.where(f.issued <= issued_before)
    rows: dict[str, list[tuple[Any, ...]]] = {name: [] for name in names} if names is not None else {}
    with _connect(target, schema) as connection:
        for point, target_time, value, issued, model_name in connection.execute(query.order_by(f.point, f.target_time, f.issued, f.id)):
            selected = rows.setdefault(point, [])
            if latest and selected and selected[-1][0] == target_time:
                selected[-1] = (target_time, value, issued, model_name)
            else:
                selected.append((target_time, value, issued, model_name))
    return {
        point: ForecastSeries(
            point,
            time=np.array([r[0] for r in selected], dtype=np.float64),
            value=_floats([r[1] for r in selected]),
            issued=np.array([r[2] for r in selected], dtype=np.float64),
            model=tuple(r[3] for r in selected),
        )
        for point, selected in rows.items()
    }
