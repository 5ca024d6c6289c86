"""The ``forecast`` study: history from the SQL historian -> one forecast per point."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dms_hookspecs import StudyResult

from .forecasters import DAY, MODELS, STEP, make_forecaster

__all__ = ["run_forecast", "read_history"]

SOLVER = "forecast"


def read_history(url: str, point: str, since: float | None, until: float | None) -> pd.Series:
    """Good-quality values of ``point`` from the historian as a 15-minute mean series (UTC)."""
    from dms_sqlhistorian.query import history

    rows = [m for m in history(url, point, since, until) if m.quality.is_good and not math.isnan(m.value)]
    if not rows:
        return pd.Series(dtype=float)
    stamps = pd.to_datetime(np.array([m.source_time for m in rows]), unit="s", utc=True)
    series = pd.Series([m.value for m in rows], index=stamps, dtype=float)
    return series.resample(STEP).mean()


def _stamp(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value, unit="s") if isinstance(value, int | float) else pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def run_forecast(options: Mapping[str, Any], settings: Mapping[str, Any]) -> StudyResult:
    """Run the study. Options: ``points`` (required), ``horizon_h`` (24), ``model``
    (``gradient_boosting``), ``history_days`` (56), ``issue_time`` (ISO text or epoch
    seconds; default: the step after the newest stored value), ``start`` (first forecast
    step; default: the step after ``issue_time``; day-ahead: the next midnight),
    ``historian_url`` (overrides the plugin setting).
    """
    started = time.time()
    url = options.get("historian_url") or settings.get("historian_url")
    points = options.get("points")
    model = options.get("model", settings.get("model", "gradient_boosting"))
    if not url:
        raise ValueError("forecast: no historian: set [settings.forecast] historian_url or the job option historian_url")
    if not points or isinstance(points, str):
        raise ValueError("forecast: option 'points' must be a non-empty list of point names")
    if model not in MODELS:
        raise ValueError(f"forecast: unknown model {model!r} (known: {', '.join(MODELS)})")
    horizon = int(round(float(options.get("horizon_h", 24)) * 4))
    days = float(options.get("history_days", settings.get("history_days", 56)))
    tz = options.get("timezone", settings.get("timezone", "UTC"))
    issue = _stamp(options["issue_time"]) if options.get("issue_time") is not None else None
    forecasts: dict[str, dict[str, list[float]]] = {}
    problems = []
    for point in points:
        until = issue.timestamp() - 1e-6 if issue is not None else None
        since = (issue - pd.Timedelta(days=days)).timestamp() if issue is not None else None
        series = read_history(url, str(point), since, until)
        if issue is None and len(series):
            series = series[series.index[-1] - pd.Timedelta(days=days) + STEP :]
        if series.notna().sum() < 2 * DAY:
            problems.append(f"{point}: {series.notna().sum()} steps of history (need at least 2 days)")
            continue
        issued = issue if issue is not None else series.index[-1] + STEP
        start = _stamp(options["start"]) if options.get("start") is not None else issued.ceil(STEP)
        lead = int((start - series.index[-1]) // STEP) + horizon - 1
        try:
            forecaster = make_forecaster(model, lead, tz=tz).fit(series)
            predicted = forecaster.predict(start, horizon)
        except ValueError as exc:
            problems.append(f"{point}: {exc}")
            continue
        forecasts[str(point)] = {
            "time": [stamp.timestamp() for stamp in predicted.index],
            "value": [float(v) for v in predicted.to_numpy()],
        }
    data = {"model": model, "horizon_steps": horizon, "step_s": 900, "forecasts": forecasts}
    message = "; ".join(problems)
    return StudyResult("forecast", SOLVER, not problems, data, message, started=started, finished=time.time())
