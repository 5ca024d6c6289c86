"""Forecasters with one interface, for 15-minute series indexed by UTC timestamps.

``fit(history, weather=None)`` learns from (and keeps) the history; ``update(history)``
hands over newer measurements without re-training (walk-forward use);
``predict(start, horizon_steps, weather=None)`` returns a :class:`pandas.Series` of
``horizon_steps`` values at 15-minute steps from ``start`` (the first forecast step; it
must lie after the last history stamp).

* :class:`Persistence` - the last day repeated: the most recent value at the same time of
  day that is known at issue time.
* :class:`SeasonalNaive` - the same, one week back (same time last week).
* :class:`SeasonalProfile` - mean over the last ``weeks`` weeks by day type (working day,
  Saturday, Sunday/holiday) and time of day.
* :class:`GradientBoosting` - scikit-learn ``HistGradientBoostingRegressor`` on calendar
  features, lagged values (1 day and 1 week by default), a daily level, the same-time mean
  of the last four weeks and optional weather columns; its output is blended with the
  baselines' forecasts by weights fitted on the last weeks of the training history.

Intraday (next 24 h, issued every step) and day-ahead (issued at 12:00 for the next day)
differ only in what is known at issue time: the lag-based models take the most recent
value available, and :meth:`GradientBoosting.for_lead` picks lags that are known for the
whole horizon (1 day for intraday, 2 days for day-ahead).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Mapping
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "STEP",
    "DAY",
    "WEEK",
    "Forecaster",
    "Persistence",
    "SeasonalNaive",
    "SeasonalProfile",
    "GradientBoosting",
    "BLEND_INPUTS",
    "fit_blend_weights",
    "MODELS",
    "make_forecaster",
    "prepare_history",
    "forecast_times",
]

STEP = pd.Timedelta(minutes=15)
DAY = 96
"""Steps per day."""
WEEK = 7 * DAY
"""Steps per week."""


def _utc(stamp: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(stamp, unit="s") if isinstance(stamp, int | float) else pd.Timestamp(stamp)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def prepare_history(history: pd.Series) -> pd.Series:
    """``history`` as a float series on a regular 15-minute UTC grid (gaps become NaN).

    Naive stamps are taken as UTC; irregular samples are averaged per 15-minute interval
    (labelled by its start).
    """
    if not isinstance(history, pd.Series) or not isinstance(history.index, pd.DatetimeIndex):
        raise TypeError("history must be a pandas Series indexed by timestamps")
    series = history.astype(float)
    index = series.index
    series.index = index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    series = series[~series.index.duplicated(keep="last")].sort_index()
    if len(series) == 0:
        raise ValueError("history is empty")
    if not (series.index == series.index.floor(STEP)).all():
        series = series.resample(STEP).mean()
    return series.asfreq(STEP)


def forecast_times(start: Any, horizon_steps: int) -> pd.DatetimeIndex:
    """The ``horizon_steps`` forecast stamps from ``start`` (rounded up to the 15-minute grid)."""
    if horizon_steps < 1:
        raise ValueError("horizon_steps must be at least 1")
    return pd.date_range(_utc(start).ceil(STEP), periods=horizon_steps, freq=STEP, name="time")


def _lookup(history: pd.Series, stamps: pd.DatetimeIndex) -> np.ndarray:
    return history.reindex(stamps).to_numpy(dtype=float)


def _local(stamps: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    return stamps if tz == "UTC" else stamps.tz_convert(tz)


def _slot(stamps: pd.DatetimeIndex) -> np.ndarray:
    return (stamps.hour * 4 + stamps.minute // 15).to_numpy()


def day_type(stamps: pd.DatetimeIndex, holidays: Collection[date] = ()) -> np.ndarray:
    """0 working day, 1 Saturday, 2 Sunday or holiday (of the stamps' own time zone)."""
    weekday = stamps.weekday.to_numpy()
    kind = np.where(weekday == 6, 2, np.where(weekday == 5, 1, 0))
    if holidays:
        kind = np.where(np.isin(stamps.date, list(holidays)), 2, kind)
    return kind


class Forecaster:
    """Base class: keeps the (prepared) history and optional weather."""

    name = "forecaster"

    def __init__(self) -> None:
        self.history: pd.Series | None = None
        self.weather: pd.DataFrame | None = None

    def fit(self, history: pd.Series, weather: pd.DataFrame | None = None) -> Forecaster:
        """Learn from ``history`` (and ``weather``, if the model uses it) and keep both."""
        self.update(history, weather)
        self._train()
        return self

    def update(self, history: pd.Series, weather: pd.DataFrame | None = None) -> Forecaster:
        """Replace the kept history (newer measurements) without re-training."""
        self.history = prepare_history(history)
        if weather is not None:
            self.weather = weather
        return self

    def _train(self) -> None:
        pass

    def predict(self, start: Any, horizon_steps: int, weather: pd.DataFrame | None = None) -> pd.Series:
        """Forecast ``horizon_steps`` values from ``start``."""
        if self.history is None:
            raise RuntimeError(f"{type(self).__name__}: call fit() first")
        times = forecast_times(start, horizon_steps)
        if times[0] <= self.history.index[-1]:
            raise ValueError(f"forecast start {times[0]} is not after the last history stamp {self.history.index[-1]}")
        values = self._predict(times, weather)
        return pd.Series(values, index=times, name=self.name)

    def _predict(self, times: pd.DatetimeIndex, weather: pd.DataFrame | None) -> np.ndarray:
        raise NotImplementedError

    def lead_steps(self, times: pd.DatetimeIndex) -> np.ndarray:
        """Steps between the last history stamp and each forecast stamp (1 = next step)."""
        assert self.history is not None
        return np.asarray((times - self.history.index[-1]) // STEP, dtype=int)


class _SameTimeBack(Forecaster):
    """Most recent known value ``k * period`` steps back (smallest ``k`` known at issue time)."""

    period = DAY

    def _predict(self, times: pd.DatetimeIndex, weather: pd.DataFrame | None) -> np.ndarray:
        assert self.history is not None
        k = np.ceil(self.lead_steps(times) / self.period).astype(int)
        values = np.full(len(times), np.nan)
        for extra in range(4):  # a gap in the history: one more period back
            missing = np.isnan(values)
            if not missing.any():
                break
            back = times[missing] - pd.to_timedelta((k[missing] + extra) * self.period * 15, unit="min")
            values[missing] = _lookup(self.history, back)
        return values


class Persistence(_SameTimeBack):
    """The last day repeated."""

    name = "persistence"
    period = DAY


class SeasonalNaive(_SameTimeBack):
    """Same time last week."""

    name = "seasonal_naive"
    period = WEEK


class SeasonalProfile(Forecaster):
    """Mean profile by day type (working day / Saturday / Sunday+holiday) x time of day over
    the last ``weeks`` weeks of history (recomputed by :meth:`update`)."""

    name = "seasonal_profile"

    def __init__(self, weeks: int = 4, holidays: Collection[date] = (), tz: str = "UTC") -> None:
        super().__init__()
        self.weeks = weeks
        self.tz = tz
        self.holidays = frozenset(holidays)
        self.profile: np.ndarray | None = None  # (3 day types, 96 slots)

    def update(self, history: pd.Series, weather: pd.DataFrame | None = None) -> Forecaster:
        super().update(history, weather)
        assert self.history is not None
        recent = self.history.iloc[-self.weeks * WEEK :]
        local = _local(recent.index, self.tz)
        frame = pd.DataFrame(
            {
                "kind": day_type(local, self.holidays),
                "slot": _slot(local),
                "value": recent.to_numpy(),
            }
        )
        means = frame.groupby(["kind", "slot"])["value"].mean()
        by_slot = frame.groupby("slot")["value"].mean().reindex(range(DAY)).to_numpy()
        profile = np.tile(by_slot, (3, 1))
        for (kind, slot), value in means.items():
            if not math.isnan(value):
                profile[int(kind), int(slot)] = value
        self.profile = profile
        return self

    def _predict(self, times: pd.DatetimeIndex, weather: pd.DataFrame | None) -> np.ndarray:
        assert self.profile is not None
        local = _local(times, self.tz)
        return self.profile[day_type(local, self.holidays), _slot(local)]


class GradientBoosting(Forecaster):
    """``HistGradientBoostingRegressor`` on calendar features, lagged values and weather.

    Features at target time ``t``: time of day (slot and its sine/cosine), weekday, day type,
    holiday flag, ``y(t - lag)`` for each lag, the mean of the day ending at
    ``t - min(lags)``, the mean of ``y`` at the same time of week over the last four weeks,
    and the columns of ``weather`` at ``t`` (a weather forecast at predict time).

    The default loss is the absolute error: the forecast is the conditional median, which is what
    minimises the MAE the forecasts are judged by (the squared error's mean is pulled towards
    cloudy/sunny extremes of PV). Times of week whose four-week mean (the ``week_mean`` feature)
    is exactly zero — for PV: zero in each of the last four weeks, night — are forecast as zero
    and left out of training: the absolute-error trees cannot start from a median of zero (half
    the PV samples are night) and would stay there.

    Blend (``blend_weeks`` > 0): the final forecast is a convex combination of the boosted
    trees and four simple forecasts - persistence (latest known value at that time of day),
    seasonal naive (one week back), the mean of the last ``recent_days`` known days at that
    time of day, and the four-week ``week_mean``. The weights are fitted for minimal absolute
    error on the last ``blend_weeks`` weeks of the training history, forecast by trees trained
    on the weeks before them (time-ordered: no later data is used); one weight set per age of
    the latest known value (1 day back, 2 days back, ...), since day-ahead forecasts know the
    previous day for some steps only. The trees keep at least ``min_tree_weight``: the
    validation trees saw ``blend_weeks`` fewer weeks than the final ones and understate them
    (a level shift they missed). Then the trees are re-trained on the whole history. The
    blend lets the model fall back on the baselines where the trees do not beat them (a single
    PV plant without weather data), and the lead-dependent persistence input gives it the
    values known at issue time that the fixed lags skip.

    The smallest lag bounds the lead time: a forecast step further ahead than ``min(lags)``
    steps from the last history stamp would need unknown values (:meth:`for_lead` picks the
    lags for a horizon).
    """

    name = "gradient_boosting"

    def __init__(
        self,
        lags: tuple[int, ...] = (DAY, 2 * DAY, WEEK),
        holidays: Collection[date] = (),
        tz: str = "UTC",
        *,
        max_iter: int = 200,
        learning_rate: float = 0.06,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 20,
        l2_regularization: float = 1.0,
        random_state: int = 0,
        threads: int | None = 1,
        loss: str = "absolute_error",
        blend_weeks: int = 2,
        recent_days: int = 28,
        min_tree_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.lags = tuple(sorted(set(lags)))
        self.holidays = frozenset(holidays)
        self.tz = tz
        self.params: Mapping[str, Any] = dict(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            l2_regularization=l2_regularization,
            random_state=random_state,
            loss=loss,
        )
        self.threads = threads  # OpenMP threads for training (None: all); one is fastest for a few weeks of data on a busy host
        self.blend_weeks = blend_weeks
        self.recent_days = recent_days
        self.min_tree_weight = min_tree_weight
        self.model: Any = None
        self.weather_columns: list[str] = []
        self.blend: dict[int, np.ndarray] = {}
        """Blend weights of :data:`BLEND_INPUTS` by age in days of the persistence input (empty: trees only)."""

    @classmethod
    def for_lead(cls, max_lead_steps: int, **kwargs: Any) -> GradientBoosting:
        """A model whose lags are known ``max_lead_steps`` ahead: whole days back, plus a week.

        Intraday (lead <= 96): lags 1 d, 2 d, 1 w; day-ahead issued at 12:00 (lead <= 144):
        lags 2 d, 3 d, 1 w.
        """
        first = max(1, math.ceil(max_lead_steps / DAY)) * DAY
        lags = (first, first + DAY, WEEK) if first + DAY < WEEK else (first, WEEK)
        return cls(lags=tuple(lag for lag in lags if lag <= WEEK) or (first,), **kwargs)

    def _features(self, times: pd.DatetimeIndex, weather: pd.DataFrame | None) -> pd.DataFrame:
        history = self.history
        assert history is not None
        local = _local(times, self.tz)
        slot = _slot(local)
        angle = 2 * np.pi * slot / DAY
        columns: dict[str, np.ndarray] = {
            "slot": slot,
            "sin": np.sin(angle),
            "cos": np.cos(angle),
            "weekday": local.weekday.to_numpy(),
            "day_type": day_type(local, self.holidays),
        }
        if self.holidays:
            columns["holiday"] = np.isin(local.date, list(self.holidays)).astype(float)
        for lag in self.lags:
            columns[f"lag_{lag}"] = _lookup(history, times - lag * STEP)
        level = history.rolling(DAY, min_periods=DAY // 2).mean()
        columns["level"] = _lookup(level, times - self.lags[0] * STEP)
        weekly = np.vstack([_lookup(history, times - k * WEEK * STEP) for k in range(1, 5)])
        known = np.isfinite(weekly)
        with np.errstate(all="ignore"):
            columns["week_mean"] = np.where(known, weekly, 0.0).sum(axis=0) / known.sum(axis=0)  # NaN where none known
        frame = pd.DataFrame(columns, index=times)
        if self.weather_columns:
            source = weather if weather is not None else self.weather
            if source is None:
                raise ValueError("the model was trained with weather features: pass weather to predict()")
            aligned = source.reindex(times)
            for column in self.weather_columns:
                frame[f"w_{column}"] = aligned[column].to_numpy(dtype=float) if column in aligned else np.nan
        return frame

    def _train(self) -> None:
        history = self.history
        assert history is not None
        self.weather_columns = list(self.weather.columns) if self.weather is not None else []
        features = self._features(history.index, self.weather)
        target = history.to_numpy()
        usable = np.isfinite(target) & np.isfinite(features[f"lag_{self.lags[0]}"].to_numpy()) & ~_always_zero(features)
        if usable.sum() < DAY:
            raise ValueError(f"gradient boosting needs at least one day of history with {self.lags[0] // DAY}-day lags ({usable.sum()} usable steps)")
        self.blend = self._fit_blend(features, target, usable) if self.blend_weeks > 0 else {}
        self.model = self._fit_trees(features[usable], target[usable])

    def _fit_trees(self, features: pd.DataFrame, target: np.ndarray) -> Any:
        from sklearn.ensemble import HistGradientBoostingRegressor
        from threadpoolctl import threadpool_limits

        with threadpool_limits(self.threads):
            return HistGradientBoostingRegressor(**self.params).fit(features, target)

    def _fit_blend(self, features: pd.DataFrame, target: np.ndarray, usable: np.ndarray) -> dict[int, np.ndarray]:
        """Blend weights by persistence age, fitted on the last ``blend_weeks`` weeks of the
        history with trees trained on the weeks before ({} if either part is under a day)."""
        assert self.history is not None
        times = self.history.index
        late = times > times[-1] - pd.Timedelta(weeks=self.blend_weeks)
        train, check = usable & ~late, usable & late
        if train.sum() < DAY or check.sum() < DAY:
            return {}
        trees = self._fit_trees(features[train], target[train])
        with _one_thread():
            predicted = trees.predict(features[check])
        stamps = times[check]
        return {
            age: fit_blend_weights(self._blend_inputs(stamps, features[check], predicted, age), target[check], min_first=self.min_tree_weight)
            for age in range(1, self.lags[0] // DAY + 1)
        }

    def _blend_inputs(self, times: pd.DatetimeIndex, features: pd.DataFrame, trees: np.ndarray, age: int) -> np.ndarray:
        """Columns of :data:`BLEND_INPUTS` at ``times`` (missing values: the trees' forecast)."""
        history = self.history
        assert history is not None
        first = self.lags[0] // DAY
        recent = np.vstack([_lookup(history, times - (first + k) * DAY * STEP) for k in range(self.recent_days)])
        known = np.isfinite(recent)
        with np.errstate(all="ignore"):
            recent_mean = np.where(known, recent, 0.0).sum(axis=0) / known.sum(axis=0)
        inputs = np.column_stack(
            [
                trees,
                _lookup(history, times - age * DAY * STEP),
                _lookup(history, times - WEEK * STEP),
                recent_mean,
                features["week_mean"].to_numpy(),
            ]
        )
        return np.where(np.isfinite(inputs), inputs, trees[:, None])

    def _predict(self, times: pd.DatetimeIndex, weather: pd.DataFrame | None) -> np.ndarray:
        lead = self.lead_steps(times)
        if lead.max() > self.lags[0]:
            raise ValueError(f"lead of {lead.max()} steps exceeds the smallest lag ({self.lags[0]} steps): use GradientBoosting.for_lead({lead.max()})")
        features = self._features(times, weather)
        with _one_thread():  # a day of rows: OpenMP threads only add wake-up latency (x10 on a busy machine)
            values = self.model.predict(features)
        if self.blend:
            age = np.ceil(lead / DAY).astype(int)
            blended = np.empty(len(times))
            for days in np.unique(age):
                rows = age == days
                blended[rows] = self._blend_inputs(times[rows], features[rows], values[rows], int(days)) @ self.blend[int(days)]
            values = blended
        return np.where(_always_zero(features), 0.0, values)


def _one_thread() -> Any:
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1)


BLEND_INPUTS = ("gradient_boosting", "persistence", "seasonal_naive", "recent_mean", "week_mean")
"""Forecasts combined by :class:`GradientBoosting` (columns of its blend weights)."""


def _simplex(inputs: int, step: float) -> np.ndarray:
    """All weight vectors on a grid of ``step`` with non-negative weights summing to 1."""
    units = round(1 / step)
    grid = [c for c in itertools.product(range(units + 1), repeat=inputs - 1) if sum(c) <= units]
    return np.array([[units - sum(c), *c] for c in grid], dtype=float) / units


def fit_blend_weights(inputs: np.ndarray, actual: np.ndarray, step: float = 0.1, min_first: float = 0.0) -> np.ndarray:
    """Convex weights (grid ``step``, first column's weight at least ``min_first``) of the
    columns of ``inputs`` with minimal absolute error against ``actual`` (rows where it is
    known). Ties go to the first grid point, all weight on the first column."""
    weights = _simplex(inputs.shape[1], step)
    weights = weights[weights[:, 0] >= min_first - 1e-9]
    known = np.isfinite(actual)
    inputs, actual = inputs[known], actual[known]
    errors = np.abs(actual[:, None] - inputs @ weights.T).sum(axis=0)
    return weights[int(np.argmin(errors))]


def _always_zero(features: pd.DataFrame) -> np.ndarray:
    """Rows whose four-week mean at the same time of week is exactly 0 (PV at night)."""
    return (features["week_mean"].to_numpy() == 0.0)


MODELS: dict[str, type[Forecaster]] = {
    "persistence": Persistence,
    "seasonal_naive": SeasonalNaive,
    "seasonal_profile": SeasonalProfile,
    "gradient_boosting": GradientBoosting,
}
"""Model names accepted by :func:`make_forecaster` and the ``forecast`` study."""


def make_forecaster(model: str, max_lead_steps: int = DAY, holidays: Collection[date] = (), tz: str = "UTC") -> Forecaster:
    """A forecaster by name, set up for forecasts up to ``max_lead_steps`` ahead; calendar
    features (time of day, weekday, holidays) in time zone ``tz``."""
    if model not in MODELS:
        raise ValueError(f"unknown forecast model {model!r} (known: {', '.join(MODELS)})")
    if model == "gradient_boosting":
        return GradientBoosting.for_lead(max_lead_steps, holidays=holidays, tz=tz)
    if model == "seasonal_profile":
        return SeasonalProfile(holidays=holidays, tz=tz)
    return MODELS[model]()
