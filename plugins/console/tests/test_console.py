"""Console and JSON-lines sinks in a running kernel."""

from __future__ import annotations

import asyncio
import json

import dms_console.plugin
import dms_replay.plugin
from dms_hookspecs import Alarm, AlarmPriority, Command


async def test_jsonl_sink_writes_measurements_commands_and_audit(make_kernel, tmp_path):
    path = tmp_path / "events.jsonl"
    kernel = make_kernel(
        dms_replay.plugin,
        dms_console.plugin,
        deployment=f'''
[deployment]
name = "t"
[[sources]]
name = "rtu"
type = "random_walk"
settings = {{ points = 3, period_s = 0.05, controls = 1, seed = 1 }}
[[sinks]]
name = "file"
type = "jsonl"
settings = {{ path = "{path}" }}
''',
    )
    async with kernel:
        await asyncio.sleep(0.12)
        result = await kernel.execute(Command("rtu/PSP0", 42.0, originator="operator:anna", reason="test"))
        kernel.emit(Alarm("feeder F3 overloaded", AlarmPriority.HIGH))
        await asyncio.sleep(0.05)
    assert result.ok
    records = [json.loads(line) for line in path.read_text().splitlines()]
    measurements = [r for r in records if r["event"] == "measurement"]
    assert {r["point"] for r in measurements} >= {"rtu/P0", "rtu/P1", "rtu/P2", "rtu/PSP0"}
    assert [r["value"] for r in measurements if r["point"] == "rtu/PSP0"] == [42.0]
    assert all(r["quality"] == "good" for r in measurements)
    command = next(r for r in records if r["event"] == "Command")
    assert command["target"] == "rtu/PSP0" and command["originator"] == "operator:anna"
    assert next(r for r in records if r["event"] == "CommandResult")["status"] == "succeeded"
    assert next(r for r in records if r["event"] == "Alarm")["priority"] == "high"
    assert {r["action"] for r in records if r["event"] == "AuditEntry"} >= {"command.received", "command.result", "kernel.start"}


async def test_console_sink_prints_operator_text(make_kernel, capsys):
    kernel = make_kernel(
        dms_replay.plugin,
        dms_console.plugin,
        deployment='''
[deployment]
name = "t"
[[sources]]
name = "rtu"
type = "random_walk"
settings = { points = 2, period_s = 0.05, controls = 1 }
[[sinks]]
name = "screen"
type = "console"
settings = { measurements = "all" }
''',
    )
    async with kernel:
        await asyncio.sleep(0.08)
        await kernel.execute(Command("rtu/PSP0", 7.0, originator="operator:anna", reason="raise"))
        await asyncio.sleep(0.05)
    out = capsys.readouterr().out
    assert "rtu: 2 changed values" in out
    assert "rtu/P0 = " in out
    assert "Command: rtu/PSP0 := 7 by operator:anna (raise)" in out
    assert "CommandResult: succeeded at operate: set-point rtu/PSP0 = 7" in out
