"""Rollup into 1- and 15-minute aggregates, retention, forecasts and the query API, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dms_hookspecs import MeasurementBatch, StudyResult
from dms_sqlhistorian import query
from dms_sqlhistorian.sink import SqlSink

T0 = 1_699_999_200.0  # a 15-minute boundary
BAD = 0x0002  # some quality bits (invalid)


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """``(url, schema)`` of an empty historian database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'h.db'}", None
    return request.getfixturevalue("postgres")


def make_sink(database, tmp_path, **settings) -> SqlSink:
    url, schema = database
    return SqlSink("historian", {"url": url, "schema": schema, "spool_dir": str(tmp_path / "spool"), "maintenance_interval_s": 0, **settings})


def samples(times: np.ndarray, point: str, values: np.ndarray, quality: np.ndarray | None = None) -> MeasurementBatch:
    size = len(times)
    quality = np.zeros(size, np.uint16) if quality is None else quality
    return MeasurementBatch("rtu", np.zeros(size, np.int64), values, quality, times, names=[point] * size)


def expected(times: np.ndarray, values: np.ndarray, quality: np.ndarray, width: float) -> dict[float, tuple]:
    """(count, min, max, avg, last_quality) per bucket, computed directly from the samples."""
    result = {}
    buckets = np.floor(times / width) * width
    for bucket in np.unique(buckets):
        inside = buckets == bucket
        good = inside & ~np.isnan(values)
        newest = np.flatnonzero(inside)[np.argmax(times[inside])]
        v = values[good]
        result[float(bucket)] = (int(good.sum()), v.min(), v.max(), v.mean(), int(quality[newest]))
    return result


def check(series: query.Series, wanted: dict[float, tuple]) -> None:
    assert series.time.tolist() == sorted(wanted)
    for i, bucket in enumerate(series.time.tolist()):
        count, low, high, avg, last_quality = wanted[bucket]
        assert series.count[i] == count
        assert series.min[i] == pytest.approx(low) and series.max[i] == pytest.approx(high)
        assert series.value[i] == pytest.approx(avg)
        assert series.quality[i] == last_quality


async def test_rollup_aggregates_and_the_query_api(database, tmp_path):
    url, schema = database
    times = T0 + np.arange(0, 1800, 10.0)  # 30 minutes, every 10 s
    values = np.arange(times.size, dtype=np.float64)
    values[7] = math.nan  # a NaN is stored but not aggregated
    quality = np.zeros(times.size, np.uint16)
    quality[5::6] = BAD  # the newest sample of every minute is invalid
    sink = make_sink(database, tmp_path)
    await sink.open()
    try:
        # delivered out of order: the second half first
        await sink.write([samples(times[90:], "A", values[90:], quality[90:])])
        await sink.write([samples(times[:90], "A", values[:90], quality[:90]), samples(times, "B", 2 * values, quality)])
        # before any rollup, aggregates come from the raw rows
        pending = query.series(sink.engine, ["A", "B"], aggregate="1min")
        check(pending["A"], expected(times, values, quality, 60))
        assert (await sink.maintain())["rolled_up"] == 2 * times.size
        assert (await sink.maintain())["rolled_up"] == 0  # nothing new
        # late data into an already rolled-up bucket is merged
        late_t, late_v = np.array([T0 + 65.0]), np.array([-100.0])
        await sink.write([samples(late_t, "A", late_v, np.array([0], np.uint16))])
        all_t, all_v = np.concatenate([times, late_t]), np.concatenate([values, late_v])
        all_q = np.concatenate([quality, [0]]).astype(np.uint16)
        merged_pending = query.series(sink.engine, "A", aggregate="1min")["A"]
        check(merged_pending, expected(all_t, all_v, all_q, 60))
        assert (await sink.maintain())["rolled_up"] == 1
    finally:
        await sink.close()

    for aggregate, width in (("1min", 60), ("15min", 900)):
        stored = query.series(url, ["A", "B"], aggregate=aggregate, pending=False, schema=schema)
        check(stored["A"], expected(all_t, all_v, all_q, width))
        check(stored["B"], expected(times, 2 * values, quality, width))
    assert len(query.records(url, "measurements_1min", schema=schema)) == 2 * 30
    assert len(query.records(url, "measurements_15min", schema=schema)) == 2 * 2

    # time range: raw inclusive at both ends; aggregates: buckets overlapping it
    raw = query.series(url, ["B", "A", "missing"], T0 + 100, T0 + 200, schema=schema)
    assert list(raw) == ["B", "A", "missing"] and len(raw["missing"]) == 0
    assert raw["B"].time.tolist() == (T0 + np.arange(100, 201, 10.0)).tolist()
    assert raw["B"].value.tolist() == (2 * values[10:21]).tolist()
    assert raw["A"].quality.tolist() == quality[10:21].tolist()
    assert math.isnan(query.series(url, "A", T0 + 70, T0 + 70, schema=schema)["A"].value[0])
    window = query.series(url, "A", T0 + 90, T0 + 150, aggregate="1min", schema=schema)["A"]
    assert window.time.tolist() == [T0 + 60, T0 + 120]
    with pytest.raises(ValueError, match="unknown aggregate '5min'"):
        query.series(url, "A", aggregate="5min", schema=schema)


