"""Entry point of the ``limits`` plugin: checks every power-flow result against limits."""

from __future__ import annotations

import weakref

from dms_hookspecs import Setting, SettingsSchema, hookimpl

from .checker import LimitChecker, LimitSettings

_checkers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@hookimpl
def dms_settings_schema():
    return SettingsSchema(
        (
            Setting("voltage_band_pu", list, [0.9, 1.1], "default voltage band [low, high] in pu (EN 50160)"),
            Setting("voltage_bands", dict, {}, 'per voltage level: { "20" = [0.95, 1.05], "0.4" = [0.9, 1.1] } (kV)'),
            Setting("max_loading_percent", float, 100.0, "thermal limit of lines and transformers"),
            Setting("voltage_hysteresis_pu", float, 0.005, "a voltage alarm clears this far inside the band"),
            Setting("loading_hysteresis_percent", float, 2.0, "a loading alarm clears this far below the limit"),
            Setting("reverse_flow", bool, True, "alarm on reverse power flow through transformers"),
        )
    )


def settings_from(raw) -> LimitSettings:
    """:class:`LimitSettings` from the validated ``[settings.limits]`` table."""

    def band(value, where):
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, int | float) for v in value) and value[0] < value[1]):
            raise ValueError(f"[settings.limits] {where}: expected [low, high] with low < high, got {value!r}")
        return (float(value[0]), float(value[1]))

    bands = {}
    for level, value in raw.get("voltage_bands", {}).items():
        try:
            kv = float(level)
        except ValueError:
            raise ValueError(f"[settings.limits] voltage_bands: key {level!r} is not a voltage in kV") from None
        bands[kv] = band(value, f"voltage_bands.{level}")
    return LimitSettings(
        voltage_band=band(raw.get("voltage_band_pu", [0.9, 1.1]), "voltage_band_pu"),
        voltage_bands=bands,
        max_loading_percent=raw.get("max_loading_percent", 100.0),
        voltage_hysteresis_pu=raw.get("voltage_hysteresis_pu", 0.005),
        loading_hysteresis_percent=raw.get("loading_hysteresis_percent", 2.0),
        reverse_flow=raw.get("reverse_flow", True),
    )


@hookimpl
def dms_startup(kernel):
    _checkers[kernel] = LimitChecker(settings_from(kernel.settings_for("limits")))


@hookimpl
def dms_check_result(result, kernel):
    checker = _checkers.get(kernel)
    if checker is None:  # study run without startup (e.g. `leitstand study`)
        checker = _checkers[kernel] = LimitChecker(settings_from(kernel.settings_for("limits")))
    return checker.check(result)
