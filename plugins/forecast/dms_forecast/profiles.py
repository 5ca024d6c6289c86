"""Real load and PV profiles shipped by the ``simbench`` package (SimBench data set, year 2016).

SimBench ships one year of 15-minute profiles (35,136 steps, 2016) for standard load
profiles (households ``H0-*``, commerce ``G*``, agriculture ``L*``, aggregated LV grids
``lv_*``) and renewables (``PV1``-``PV8``, wind ``WP*``, biomass, hydro, aggregated LV
infeed ``lv_*``). Active-power load profiles are the ``<name>_pload`` columns; values are
per unit of the element's rated power. SimBench stamps are German local time with DST (2016-03-27
02:00-02:45 missing, 2016-10-30 02:00-02:45 twice); they are localised as ``Europe/Berlin`` and converted to UTC,
giving a gap-free UTC series.

``simbench`` is an optional dependency (extra ``profiles``): the plugin does not need it
at run time; the benchmark and the tests do.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import pandas as pd

__all__ = ["simbench_data_dir", "read_profiles", "load_profiles", "pv_profiles", "feeder_profiles"]

_FORMAT = "%d.%m.%Y %H:%M"
TIMEZONE = "Europe/Berlin"
"""Local time of the SimBench profiles (use it for calendar features)."""


def simbench_data_dir() -> Path:
    """Directory of SimBench's complete data set (CSV files) inside the installed package."""
    try:
        import simbench
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("real profiles need the 'simbench' package: pip install 'dms-forecast[profiles]'") from exc
    return Path(simbench.__file__).parent / "networks" / "1-complete_data-mixed-all-0-sw"


@lru_cache(maxsize=8)
def _read(file: str, columns: tuple[str, ...]) -> pd.DataFrame:
    frame = pd.read_csv(simbench_data_dir() / file, sep=";", usecols=("time", *columns))
    local = pd.DatetimeIndex(pd.to_datetime(frame.pop("time"), format=_FORMAT), name="time")
    frame.index = local.tz_localize(TIMEZONE, ambiguous="infer").tz_convert("UTC")
    return frame.astype(float)


def read_profiles(file: str, columns: Sequence[str]) -> pd.DataFrame:
    """Columns of a SimBench profile file (``LoadProfile.csv``, ``RESProfile.csv``) indexed by UTC time."""
    return _read(file, tuple(columns)).copy()


def load_profiles(names: Sequence[str] = ("H0-A", "G0-A", "L0-A", "lv_rural1", "lv_semiurb4")) -> pd.DataFrame:
    """Active-power load profiles (per unit), one column per profile name."""
    frame = read_profiles("LoadProfile.csv", [f"{name}_pload" for name in names])
    frame.columns = list(names)
    return frame


def pv_profiles(names: Sequence[str] = ("PV3", "PV7")) -> pd.DataFrame:
    """PV infeed profiles (per unit of rated power), one column per profile name."""
    return read_profiles("RESProfile.csv", list(names))


@lru_cache(maxsize=2)
def _feeder(code: str) -> pd.DataFrame:
    import simbench as sb

    net = sb.get_simbench_net(code)
    values = sb.get_absolute_values(net, profiles_instead_of_study_cases=True)
    load = values[("load", "p_mw")].sum(axis=1).to_numpy()
    sgen = values[("sgen", "p_mw")]
    pv_mask = net.sgen.type.str.contains("PV|lv_RES", regex=True).reindex(sgen.columns, fill_value=False).to_numpy()
    pv = sgen.loc[:, pv_mask].sum(axis=1).to_numpy()
    index = load_profiles(("H0-A",)).index[: len(load)]
    return pd.DataFrame({"load_mw": load, "pv_mw": pv, "residual_mw": load - pv}, index=index)


def feeder_profiles(code: str = "1-MV-rural--0-sw") -> pd.DataFrame:
    """Aggregates of one SimBench grid in MW: ``load_mw`` (all loads), ``pv_mw`` (PV and
    aggregated LV infeed, which is PV-dominated) and ``residual_mw`` (load minus that infeed,
    what the substation transformer sees without wind/biomass/hydro)."""
    return _feeder(code).copy()
