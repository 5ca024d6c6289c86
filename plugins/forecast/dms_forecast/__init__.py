"""Load and PV forecasting: baselines, a gradient-boosting model and the ``forecast`` study."""

from .forecasters import (
    MODELS,
    Forecaster,
    GradientBoosting,
    Persistence,
    SeasonalNaive,
    SeasonalProfile,
    make_forecaster,
)
from .metrics import mape, nmae

__all__ = [
    "MODELS",
    "Forecaster",
    "GradientBoosting",
    "Persistence",
    "SeasonalNaive",
    "SeasonalProfile",
    "make_forecaster",
    "mape",
    "nmae",
]
