"""The forecast plot writes valid PNG and SVG files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dms_forecast.plot import plot_forecast


def test_plot_writes_png_and_svg(tmp_path):
    index = pd.date_range("2016-06-06", periods=96, freq="15min", tz="UTC")
    actual = pd.Series(np.sin(np.arange(96) / 15.0), index=index, name="actual")
    forecast = (actual * 0.9).rename("gradient_boosting")
    png = plot_forecast(actual, forecast, tmp_path / "out" / "f.png", title="t")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    svg = plot_forecast(actual, {"a": forecast, "b": actual * 1.1}, tmp_path / "f.svg")
    assert b"<svg" in svg.read_bytes()[:2000]
    with pytest.raises(ValueError, match="png or .svg"):
        plot_forecast(actual, forecast, tmp_path / "f.jpg")