async def test_retention_deletes_only_rolled_up_raw_rows_and_old_aggregates(database, tmp_path):
    url, schema = database
    sink = make_sink(database, tmp_path, raw_retention_days=1.0, retention_1min_days=2.0)
    now = T0 + 3 * 86_400
    await sink.open()
    try:
        old = T0 + np.arange(0, 600, 60.0)  # 3 days old
        await sink.write([samples(old, "A", np.ones(old.size))])
        await sink.maintain(now=T0)  # rolled up, nothing expired yet
        recent = now - np.arange(600, 0, -60.0)
        await sink.write([samples(recent, "A", np.ones(recent.size))])
        # the recent rows are rolled up by this run, but are within every retention
        result = await sink.maintain(now=now)
    finally:
        await sink.close()
    assert result["rolled_up"] == recent.size
    assert result["measurements"] == old.size and result["measurements_1min"] == old.size
    assert result.get("measurements_15min") is None  # kept forever (no setting)
    assert query.series(url, "A", schema=schema)["A"].time.tolist() == recent.tolist()
    assert query.series(url, "A", aggregate="1min", schema=schema)["A"].time.tolist() == recent.tolist()
    assert len(query.series(url, "A", aggregate="15min", schema=schema)["A"]) == 2  # old and recent quarter-hours


def forecast_result(issued: float, offset: float, model: str = "gradient_boosting") -> StudyResult:
    """A result as the forecast plugin emits it (dms_forecast.study.run_forecast)."""
    times = [T0 + 900 * k for k in range(4)]
    data = {
        "model": model,
        "horizon_steps": 4,
        "step_s": 900,
        "forecasts": {
            "MV1/feeder/P": {"time": times, "value": [offset + k for k in range(4)]},
            "MV1/PV3/P": {"time": times[:2], "value": [float("nan"), 0.5]},
        },
    }
    return StudyResult("forecast", "forecast", True, data, started=issued, finished=issued + 1)


async def test_forecast_results_are_stored_and_queried(database, tmp_path):
    url, schema = database
    sink = make_sink(database, tmp_path)
    await sink.open()
    try:
        await sink.write([forecast_result(T0 - 3600, 10.0)])
        await sink.write([forecast_result(T0 - 900, 20.0, model="seasonal_profile")])
        await sink.write([StudyResult("power_flow", "pp", True, {"forecasts": "not a forecast study"})])
    finally:
        await sink.close()
    assert query.count(url, "forecasts", schema=schema) == 2 * (4 + 2)
    [row, *_] = query.records(url, "forecasts", schema=schema)
    assert (row["point"], row["feeder"], row["issued"], row["target_time"], row["value"], row["model"]) == (
        "MV1/feeder/P", None, T0 - 3600, T0, 10.0, "gradient_boosting",
    )
    newest = query.forecasts(url, "MV1/feeder/P", schema=schema)["MV1/feeder/P"]
    assert newest.value.tolist() == [20.0, 21.0, 22.0, 23.0]
    assert newest.issued.tolist() == [T0 - 900] * 4 and newest.model == ("seasonal_profile",) * 4
    known_then = query.forecasts(url, "MV1/feeder/P", issued_before=T0 - 1800, schema=schema)["MV1/feeder/P"]
    assert known_then.value.tolist() == [10.0, 11.0, 12.0, 13.0]
    every = query.forecasts(url, since=T0 + 900, until=T0 + 900, latest=False, schema=schema)
    assert every["MV1/feeder/P"].value.tolist() == [11.0, 21.0]
    assert every["MV1/PV3/P"].value.tolist() == [0.5, 0.5]
    only_gb = query.forecasts(url, ["MV1/PV3/P"], model="gradient_boosting", schema=schema)["MV1/PV3/P"]
    assert math.isnan(only_gb.value[0]) and only_gb.value[1] == 0.5


async def test_the_writer_thread_rolls_up_by_itself(tmp_path, wait_until):
    url = f"sqlite:///{tmp_path / 'h.db'}"
    sink = SqlSink("historian", {"url": url, "maintenance_interval_s": 0.05, "raw_retention_days": 1.0})
    await sink.open()
    try:
        times = T0 + np.arange(0, 120, 10.0)
        await sink.write([samples(times, "A", np.arange(times.size, dtype=np.float64))])
        await wait_until(lambda: query.count(url, "measurements_1min") == 2, what="automatic rollup")
        # then retention: the rows are years old
        await wait_until(lambda: query.count(url, "measurements") == 0, what="raw retention")
    finally:
        await sink.close()
    assert query.series(url, "A", aggregate="1min", pending=False)["A"].count.tolist() == [6, 6]
