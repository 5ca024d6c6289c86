"""Front-end processes (`leitstand frontend`) against the real NATS server: values flow to the
core, commands come back, and the standby takes over when the active front-end is killed."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import dms_nats.plugin
import dms_replay.plugin
from plugins_for_tests import ListSink, test_types
from nats_support import start_leitstand, stop_leitstand, wait_for
from dms_hookspecs import Alarm, Command, CommandStatus

SOURCES = '''
[[sources]]
name = "rtu"
type = "random_walk"
group = "north"
settings = { points = 4, period_s = 0.05, controls = 1, seed = 1 }

[[sources]]
name = "local"
type = "random_walk"
settings = { points = 2, period_s = 0.2 }
'''
SINK = '''
[[sinks]]
name = "historian"
type = "list"
'''


def _frontend(path, instance: str) -> subprocess.Popen:
    return start_leitstand(path.parent, instance, "frontend", str(path), "--group", "north", "--instance", instance)


def _stop(process: subprocess.Popen) -> str:
    return stop_leitstand(process, timeout=15)


def _write(tmp_path, nats_env):
    path = tmp_path / "deployment.toml"
    path.write_text(nats_env.toml(SOURCES, SINK))
    return path


def _core(make_kernel, path):
    return make_kernel(dms_replay.plugin, ("nats", dms_nats.plugin), test_types, deployment=path.read_text())


async def test_values_flow_and_commands_reach_the_front_end(make_kernel, nats_env, tmp_path):
    path = _write(tmp_path, nats_env)
    frontend = _frontend(path, "fe-a")
    try:
        kernel = _core(make_kernel, path)
        async with kernel:
            remote = kernel.sources["rtu"]
            await wait_for(lambda: remote.counters["ingested"] >= 5, timeout=30)
            assert 8.0 < kernel.points.read("rtu/P3").value < 12.0
            assert kernel.points.read("local/P0").value != 0  # ungrouped sources run in the core
            result = await kernel.execute(Command("rtu/PSP0", 42.5, originator="alice"))
            assert result.status is CommandStatus.SUCCEEDED, result
            assert "set-point rtu/PSP0 = 42.5" in result.reason
            await wait_for(lambda: kernel.points.read("rtu/PSP0").value == 42.5)
            await wait_for(lambda: any(a.category == "failover" for a in ListSink.instances["historian"].of_type(Alarm)))
    finally:
        output = _stop(frontend)
    assert frontend.returncode == 0, output
    assert "ACTIVE (term" in output


async def test_standby_takes_over_when_the_active_front_end_is_killed(make_kernel, nats_env, tmp_path):
    path = _write(tmp_path, nats_env)
    first = _frontend(path, "fe-a")
    second = None
    try:
        kernel = _core(make_kernel, path)
        async with kernel:
            remote = kernel.sources["rtu"]
            await wait_for(lambda: remote.counters["ingested"] >= 5, timeout=30)
            second = _frontend(path, "fe-b")
            # fe-b is up and waiting as the standby (start-up loads every installed plugin: seconds on a busy machine)
            await wait_for(lambda: "standby" in open(second.log_path).read(), timeout=60, interval=0.2)
            await asyncio.sleep(0.5)
            assert all(key.startswith("fe-a:") for key in remote.ingested_keys)
            first.send_signal(signal.SIGKILL)
            killed_at = time.monotonic()
            await wait_for(lambda: remote.ingested_keys[-1].startswith("fe-b:"), timeout=15)
            takeover_s = time.monotonic() - killed_at
            print(f"takeover {takeover_s:.2f} s")
            before = remote.counters["ingested"]
            await wait_for(lambda: remote.counters["ingested"] >= before + 10, timeout=10)  # values keep arriving
            result = await kernel.execute(Command("rtu/PSP0", 7.0))  # commands now go to fe-b
            assert result.ok, result
        keys = list(remote.ingested_keys)
    finally:
        first.kill()
        first.wait()
        output = _stop(second) if second else ""
    assert takeover_s < 5.0, f"takeover took {takeover_s:.1f} s"
    assert len(keys) == len(set(keys)), "a batch was ingested twice"
    instances = [key.split(":")[0] for key in keys]
    switch = instances.index("fe-b")
    assert set(instances[:switch]) == {"fe-a"} and set(instances[switch:]) == {"fe-b"}  # one active at a time
    sequences = [int(key.split(":")[1]) for key in keys[switch:]]
    assert sequences == sorted(sequences)
    assert remote.counters["fenced"] == 0 and remote.counters["rejected"] == 0
    assert "taking over" in output and "ACTIVE (term" in output, output
