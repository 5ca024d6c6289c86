"""FLISR end to end over IEC 60870-5-104: fault injected in the simulator's twin → breaker trip
and fault passage indicators reported → plan → switching commands → the twin restored."""

from __future__ import annotations

import asyncio
import math
import time

import dms_flisr.plugin
import dms_iec104.plugin
import dms_pgm.plugin
from dms_iec104.server import Iec104Server
from dms_iec104.testing import free_port, wait_until
from dms_simulator.grid import GridTwin

from dms_flisr.examples import add_fault_indicators, looped_feeders
from dms_hookspecs import hookimpl
from dms_kernel.model import Measurement, Switch
from dms_kernel.model.scada import add_scada_measurements


def equipped():
    model = looped_feeders(3, 5)
    add_scada_measurements(model)
    add_fault_indicators(model)
    return model


def point_map(model) -> str:
    rows = ["point,address,kind,scale,sbo"]
    for k, m in enumerate(sorted(model.of_type(Measurement), key=lambda m: m.point_name)):
        kind = {"SwitchPosition": "double", "FaultPassageIndicator": "binary", "TapPosition": "step"}.get(m.measurement_type, "analog")
        rows.append(f"{m.point_name},1:{1000 + k},{kind},1,{'true' if kind == 'double' else ''}")
    return "\n".join(rows) + "\n"


class model_plugin:  # noqa: N801
    @staticmethod
    @hookimpl(tryfirst=True)
    def dms_load_model(location, base_dir):
        return equipped() if location == "flisr:looped" else None


def deployment(port: int, map_path) -> str:
    return f"""
[deployment]
name = "flisr end to end"
model = "flisr:looped"

[settings.flisr]
mode = "automatic"
lockout_s = 0.5

[[sources]]
name = "rtu"
type = "iec104"
settings = {{ host = "127.0.0.1", port = {port}, points_file = "{map_path}", command_timeout_s = 5.0 }}
"""


def _energised(twin: GridTwin, node_name: str) -> bool:
    node = next(n for n in twin.model.node_ids() if twin.model.objects[n].name == node_name)
    return not math.isnan(float(twin.network.net.res_bus.at[twin.network.bus_of[node], "vm_pu"]))


async def test_fault_to_restoration_over_iec104(make_kernel, tmp_path):
    twin_model = equipped()
    map_path = tmp_path / "rtu.csv"
    map_path.write_text(point_map(twin_model))
    twin = GridTwin(twin_model, speed=0.0, start_hour=12.0, noise=0.0, seed=1)
    port = free_port()
    server = Iec104Server("rtu", {"port": port, "points_file": str(map_path)}, twin)
    await server.start()
    try:
        kernel = make_kernel(("flisr", dms_flisr.plugin), ("power_grid_model", dms_pgm.plugin), ("iec104", dms_iec104.plugin),
                             model_plugin, deployment=deployment(port, map_path))
        async with kernel:
            await wait_until(lambda: kernel.points.read("F1_CB/Pos").value == 2, 10.0, "breaker positions")
            assert _energised(twin, "F1 S4")
            tripped_at = time.monotonic()
            tripped = twin.inject_fault("F1 L2")  # the cable of section 2 of feeder 1
            assert twin.model.objects[tripped].name == "F1 CB"
            assert not _energised(twin, "F1 S4")
            runner = dms_flisr.plugin.runner_for(kernel)
            await wait_until(lambda: runner.executions, 20.0, "FLISR execution")
            elapsed = time.monotonic() - tripped_at
            result = runner.results[-1]
            execution = runner.executions[-1]
            await asyncio.sleep(0.2)
    finally:
        await server.stop()
    print(f"\n{result.message}\n{result.data['switching_order']}\ntrip → restored in {elapsed:.2f} s (lockout 0.5 s)")
    assert execution["ok"], execution
    assert result.data["faulted"].startswith("F1 S2")
    switches = {s.name: s for s in twin.model.of_type(Switch)}
    assert switches["F1 SW2"].open and switches["F1 SW3"].open  # the faulted section isolated in the field
    assert not switches["F1 CB"].open  # upstream restored
    assert _energised(twin, "F1 S1") and _energised(twin, "F1 S3") and _energised(twin, "F1 S4")  # restored through a tie
    assert not _energised(twin, "F1 S2")
    share = result.data["restored_mw"] / (result.data["restored_mw"] + result.data["unrestored_mw"])
    assert abs(share - 0.8) < 0.01  # four of the feeder's five equal sections restored; only the faulted one stays off
    assert execution["trip_to_restored_s"] < 10.0
