"""Twins that simulator servers expose (implementations of :class:`dms_hookspecs.TwinAPI`).

:class:`StaticTwin` holds values that a test or a script sets; controls change the value of
the controlled point (a breaker command 1/2 sets its position, a tap command sets the step
or, with ``raise_lower``, moves it by ±1). The grid twin (pandapower power flow over time)
builds on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence

from dms_hookspecs import INVALID, PointKind, PointSpec

__all__ = ["StaticTwin"]

Change = tuple[str, float, int, float]


class StaticTwin:
    """An in-memory twin: points with values; controls write their point.

    :param points: the points served.
    :param initial: initial values (others start at 0 with good quality; use
        :meth:`set` with ``INVALID`` bits for never-measured points).
    """

    def __init__(self, points: Iterable[PointSpec], initial: dict[str, float] | None = None) -> None:
        self._specs = {spec.id.name: spec for spec in points}
        now = time.time()
        self._values: dict[str, tuple[float, int, float]] = {
            name: (float((initial or {}).get(name, 0.0)), 0, now) for name in self._specs
        }
        self._subscribers: list[Callable[[Sequence[Change]], None]] = []
        self.commands: list[tuple[str, float]] = []
        self.refuse: dict[str, str] = {}
        self.operate_delay_s = 0.0

    def points(self) -> Sequence[PointSpec]:
        return list(self._specs.values())

    def spec(self, point: str) -> PointSpec:
        return self._specs[point]

    def read(self, point: str) -> tuple[float, int, float]:
        return self._values[point]

    def subscribe(self, callback: Callable[[Sequence[Change]], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback) if callback in self._subscribers else None

    def set(self, point: str, value: float, quality: int = 0, source_time: float | None = None) -> None:
        """Set one value and notify subscribers."""
        self.set_many({point: value}, quality, source_time)

    def set_many(self, values: dict[str, float], quality: int = 0, source_time: float | None = None) -> None:
        """Set several values at once (one notification)."""
        stamp = time.time() if source_time is None else source_time
        changes = []
        for point, value in values.items():
            if point not in self._specs:
                raise KeyError(f"the twin has no point {point!r}")
            self._values[point] = (float(value), int(quality), stamp)
            changes.append((point, float(value), int(quality), stamp))
        for callback in list(self._subscribers):
            callback(changes)

    def invalidate(self, points: Iterable[str] | None = None) -> None:
        """Mark points (default: all) invalid, e.g. a meter outage."""
        names = list(points) if points is not None else list(self._specs)
        for name in names:
            value, _, _ = self._values[name]
            self.set(name, value, INVALID.to_bits())

    async def operate(self, point: str, value: float) -> tuple[bool, str]:
        spec = self._specs.get(point)
        if spec is None:
            return False, f"the twin has no point {point!r}"
        if not spec.controllable:
            return False, f"point {point!r} is not controllable"
        if point in self.refuse:
            return False, self.refuse[point]
        if self.operate_delay_s:
            await asyncio.sleep(self.operate_delay_s)
        if spec.kind is PointKind.DOUBLE and int(value) not in (1, 2):
            return False, f"breaker command must be 1 (open) or 2 (close), got {value!r}"
        self.commands.append((point, float(value)))
        self.set(point, value)
        return True, "executed"
