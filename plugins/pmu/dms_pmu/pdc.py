"""Phasor data concentrator: time-aligns the samples of several PMUs by timestamp.

Samples are grouped by their timestamp (SOC + FRACSEC, to the microsecond). A group is
released as soon as every *live* PMU has delivered, or when ``wait_window_s`` has passed
since its first sample arrived; each live PMU absent from a released group counts one
missing frame. A sample arriving for a timestamp already released (or older) counts one
late frame and is dropped, as a PDC does. A PMU that is stalled or disconnected is not
live: the others are released without waiting for it. Pure logic with an injected clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import attrs

from .codec import Sample

__all__ = ["Aligner", "AlignedSet", "PmuCounters"]


@attrs.define
class PmuCounters:
    """Per-PMU counters of the concentrator."""

    frames: int = 0
    late: int = 0
    missing: int = 0
    malformed: int = 0


@attrs.frozen
class AlignedSet:
    """The samples of one timestamp: ``samples`` by PMU name; ``missing`` names the live PMUs without one."""

    timestamp: float
    samples: dict[str, Sample]
    missing: tuple[str, ...]


class Aligner:
    """Groups samples of the PMUs ``names`` by timestamp (see the module docstring).

    :param names: the PMUs.
    :param wait_window_s: longest wait for the slowest PMU of a timestamp.
    :param clock: monotonic clock (tests inject one).
    """

    def __init__(self, names: Iterable[str], wait_window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.names = tuple(names)
        self.wait_window_s = wait_window_s
        self.clock = clock
        self.counters = {name: PmuCounters() for name in self.names}
        self.live: set[str] = set()
        self._groups: dict[int, tuple[float, dict[str, Sample]]] = {}  # key → (first arrival, samples)
        self._released = -1  # newest released key

    @staticmethod
    def key(timestamp: float) -> int:
        return int(round(timestamp * 1_000_000))

    def set_live(self, name: str, live: bool) -> list[AlignedSet]:
        """Mark a PMU live or not; groups waiting only for it are released at once."""
        (self.live.add if live else self.live.discard)(name)
        return [] if live else self._release_complete()

    def add(self, name: str, sample: Sample) -> list[AlignedSet]:
        """Add one sample; returns the groups it completes (oldest first)."""
        counters = self.counters[name]
        counters.frames += 1
        key = self.key(sample.timestamp)
        if key <= self._released:
            counters.late += 1
            return []
        group = self._groups.get(key)
        if group is None:
            group = self._groups[key] = (self.clock(), {})
        if name in group[1]:
            counters.late += 1  # a duplicate timestamp from the same PMU
            return []
        group[1][name] = sample
        return self._release_complete()

    def poll(self) -> list[AlignedSet]:
        """Release groups whose wait window has passed (call often, e.g. every 10 ms)."""
        now = self.clock()
        due = [key for key, (first, _) in self._groups.items() if now - first >= self.wait_window_s]
        if not due:
            return self._release_complete()
        newest = max(due)  # everything up to the newest due group goes, in timestamp order
        return self._release(lambda key: key <= newest) + self._release_complete()

    def _release_complete(self) -> list[AlignedSet]:
        if not self._groups:
            return []
        complete = [key for key, (_, samples) in self._groups.items() if self.live.issubset(samples)]
        if not complete:
            return []
        newest = max(complete)
        return self._release(lambda key: key <= newest)

    def _release(self, select: Callable[[int], bool]) -> list[AlignedSet]:
        out = []
        for key in sorted(k for k in self._groups if select(k)):
            _, samples = self._groups.pop(key)
            missing = tuple(sorted(name for name in self.live if name not in samples))
            for name in missing:
                self.counters[name].missing += 1
            self._released = max(self._released, key)
            out.append(AlignedSet(key / 1_000_000, samples, missing))
        return out
