"""Walk-forward evaluation on held-out weeks (used by ``bench/forecast.py`` and the tests).

A model is fitted once on ``train_weeks`` weeks before the held-out period; then, for each
held-out day ``d``, it gets the measurements known at issue time (``update``, no
re-training) and forecasts the 96 steps of ``d``:

* intraday: issued at 00:00 of ``d`` (history up to 23:45 of the day before);
* day-ahead: issued at 12:00 of the day before (history up to 11:45), forecasting 12-36 h ahead.

Issuing intraday forecasts at every step gives the same numbers for persistence,
seasonal-naive and gradient boosting: their inputs for a target step are all at least one
day old, so every issue time within the 24 h before the target step yields the same value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from .forecasters import DAY, STEP, WEEK, Forecaster
from .metrics import mape, nmae

__all__ = ["MODES", "walk_forward", "evaluate"]

MODES = ("intraday", "day_ahead")
_ISSUE_BEFORE = {"intraday": pd.Timedelta(0), "day_ahead": pd.Timedelta(hours=12)}
MAX_LEAD = {"intraday": DAY, "day_ahead": DAY + 48}


def walk_forward(series: pd.Series, forecaster: Forecaster, test_start: pd.Timestamp, test_days: int, mode: str, train_weeks: int = 8) -> pd.Series:
    """Forecasts for ``test_days`` days from ``test_start`` (midnight), one issue per day."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}")
    issue_before = _ISSUE_BEFORE[mode]
    first_issue = test_start - issue_before
    forecaster.fit(series[first_issue - train_weeks * WEEK * STEP : first_issue - STEP])
    parts = []
    for day in range(test_days):
        start = test_start + pd.Timedelta(days=day)
        forecaster.update(series[: start - issue_before - STEP])
        parts.append(forecaster.predict(start, DAY))
    return pd.concat(parts)


def evaluate(
    series: pd.Series,
    factories: dict[str, Callable[[str], Forecaster]],
    test_starts: Sequence[pd.Timestamp],
    test_days: int = 7,
    train_weeks: int = 8,
    mape_min_fraction: float = 0.0,
    modes: Sequence[str] = MODES,
) -> list[dict[str, Any]]:
    """nMAE and MAPE per model and mode over all held-out periods (concatenated).

    :param factories: model name -> ``factory(mode)`` returning a fresh forecaster.
    """
    rows = []
    for mode in modes:
        for name, factory in factories.items():
            forecasts = pd.concat([walk_forward(series, factory(mode), start, test_days, mode, train_weeks) for start in test_starts])
            actual = series.reindex(forecasts.index)
            rows.append(
                {
                    "mode": mode,
                    "model": name,
                    "nmae": nmae(actual, forecasts),
                    "mape": mape(actual, forecasts, mape_min_fraction),
                    "forecast": forecasts,
                }
            )
    return rows
