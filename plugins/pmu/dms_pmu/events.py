"""Frequency and ROCOF event detection with on-delay (one detector per PMU and quantity)."""

from __future__ import annotations

import attrs

__all__ = ["LimitDetector"]


@attrs.define
class LimitDetector:
    """Raises when ``|value - reference| > limit`` has held for ``on_delay_s`` (source time),
    clears when it has stayed within the limit for ``on_delay_s``.

    :meth:`update` returns ``"raised"``, ``"cleared"`` or ``None``.
    """

    limit: float
    on_delay_s: float
    reference: float = 0.0
    active: bool = False
    _since: float | None = None
    worst: float = 0.0

    def update(self, value: float, timestamp: float) -> str | None:
        outside = abs(value - self.reference) > self.limit
        if outside:
            self.worst = max(self.worst, abs(value - self.reference)) if self.active or self._since is not None else abs(value - self.reference)
        if outside == self.active:
            self._since = None
            return None
        if self._since is None:
            self._since = timestamp
        if timestamp - self._since >= self.on_delay_s:
            self.active, self._since = outside, None
            return "raised" if outside else "cleared"
        return None

    def reset(self) -> None:
        self._since = None
