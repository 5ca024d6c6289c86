"""Sampled Values processing: RMS and fundamental phasor of a 50 Hz waveform with harmonics (one-cycle DFT)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dms_pmu.sv import LE_CHANNELS, SvProcessor, cycle_phasors

F = 50.0
# (harmonic order, peak amplitude, phase in degrees): 230 V RMS fundamental at 30°, 3rd/5th/7th
VOLTAGE = [(1, 230 * math.sqrt(2), 30.0), (3, 0.08 * 230 * math.sqrt(2), -45.0), (5, 0.05 * 230 * math.sqrt(2), 110.0),
           (7, 0.03 * 230 * math.sqrt(2), 200.0)]


def waveform(components, t):
    return sum(a * np.cos(2 * np.pi * h * F * t + np.radians(p)) for h, a, p in components)


def analytic(components):
    rms = math.sqrt(sum(a * a / 2 for _, a, _ in components))
    _, a1, p1 = components[0]
    return rms, a1 / math.sqrt(2), p1


def rel(a, b):
    return abs(a - b) / abs(b)


def angle_rel(a, b):
    return abs((a - b + 180) % 360 - 180) / abs(b)


@pytest.mark.parametrize("n", [80, 256])
def test_one_cycle_rms_and_phasor_within_0_1_percent(n):
    t = np.arange(n) / (n * F)
    rms, magnitude, angle = analytic(VOLTAGE)
    result = cycle_phasors(waveform(VOLTAGE, t))
    assert rel(result.rms[0], rms) < 1e-3
    assert rel(result.magnitude[0], magnitude) < 1e-3
    assert angle_rel(result.angle_deg[0], angle) < 1e-3
    # the harmonics are really there: RMS and fundamental differ by more than the tolerance
    assert rel(result.rms[0], result.magnitude[0]) > 0.003


@pytest.mark.parametrize("n", [80, 256])
def test_le_stream_quantised_eight_channels_angles_referred_to_the_second(n):
    """A 9-2LE stream (INT32 counts, 1 mA / 10 mV, smpCnt wrapping each second) through the processor."""
    per_second = int(n * F)
    # three-phase voltages and currents with harmonics; neutral = sum of phases (harmonic zero-sequence)
    specs = {}
    for k, phase in enumerate("ABC"):
        shift = -120.0 * k
        specs[f"U{phase}"] = [(h, a, p + h * shift) for h, a, p in VOLTAGE]
        specs[f"I{phase}"] = [(1, 400 * math.sqrt(2), -10 + shift), (3, 60.0, 20 + 3 * shift), (5, 40.0, -70 + 5 * shift),
                              (7, 25.0, 160 + 7 * shift)]
    start = per_second - 3 * n - 17  # starts mid-cycle, shortly before the counter wraps
    k = np.arange(start, start + 6 * n)
    t = k / per_second
    signals = {name: waveform(c, t) for name, c in specs.items()}
    signals["IN"] = signals["IA"] + signals["IB"] + signals["IC"]
    signals["UN"] = signals["UA"] + signals["UB"] + signals["UC"]
    scale = np.array([0.001] * 4 + [0.01] * 4)
    counts = np.round(np.column_stack([signals[c] for c in LE_CHANNELS]) / scale).astype(np.int32)

    processor = SvProcessor(n)
    results = []
    for first in range(0, len(k), 8):  # frames of 8 samples, as 9-2LE at 256 samples/cycle
        results += processor.push(counts[first:first + 8], int(k[first] % per_second), wrap=per_second)
    assert len(results) == 5  # the partial first cycle is skipped; windows start at smpCnt % n == 0
    assert processor.gaps == 0
    for result in results:
        assert result.smp_cnt % n == 0
        for index, name in enumerate(LE_CHANNELS):
            if name in specs:
                rms, magnitude, angle = analytic(specs[name])
                assert rel(result.rms[index], rms) < 1e-3, name
                assert rel(result.magnitude[index], magnitude) < 1e-3, name
                assert angle_rel(result.angle_deg[index], (angle + 180) % 360 - 180) < 1e-3, name
    # neutral: only the triplen (3rd) harmonics add up; the fundamental cancels
    un = LE_CHANNELS.index("UN")
    assert results[0].magnitude[un] < 0.05
    assert rel(results[0].rms[un], 3 * VOLTAGE[1][1] / math.sqrt(2)) < 1e-3


def test_report_rate_and_gaps():
    n = 80
    processor = SvProcessor(n, channels=["x"], report_cycles=5)
    t = np.arange(20 * n) / (n * F)
    x = np.cos(2 * np.pi * F * t)[:, None]
    assert len(processor.push(x, 0)) == 4
    # a lost frame drops the window it falls in, and the next window counts again
    processor = SvProcessor(n, channels=["x"])
    out = processor.push(x[:100], 0) + processor.push(x[108:400], 108)
    assert processor.gaps == 1
    assert [r.smp_cnt for r in out] == [0, 160, 240, 320]
    assert out[-1].magnitude[0] == pytest.approx(1 / math.sqrt(2), rel=1e-9)
    with pytest.raises(ValueError):
        SvProcessor(80, channels=["a", "b"], scale=[1.0])
