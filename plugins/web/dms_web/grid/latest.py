"""The latest voltage result of a kernel and the voltage bands the grid views colour by.

The kernel does not keep study results; :class:`LatestResult` subscribes to its bus for
:class:`~dms_hookspecs.StudyResult` events and keeps the newest converged one that carries node
voltages (power flow, state estimation). One tracker per kernel (:func:`tracker`), created on
the first request of a grid view.

Voltage bands: the ``limits`` plugin's ``voltage_band_pu`` and ``voltage_bands`` when it is
configured, else 0.9–1.1 pu; a request may override the default band with ``?band=0.95,1.05``.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from dms_hookspecs import StudyResult

__all__ = ["LatestResult", "tracker", "Bands", "bands_for"]

log = logging.getLogger("leitstand.web.grid")
_trackers: weakref.WeakKeyDictionary[Any, LatestResult] = weakref.WeakKeyDictionary()
DEFAULT_BAND = (0.9, 1.1)


class LatestResult:
    """Newest converged :class:`StudyResult` with a ``nodes`` table, per study and overall."""

    def __init__(self) -> None:
        self.result: StudyResult | None = None
        self.by_study: dict[str, StudyResult] = {}

    def offer(self, result: Any) -> bool:
        """Keep ``result`` if it is a converged result with node voltages; True if kept."""
        data = getattr(result, "data", None)
        if not getattr(result, "converged", False) or not isinstance(data, Mapping) or "nodes" not in data:
            return False
        self.result = result
        self.by_study[str(getattr(result, "study", ""))] = result
        return True

    def latest(self, study: str | None = None) -> StudyResult | None:
        if study:
            return self.by_study.get(study)
        return self.result

    async def _on_events(self, events: Sequence[Any]) -> None:
        for event in events:
            self.offer(event)


def tracker(kernel: Any) -> LatestResult:
    """The tracker of ``kernel``, subscribed to its bus on first use."""
    found = _trackers.get(kernel)
    if found is not None:
        return found
    found = LatestResult()
    _trackers[kernel] = found
    bus = getattr(kernel, "bus", None)
    if bus is not None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            log.warning("grid views: no running event loop, results are not tracked")
        else:
            bus.subscribe("web-grid-results", found._on_events, (StudyResult,), 16)
    return found


class Bands:
    """Voltage bands in pu: a default and per nominal voltage level (kV)."""

    def __init__(self, default: Sequence[float] = DEFAULT_BAND, levels: Mapping[float, Sequence[float]] | None = None) -> None:
        self.default = (float(default[0]), float(default[1]))
        self.levels = {float(k): (float(v[0]), float(v[1])) for k, v in (levels or {}).items()}

    def band_for(self, nominal_kv: float | None) -> tuple[float, float]:
        """The band of the level nearest ``nominal_kv`` within 10 % (as the limits plugin), else the default."""
        if nominal_kv:
            best = None
            for level, band in self.levels.items():
                if abs(level - nominal_kv) <= 0.1 * level and (best is None or abs(level - nominal_kv) < abs(best[0] - nominal_kv)):
                    best = (level, band)
            if best is not None:
                return best[1]
        return self.default

    def as_json(self) -> dict[str, Any]:
        return {"default": list(self.default), "levels": {f"{k:g}": list(v) for k, v in self.levels.items()}}


def bands_for(kernel: Any, override: str | None = None) -> Bands:
    """The bands of ``kernel`` (limits settings), the default replaced by ``override`` (``"lo,hi"``).

    :raises ValueError: ``override`` is not two numbers with low < high.
    """
    limits: Mapping[str, Any] = {}
    settings_for = getattr(kernel, "settings_for", None)
    if settings_for is not None:
        limits = settings_for("limits") or {}
    default = tuple(limits.get("voltage_band_pu") or DEFAULT_BAND)
    levels = {}
    for key, value in dict(limits.get("voltage_bands") or {}).items():
        try:
            levels[float(key)] = (float(value[0]), float(value[1]))
        except (TypeError, ValueError, IndexError):
            continue
    if override:
        parts = override.split(",")
        if len(parts) != 2:
            raise ValueError("band must be 'low,high' in pu, e.g. 0.95,1.05")
        low, high = float(parts[0]), float(parts[1])
        if not (0.0 < low < high < 10.0):
            raise ValueError("band must satisfy 0 < low < high")
        default = (low, high)
        levels = {}
    return Bands(default, levels)  # type: ignore[arg-type]
