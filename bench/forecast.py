"""Forecast benchmark: nMAE and MAPE on held-out weeks of real SimBench profiles.

Series (SimBench 2016, 15 min, shipped by the ``simbench`` package): standard load profiles
H0-A (households), G0-A (commerce), L0-A (agriculture), aggregated LV grids lv_rural1 and
lv_semiurb4, PV plants PV3 and PV7, and the aggregates of the grid 1-MV-rural--0-sw:
total load, PV/LV infeed and residual load (load minus that infeed).

Held-out periods: one week in each season (from 2016-03-07, 06-06, 09-05, 11-28; with ``--blind``
a second set, 2016-04-18, 07-25, 10-17, 12-12, not looked at while the models were designed; with
``--year`` every week from 2016-02-29 to 12-19, 43 weeks); each model
is fitted on the 8 weeks before and then forecasts every held-out day walking forward
(no re-training, measurements handed over as they would arrive):
intraday = issued 00:00 for the next 24 h (identical to issuing every step for these models,
see dms_forecast.evaluate), day-ahead = issued 12:00 the day before.

nMAE = sum|error| / sum|actual|. MAPE over all steps for loads; for PV and the residual
(which crosses zero) only over steps with |actual| >= 10 % of the peak (daytime for PV).

    .venv/bin/python bench/forecast.py [--plot out.png] [--series load_mw] [--quick] [--blind | --year]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from dms_forecast import make_forecaster, profiles
from dms_forecast.evaluate import MAX_LEAD, MODES, evaluate

MODELS = ("persistence", "seasonal_naive", "seasonal_profile", "gradient_boosting")
TEST_STARTS = [pd.Timestamp(day, tz="UTC") for day in ("2016-03-07", "2016-06-06", "2016-09-05", "2016-11-28")]
#: a second set of held-out weeks, one per season, first evaluated after the model's settings were
#: fixed (``--blind``): the settings were chosen while looking at TEST_STARTS, never at these
BLIND_STARTS = [pd.Timestamp(day, tz="UTC") for day in ("2016-04-18", "2016-07-25", "2016-10-17", "2016-12-12")]
#: ``--year``: every week of the year that has 8 weeks of training data before it (Mondays
#: 2016-02-29 to 2016-12-19, 43 weeks, holidays included) — rolling-origin evaluation
YEAR_STARTS = list(pd.date_range("2016-02-29", "2016-12-19", freq="7D", tz="UTC"))
# German national holidays 2016 (calendar feature; SimBench profiles are German)
HOLIDAYS = [pd.Timestamp(d).date() for d in ("2016-01-01", "2016-03-25", "2016-03-28", "2016-05-01", "2016-05-05", "2016-05-16", "2016-10-03", "2016-12-25", "2016-12-26")]


def series_set(quick: bool) -> dict[str, tuple[pd.Series, bool]]:
    """name -> (series, daytime-only MAPE)."""
    loads = profiles.load_profiles()
    pv = profiles.pv_profiles()
    feeder = profiles.feeder_profiles()
    chosen = {
        "feeder load (1-MV-rural)": (feeder["load_mw"], False),
        "feeder PV+LV infeed": (feeder["pv_mw"], True),
        "feeder residual load": (feeder["residual_mw"], True),
        **{f"load {name}": (loads[name], False) for name in loads},
        **{f"PV {name}": (pv[name], True) for name in pv},
    }
    if quick:
        chosen = dict(list(chosen.items())[:3])
    return chosen


def factories():
    return {
        model: (lambda mode, model=model: make_forecaster(model, MAX_LEAD[mode], holidays=HOLIDAYS, tz=profiles.TIMEZONE))
        for model in MODELS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plot", help="write forecast vs actual of one series (PNG or SVG), first held-out week, day-ahead")
    parser.add_argument("--series", default="feeder load (1-MV-rural)", help="series to plot")
    parser.add_argument("--quick", action="store_true", help="only the three feeder aggregates")
    parser.add_argument("--blind", action="store_true", help="the second set of held-out weeks (BLIND_STARTS) instead of TEST_STARTS")
    parser.add_argument("--year", action="store_true", help="every week with 8 training weeks before it (YEAR_STARTS, 43 weeks; ~15 min)")
    args = parser.parse_args()
    starts = YEAR_STARTS if args.year else BLIND_STARTS if args.blind else TEST_STARTS
    started = time.perf_counter()
    results = {}
    for name, (series, daytime) in series_set(args.quick).items():
        results[name] = evaluate(series, factories(), starts, test_days=7, train_weeks=8, mape_min_fraction=0.1 if daytime else 0.0)
    weeks = ", ".join(f"{start:%Y-%m-%d}" for start in starts) if len(starts) <= 4 else f"every Monday {starts[0]:%Y-%m-%d} to {starts[-1]:%Y-%m-%d}"
    print(f"\n{len(starts)} held-out weeks ({weeks}), each model trained on the 8 weeks before each; {time.perf_counter() - started:.0f} s\n")
    header = "| series | mode | " + " | ".join(f"{m} nMAE / MAPE %" for m in MODELS) + " | GB beats both baselines |"
    print(header)
    print("|" + "---|" * (len(MODELS) + 3))
    beaten = 0
    total = 0
    for name, rows in results.items():
        for mode in MODES:
            by_model = {row["model"]: row for row in rows if row["mode"] == mode}
            cells = [f"{100 * by_model[m]['nmae']:5.1f} / {100 * by_model[m]['mape']:5.1f}" for m in MODELS]
            gb = by_model["gradient_boosting"]["nmae"]
            wins = gb < by_model["persistence"]["nmae"] and gb < by_model["seasonal_naive"]["nmae"]
            beaten += wins
            total += 1
            print(f"| {name} | {mode} | " + " | ".join(cells) + f" | {'yes' if wins else 'NO'} |")
    print(f"\ngradient boosting beats persistence and seasonal-naive (nMAE) in {beaten} of {total} cases")
    if args.plot:
        from dms_forecast.plot import plot_forecast

        rows = results[args.series]
        week = slice(starts[0], starts[0] + pd.Timedelta(days=7) - pd.Timedelta(minutes=15))
        forecasts = {row["model"]: row["forecast"][week] for row in rows if row["mode"] == "day_ahead"}
        series = series_set(False)[args.series][0][week].rename("actual")
        print("plot:", plot_forecast(series, forecasts, args.plot, title=f"{args.series}: day-ahead forecasts"))


if __name__ == "__main__":
    main()
