"""``rtu_sim``: many simulated RTUs at a set change rate, stamped with their generation time."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

import dms_replay.plugin
from dms_replay import RtuSimSource

DEPLOYMENT = '''
[deployment]
name = "rtu-sim-test"
[[sources]]
name = "sim"
type = "rtu_sim"
settings = { rtus = 4, points = 25, rate = 4.0, period_s = 0.05, seed = 3 }
'''


async def test_rtus_report_all_points_then_change_each_at_the_rate(make_kernel):
    kernel = make_kernel(dms_replay.plugin, deployment=DEPLOYMENT)
    batches: list[tuple[np.ndarray, float]] = []
    async with kernel:
        assert len(kernel.points.owned_by("sim").nonzero()[0]) == 100
        assert kernel.points.owner("sim/R3/P24") == "sim"
        kernel.points.subscribe(None, lambda changed: batches.append((changed.copy(), time.time())))
        started = time.monotonic()
        await asyncio.sleep(1.5)
        elapsed = time.monotonic() - started
        source = kernel.sources["sim"]
        stamps = [kernel.points.read(int(changed[0])).source_time for changed, _ in batches[-10:]]
    changes = np.concatenate([changed for changed, _ in batches])
    per_point = np.bincount(changes, minlength=changes.max() + 1)[np.unique(changes)]
    assert len(per_point) == 100  # every point reported
    expected = 100 * 4.0 * elapsed
    assert 0.6 * expected < changes.size < 1.4 * expected + 100
    assert per_point.max() - per_point.min() <= 3  # round-robin: the same rate for every point
    assert max(len(changed) for changed, _ in batches) <= 25  # one batch per RTU and cycle
    assert source.generated >= changes.size
    assert all(0 <= batches[-1][1] - stamp < 1.0 for stamp in stamps)  # source time = generation time


@pytest.mark.parametrize("settings", [{"rtus": 0}, {"points": 0}, {"rate": -1.0}, {"period_s": 0.0}])
def test_rejects_impossible_settings(settings):
    full = {"rtus": 1, "points": 1, "rate": 1.0, "period_s": 0.1, "prefix": "", "nominal": 0.0, "step": 1.0,
            "unit": "A", "seed": None, **settings}
    with pytest.raises(ValueError, match="rtu_sim 'x'"):
        RtuSimSource("x", full)
