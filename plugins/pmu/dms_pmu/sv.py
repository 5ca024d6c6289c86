"""IEC 61850-9-2LE Sampled Values processing: RMS and fundamental phasor per channel (one-cycle DFT).

9-2LE merging units send 80 samples per nominal cycle (protection; one ASDU per frame) or
256 (metering; eight ASDUs per frame) of four currents and four voltages (``IA IB IC IN UA UB
UC UN``) as INT32 with scale 1 mA and 10 mV per count, and a sample counter ``smpCnt`` that
restarts at 0 on the top of every second (the merging unit is synchronised to it).

:func:`cycle_phasors` computes, from one cycle of ``N`` samples per channel,

* the **RMS** of the cycle (fundamental and harmonics): ``sqrt(mean(x²))``;
* the **fundamental phasor** by the DFT bin 1: ``X = (√2 / N) Σ x[n] e^(-j 2π n / N)``, whose
  magnitude is the fundamental's RMS and whose angle is that of ``x(t) = √2 |X| cos(ωt + φ)``
  at the first sample. Integer harmonics fall on other bins and do not leak into it.

:class:`SvProcessor` takes the stream (samples and their ``smpCnt``) and reports one result
per channel every ``report_cycles`` cycles, the angle referred to the top of the second (as a
PMU's; two merging units synchronised to the same second give comparable angles): a window
starting at ``smpCnt = k`` has its angle turned back by ``2π k / N``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LE_CHANNELS", "LE_SCALE", "SAMPLE_RATES", "CyclePhasors", "SvProcessor", "cycle_phasors"]

LE_CHANNELS = ("IA", "IB", "IC", "IN", "UA", "UB", "UC", "UN")
"""The eight channels of a 9-2LE data set, in order."""
LE_SCALE = np.array([0.001] * 4 + [0.01] * 4)
"""Engineering units per count of the 9-2LE channels (A for currents, V for voltages)."""
SAMPLE_RATES = (80, 256)
"""Samples per nominal cycle of 9-2LE (protection, metering)."""


@dataclass(frozen=True)
class CyclePhasors:
    """One cycle's results, arrays with one entry per channel."""

    rms: np.ndarray
    """RMS of the cycle (fundamental and harmonics)."""
    magnitude: np.ndarray
    """Fundamental phasor magnitude (RMS of the fundamental)."""
    angle_deg: np.ndarray
    """Fundamental phasor angle in degrees, (-180, 180]."""
    smp_cnt: int = 0
    """Sample counter of the window's first sample."""

    @property
    def phasor(self) -> np.ndarray:
        return self.magnitude * np.exp(1j * np.radians(self.angle_deg))


def _basis(n: int) -> np.ndarray:
    return np.sqrt(2.0) / n * np.exp(-2j * np.pi * np.arange(n) / n)


def cycle_phasors(samples: np.ndarray, smp_cnt: int = 0) -> CyclePhasors:
    """RMS and fundamental phasor of one cycle.

    :param samples: shape ``(N,)`` or ``(N, channels)``: exactly one nominal cycle, in
        engineering units.
    :param smp_cnt: sample counter of the first sample; the angle is referred to counter 0
        (``-2π smp_cnt / N``). 0 gives the angle at the first sample.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = x.shape[0]
    if n < 4:
        raise ValueError("one cycle needs at least 4 samples")
    rms = np.sqrt(np.mean(x * x, axis=0))
    phasor = _basis(n) @ x
    if smp_cnt:
        phasor = phasor * np.exp(-2j * np.pi * (smp_cnt % n) / n)
    angle = np.degrees(np.angle(phasor))
    angle = np.where(angle <= -180.0, angle + 360.0, angle)
    return CyclePhasors(rms, np.abs(phasor), angle, smp_cnt)


class SvProcessor:
    """Stream of sampled values → :class:`CyclePhasors` every ``report_cycles`` cycles.

    :param samples_per_cycle: 80 or 256 for 9-2LE (any ``N ≥ 4`` works).
    :param channels: channel names (default the 9-2LE eight).
    :param scale: engineering units per count per channel (default :data:`LE_SCALE` when the
        channels are the 9-2LE ones, else 1).
    :param report_cycles: report every this many cycles (1 = 50 reports/s at 50 Hz).

    Windows are aligned to the sample counter (a window starts where ``smpCnt % N == 0``),
    so results are comparable between merging units. A gap in ``smpCnt`` (lost frames)
    drops the partial window: no phasor is computed over missing samples.
    """

    def __init__(self, samples_per_cycle: int = 80, channels: Sequence[str] = LE_CHANNELS,
                 scale: Sequence[float] | np.ndarray | None = None, report_cycles: int = 1) -> None:
        if samples_per_cycle < 4:
            raise ValueError("samples_per_cycle must be at least 4")
        if report_cycles < 1:
            raise ValueError("report_cycles must be at least 1")
        self.n = samples_per_cycle
        self.channels = tuple(channels)
        if scale is None:
            scale = LE_SCALE if self.channels == LE_CHANNELS else np.ones(len(self.channels))
        self.scale = np.asarray(scale, dtype=np.float64)
        if self.scale.shape != (len(self.channels),):
            raise ValueError("one scale per channel")
        self.report_cycles = report_cycles
        self._buffer = np.zeros((self.n, len(self.channels)))
        self._fill = 0
        self._start = 0
        self._next = None  # expected smpCnt of the next sample
        self._cycles = 0
        self.gaps = 0
        """Sample-counter gaps seen (partial windows dropped)."""

    def push(self, samples: np.ndarray, smp_cnt: int, wrap: int | None = None) -> list[CyclePhasors]:
        """Add consecutive samples (``(k, channels)`` counts) whose first has counter ``smp_cnt``.

        :param wrap: value at which ``smpCnt`` restarts (samples per second, e.g. 4000 for
            80 × 50 Hz); ``None`` never wraps.
        :returns: the reports completed by these samples.
        """
        block = np.asarray(samples, dtype=np.float64)
        if block.ndim == 1:
            block = block[None, :]
        out: list[CyclePhasors] = []
        for offset, row in enumerate(block):
            count = smp_cnt + offset
            if wrap:
                count %= wrap
            if self._next is not None and count != self._next:
                self.gaps += 1
                self._fill = 0
            self._next = (count + 1) % wrap if wrap else count + 1
            if self._fill == 0:
                if count % self.n:
                    continue  # wait for a window boundary
                self._start = count
            self._buffer[self._fill] = row
            self._fill += 1
            if self._fill == self.n:
                self._fill = 0
                self._cycles += 1
                if self._cycles % self.report_cycles == 0:
                    out.append(cycle_phasors(self._buffer * self.scale, self._start))
        return out
