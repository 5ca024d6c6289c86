"""Entry point of the ``se`` plugin: the ``state_estimation`` study and bad-data alarms.

* ``dms_studies`` -> ``["state_estimation"]``.
* ``dms_run_study`` handles ``state_estimation``; option ``estimator`` = ``"pandapower"``
  (default, WLS with chi-squared / largest-normalised-residual bad-data processing) or
  ``"power-grid-model"`` (option ``calculation_method``: auto, newton_raphson, iterative_linear;
  ``unbalanced`` for the asymmetric calculation).
  Further options: ``rn_threshold`` (4.0), ``max_bad_data`` (5), ``tolerance``,
  ``max_iteration``, ``std_dev``/``std_floor``/``point_std_dev`` (override the settings).
* ``dms_check_result``: a ``forecast`` result's series are kept; a meter point (load/generator
  P or Q) without a usable value is replaced by its forecast at the time of the estimate, with the
  ``forecast`` accuracy (``forecast_pseudo = false`` in the options turns it off); every suspect point of a state-estimation result is set
  ``questionable``/``inconsistent`` in the point database and alarmed (category ``bad-data``).

Settings ``[settings.se]``: ``std_dev = { voltage = 0.005, power = 0.02, current = 0.02,
pseudo = 0.3, forecast = 0.1 }`` (relative), ``std_floor`` (absolute: pu, MW/Mvar, kA), ``point_std_dev`` (per
point, relative).
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from dms_hookspecs import Alarm, AlarmPriority, Detail, PointId, Quality, Setting, SettingsSchema, StudyResult, Validity, hookimpl

from .forecast_pseudo import ForecastPseudo
from .measurements import DEFAULT_FLOOR, DEFAULT_STD, Accuracy
from .pgm_estimator import PgmEstimator
from .pp_estimator import STUDY, PandapowerEstimator

_pandapower = PandapowerEstimator()
_pgm = PgmEstimator(identify=_pandapower.run)
_settings: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> [settings.se]
_forecasts: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> ForecastPseudo
ESTIMATORS = ("pandapower", "power-grid-model")


@hookimpl
def dms_settings_schema():
    return SettingsSchema(
        (
            Setting("std_dev", dict, dict(DEFAULT_STD), "relative standard deviation per type: voltage, power, current, pseudo"),
            Setting("std_floor", dict, dict(DEFAULT_FLOOR), "absolute floor of the standard deviation (pu, MW/Mvar, kA)"),
            Setting("point_std_dev", dict, {}, "relative standard deviation per point name (overrides the type)"),
        )
    )


def remember_profiles(model) -> None:
    """Keep the model's nominal (profile) P/Q of loads and generators, before live values overwrite
    them: the power factor of the pseudo-measurements."""
    from .pp_estimator import nominal_powers

    nominal_powers(model, capture=True)


@hookimpl
def dms_startup(kernel):
    model = getattr(kernel, "model", None)
    if model is not None:
        remember_profiles(model)
        try:
            _settings[model] = dict(kernel.settings_for("se"))
        except Exception:  # noqa: BLE001 - no settings table
            _settings[model] = {}


@hookimpl
def dms_studies():
    return [STUDY]


INLINE_MAX_OBJECTS = 100_000
"""power-grid-model estimates of models up to this size (a 10,000-bus network is ~60,000
objects: ~30 ms) run on the event-loop thread, cheaper than the hop to a worker thread; larger
ones and pandapower's WLS in a worker thread, so ingest continues."""


@hookimpl
async def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]):
    # async: "not mine" answers and small power-grid-model estimates cost no thread hop
    if study != STUDY:
        return None
    estimator = options.get("estimator", options.get("solver", "pandapower")) or "pandapower"
    if estimator == "power-grid-model" and model is not None and len(model) <= INLINE_MAX_OBJECTS:
        return estimate(model, snapshot, options)
    return await asyncio.to_thread(estimate, model, snapshot, options)


