"""The ``forecast`` study through a kernel, reading history from a real SQLite historian."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import dms_forecast.plugin
import dms_sqlhistorian.plugin
from dms_hookspecs import MeasurementBatch
from dms_sqlhistorian import query
from dms_sqlhistorian.sink import SqlSink

POINT = "MV1/feeder/P"


async def fill_historian(url: str, series: pd.Series, point: str = POINT) -> None:
    """Store ``series`` as the ``sql`` sink would (in daily batches)."""
    sink = SqlSink("fill", {"url": url, "schema": None})
    await sink.open()
    try:
        stamps = series.index.asi8 / 1e9
        for start in range(0, len(series), 96):
            part = slice(start, start + 96)
            size = len(stamps[part])
            await sink.write(
                [MeasurementBatch("rtu", np.zeros(size, dtype=np.int64), series.to_numpy()[part], np.zeros(size, dtype=np.uint16), stamps[part], names=[point] * size)]
            )
    finally:
        await sink.close()


def deployment(url: str, model: str = "gradient_boosting") -> str:
    return f"""
        [deployment]
        name = "forecast test"

        [settings.forecast]
        historian_url = "{url}"
        model = "{model}"
        timezone = "Europe/Berlin"

        [[sinks]]
        name = "historian"
        type = "sql"
        settings = {{ url = "{url}" }}
    """


@pytest.mark.parametrize("model", ["gradient_boosting", "seasonal_profile"])
async def test_study_forecasts_96_steps_from_the_historian(make_kernel, tmp_path, feeder, model):
    url = f"sqlite:///{tmp_path / 'historian.db'}"
    series = feeder["load_mw"]["2016-08-08":"2016-09-04 23:45"]  # 4 weeks
    actual = feeder["load_mw"]["2016-09-05":"2016-09-05 23:45"]
    await fill_historian(url, series)
    assert query.count(url, point=POINT) == 4 * 7 * 96

    kernel = make_kernel(("forecast", dms_forecast.plugin), dms_sqlhistorian.plugin, deployment=deployment(url, model))
    async with kernel:
        result = await kernel.run_study("forecast", {"points": [POINT], "horizon_h": 24})
    assert result.converged, result.message
    assert result.study == "forecast" and result.data["model"] == model
    forecast = result.data["forecasts"][POINT]
    assert len(forecast["time"]) == len(forecast["value"]) == 96
    assert forecast["time"][0] == actual.index[0].timestamp()
    assert np.diff(forecast["time"]).tolist() == [900.0] * 95
    predicted = pd.Series(forecast["value"], index=actual.index)
    assert (predicted - actual).abs().mean() / actual.mean() < 0.15  # a sensible forecast, not just 96 numbers

    stored = query.records(url, "study_results")  # the sql sink stored the result
    assert [row["study"] for row in stored] == ["forecast"]
    assert len(json.loads(stored[0]["data"])["forecasts"][POINT]["value"]) == 96


async def test_day_ahead_and_missing_history(make_kernel, tmp_path, feeder):
    url = f"sqlite:///{tmp_path / 'historian.db'}"
    await fill_historian(url, feeder["load_mw"]["2016-08-01":"2016-09-04 11:45"])
    kernel = make_kernel(("forecast", dms_forecast.plugin), dms_sqlhistorian.plugin, deployment=deployment(url))
    async with kernel:
        result = await kernel.run_study(
            "forecast", {"points": [POINT, "nowhere"], "issue_time": "2016-09-04T12:00:00Z", "start": "2016-09-05T00:00:00Z"}
        )
        with pytest.raises(Exception, match="points"):
            await kernel.run_study("forecast", {"points": []})
    assert not result.converged and "nowhere" in result.message
    forecast = result.data["forecasts"][POINT]
    assert len(forecast["value"]) == 96 and forecast["time"][0] == pd.Timestamp("2016-09-05", tz="UTC").timestamp()
