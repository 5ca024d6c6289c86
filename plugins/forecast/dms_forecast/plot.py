"""Plot of forecast vs actual (PNG or SVG, by the file suffix)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

__all__ = ["plot_forecast"]


def plot_forecast(actual: pd.Series, forecast: pd.Series | Mapping[str, pd.Series], path: str | Path, title: str = "") -> Path:
    """Write a line plot of ``actual`` and one or more forecasts to ``path`` (``.png`` or ``.svg``).

    :param forecast: one series, or several by label (e.g. one per model).
    :return: the path written.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"plot file must end in .png or .svg, not {path.name!r}")
    forecasts = {str(forecast.name or "forecast"): forecast} if isinstance(forecast, pd.Series) else dict(forecast)
    figure = Figure(figsize=(11, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.plot(actual.index, actual.to_numpy(), color="black", linewidth=1.6, label=str(actual.name or "actual"))
    for label, series in forecasts.items():
        axes.plot(series.index, series.to_numpy(), linewidth=1.0, label=label)
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel("value")
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right", fontsize="small")
    if title:
        axes.set_title(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    return path
