"""Scheduler: periodic jobs, overrun detection without stacking, failing jobs keep running."""

from __future__ import annotations

import asyncio

import plugins_for_tests as p
from dms_hookspecs import Alarm, StudyResult, hookimpl
from dms_kernel.scheduler import Scheduler


async def test_job_runs_periodically():
    scheduler = Scheduler()
    runs = []

    async def job():
        runs.append(asyncio.get_running_loop().time())

    scheduler.every("tick", 0.05, job)
    await scheduler.start()
    await asyncio.sleep(0.33)
    await scheduler.stop()
    assert 5 <= len(runs) <= 8
    assert scheduler.stats["tick"].overruns == 0


async def test_overrun_is_reported_and_skipped_never_stacked():
    overruns = []
    scheduler = Scheduler(on_overrun=lambda name, period, running: overruns.append((name, period, running)))
    active = 0
    most_active = 0

    async def slow_job():
        nonlocal active, most_active
        active += 1
        most_active = max(most_active, active)
        await asyncio.sleep(0.25)
        active -= 1

    scheduler.every("power_flow", 0.1, slow_job)
    await scheduler.start()
    await asyncio.sleep(0.8)
    await scheduler.stop()
    stats = scheduler.stats["power_flow"]
    assert most_active == 1  # never two runs at once
    assert stats.overruns >= 4
    assert 2 <= stats.runs <= 4
    assert overruns[0][0] == "power_flow" and overruns[0][1] == 0.1 and overruns[0][2] > 0.09


async def test_failing_job_is_reported_and_runs_again():
    errors = []
    scheduler = Scheduler(on_error=lambda name, exc: errors.append((name, str(exc))))
    calls = 0

    async def flaky():
        nonlocal calls
        calls += 1
        raise RuntimeError(f"failure {calls}")

    scheduler.every("flaky", 0.05, flaky)
    await scheduler.start()
    await asyncio.sleep(0.18)
    await scheduler.stop()
    assert calls >= 3
    assert errors[:2] == [("flaky", "failure 1"), ("flaky", "failure 2")]
    assert scheduler.stats["flaky"].failures == calls


class slow_solver:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_studies():
        return ["slow"]

    @staticmethod
    @hookimpl
    def dms_run_study(study, model, snapshot, options):
        import time

        time.sleep(options["seconds"])  # synchronous solvers run in a worker thread
        return StudyResult(study, "slow_solver", True)


async def test_kernel_job_overrun_raises_alarm_and_ingest_continues(make_kernel):
    text = p.deployment() + '[[jobs]]\nstudy = "slow"\nperiod_s = 0.1\noptions = { seconds = 0.35 }\n'
    kernel = make_kernel(p.test_types, slow_solver, deployment=text)
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        for n in range(20):  # the event loop stays free while the solver thread sleeps
            source.publish([float(n)])
            await asyncio.sleep(0.02)
        assert kernel.points.read("rtu/P0").value == 19.0
    sink = p.ListSink.instances["log"]
    overrun_alarms = [a for a in sink.of_type(Alarm) if a.category == "overrun"]
    assert overrun_alarms and "job 'slow' overran its period of 0.1 s" in overrun_alarms[0].message
    assert kernel.scheduler.stats["slow"].overruns >= 3