def estimate(model: Any, snapshot: Any, options: Mapping[str, Any]) -> StudyResult:
    """The ``state_estimation`` study (see the module docstring)."""
    if model is None:
        raise ValueError("state_estimation needs a network model: set `model` in the [deployment] table")
    estimator = options.get("estimator", options.get("solver", "pandapower")) or "pandapower"
    if estimator not in ESTIMATORS:
        raise ValueError(f"state_estimation: unknown estimator {estimator!r} (known: {', '.join(ESTIMATORS)})")
    accuracy = Accuracy.from_settings(_settings.get(model), options)
    names = list(snapshot.names) if snapshot is not None else []
    engine = _pandapower if estimator == "pandapower" else _pgm
    if not names and options.get("offline", True):  # `leitstand study se MODEL`: no point database
        from dms_kernel.model import Analog
        from dms_kernel.model.scada import add_scada_measurements

        if not model.of_type(Analog):
            add_scada_measurements(model, meters=True)
        values, usable = offline_values(model, _pandapower.entry(model, None))
        return engine.run(model, values, usable, None, accuracy, options)
    plan = engine.entry(model, names).plan
    values, usable = plan.values(snapshot)
    substituted: list[str] = []
    store = _forecasts.get(model)
    if store is not None and options.get("forecast_pseudo", True):
        values, usable, accuracy, substituted = store.substitute(plan, values, usable, accuracy, time.time())
    result = engine.run(model, values, usable, names, accuracy, options)
    if substituted and result.converged:
        result = attrs.evolve(result, data={**result.data, "forecast_pseudo": substituted},
                              message=f"{result.message}; {len(substituted)} missing meter values replaced by their forecast")
    return result


@hookimpl
def dms_check_result(result, model, kernel):
    if result.study == "forecast" and model is not None and result.data.get("forecasts"):
        _forecasts.setdefault(model, ForecastPseudo()).update(result.data["forecasts"])
        return None
    if result.study != STUDY or not result.converged:
        return None
    suspect = list(result.data.get("suspect") or ())
    if not suspect:
        return None
    bits = Quality(validity=Validity.QUESTIONABLE, detail=Detail.INCONSISTENT).to_bits()
    kernel.set_quality(suspect, bits, source="state_estimation")
    alarms = []
    for entry in result.data.get("bad_data") or ():
        for point in entry["points"]:
            alarms.append(
                Alarm(
                    f"bad data: {point} is inconsistent with the state estimate (normalised residual "
                    f"{entry['normalised_residual']:.1f}); set questionable and excluded",
                    AlarmPriority.MEDIUM,
                    source="state_estimation",
                    point=PointId(point),
                    category="bad-data",
                )
            )
    return alarms


def offline_values(model, entry) -> tuple[np.ndarray, np.ndarray]:
    """Measurement values from a power flow of the model itself (offline runs without SCADA)."""
    import copy

    import pandapower as pp

    entry.network.update(model)
    net = copy.deepcopy(entry.network.net)
    pp.runpp(net, calculate_voltage_angles=True)
    rows = entry.plan.rows
    values = np.full(len(rows), np.nan)
    for k, bus in entry.v_rows:
        values[k] = float(net.res_bus.at[bus, "vm_pu"] * net.bus.at[bus, "vn_kv"])
    for k, kind, table, index, side in entry.branch_rows:
        column = f"i_{side}_ka" if kind == "i" else (f"p_{side}_mw" if kind == "p" else f"q_{side}_mvar")
        values[k] = float(net[f"res_{table}"].at[index, column])
    for k, kind, table, index in entry.injection_rows:
        value = float(net[f"res_{table}"].at[index, "p_mw" if kind == "p" else "q_mvar"])
        values[k] = -value if table == "storage" else value
    values /= np.where(entry.plan.factors != 0, entry.plan.factors, 1.0)
    return values, ~np.isnan(values)


def voltage_errors(result, truth: Mapping[str, float]) -> np.ndarray:
    """|estimated - true| voltage magnitudes (pu, phase 1) for the nodes in ``truth`` (node mRID -> pu)."""
    nodes = result.data["nodes"]
    vm = np.asarray(nodes["vm_pu"], dtype=float)
    out = [abs(vm[k] - truth[n]) for k, (n, ph) in enumerate(zip(nodes["node"], nodes["phase"], strict=True)) if ph == 1 and n in truth]
    return np.asarray(out)
