"""Forecasts as pseudo-measurements: a missing meter value is replaced by its forecast.

The ``forecast`` study (plugin ``forecast``) returns, per point, a series of 15-minute values
(``data["forecasts"][point] = {"time": [...], "value": [...]}``). :class:`ForecastPseudo` keeps
the latest series per point; at estimation time an injection measurement (load, PV, battery,
machine P or Q) that has no usable value gets the forecast interpolated at that time, with the
``forecast`` accuracy (relative, default 10 %) instead of the profile value with the ``pseudo``
accuracy (30 %).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from .measurements import Accuracy, MeasurementPlan

__all__ = ["ForecastPseudo"]


class ForecastPseudo:
    """The latest forecast series per point."""

    def __init__(self) -> None:
        self.series: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def update(self, forecasts: Mapping[str, Mapping[str, Any]]) -> None:
        """Take the series of a ``forecast`` result (newer results replace older ones per point)."""
        for point, series in forecasts.items():
            times = np.asarray(series.get("time", ()), dtype=float)
            values = np.asarray(series.get("value", ()), dtype=float)
            if len(times) and len(times) == len(values):
                self.series[str(point)] = (times, values)

    def value(self, point: str, now: float, step_s: float = 900.0) -> float | None:
        """The forecast of ``point`` at ``now`` (linear between steps; None outside the series)."""
        series = self.series.get(point)
        if series is None:
            return None
        times, values = series
        if now < times[0] - step_s or now > times[-1] + step_s:
            return None
        return float(np.interp(now, times, values))

    def substitute(self, plan: MeasurementPlan, values: np.ndarray, usable: np.ndarray, accuracy: Accuracy,
                   now: float) -> tuple[np.ndarray, np.ndarray, Accuracy, list[str]]:
        """Fill unusable injection rows that have a forecast; returns the new values, mask,
        accuracy (the forecast σ per substituted point) and the substituted point names."""
        if not self.series:
            return values, usable, accuracy, []
        values, usable = values.copy(), usable.copy()
        substituted: list[str] = []
        for k in np.flatnonzero(~usable).tolist():
            row = plan.rows[k]
            if row.where != "injection":
                continue
            forecast = self.value(row.point, now)
            if forecast is None:
                continue
            values[k] = forecast * row.factor
            usable[k] = True
            substituted.append(row.point)
        if not substituted:
            return values, usable, accuracy, []
        relative = accuracy.relative["forecast"]
        points = {**{p: relative for p in substituted}, **accuracy.points}
        return values, usable, attrs.evolve(accuracy, points=points), substituted
