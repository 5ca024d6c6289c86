"""Forecast error metrics.

* nMAE: mean absolute error divided by the mean absolute actual value over the same steps
  (= sum |error| / sum |actual|), so load and PV series of any size compare.
* MAPE: mean of |error| / |actual| over the steps where |actual| is at least
  ``min_fraction`` of the series' peak. With ``min_fraction=0`` every non-zero step counts
  (load); for PV use a threshold (the benchmark uses 10 % of peak: daytime only), because
  night and dawn steps with actual values near zero make the ratio meaningless.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["nmae", "mape"]


def _aligned(actual: pd.Series, forecast: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    joined = pd.concat([actual.rename("a"), forecast.rename("f")], axis=1, join="inner").dropna()
    return joined["a"].to_numpy(), joined["f"].to_numpy()


def nmae(actual: pd.Series, forecast: pd.Series) -> float:
    """Normalised mean absolute error (fraction; NaN if there is nothing to compare)."""
    a, f = _aligned(actual, forecast)
    scale = np.abs(a).sum()
    return float(np.abs(a - f).sum() / scale) if scale > 0 else float("nan")


def mape(actual: pd.Series, forecast: pd.Series, min_fraction: float = 0.0) -> float:
    """Mean absolute percentage error (fraction) over steps with ``|actual| >= min_fraction * peak``."""
    a, f = _aligned(actual, forecast)
    if a.size == 0:
        return float("nan")
    peak = np.abs(a).max()
    use = (np.abs(a) >= min_fraction * peak) & (a != 0)
    return float(np.mean(np.abs(a[use] - f[use]) / np.abs(a[use]))) if use.any() else float("nan")
