"""Entry point of the ``forecast`` plugin: the ``forecast`` study (load/PV forecasts from the historian).

``dms_run_study`` is not handed the kernel, so the plugin keeps the validated
``[settings.forecast]`` it received in ``dms_configure``; with several kernels in one
process the last configured wins (give ``historian_url`` as a job option to be explicit).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dms_hookspecs import Setting, SettingsSchema, hookimpl

from .forecasters import MODELS
from .study import run_forecast

_settings: dict[str, Any] = {}


@hookimpl
def dms_settings_schema():
    return SettingsSchema(
        (
            Setting("historian_url", str, None, 'SQL historian to read history from, e.g. "sqlite:///var/historian.db"'),
            Setting("model", str, "gradient_boosting", "default forecast model", choices=tuple(MODELS)),
            Setting("history_days", float, 56.0, "days of history to train on"),
            Setting("timezone", str, "UTC", 'time zone of calendar features (time of day, weekday), e.g. "Europe/Berlin"'),
        )
    )


@hookimpl
def dms_configure(config):
    _settings.clear()
    _settings.update(config.plugin_settings.get("forecast", {}) if config is not None else {})


@hookimpl
def dms_studies():
    return ["forecast"]


@hookimpl
def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]):
    if study != "forecast":
        return None
    return run_forecast(options, _settings)
