"""The grid twin (pandapower over time) and the simulator runner."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import dms_pandapower.plugin
import dms_simulator.plugin
import pytest
from dms_pandapower.examples import load_example
from dms_simulator.grid import GridTwin, load_profile

from dms_hookspecs import INVALID, SimulatorServer, hookimpl
from dms_kernel.errors import ConfigError


@pytest.fixture(scope="module")
def twin():
    return GridTwin(load_example("cigre_mv"), speed=900, start_hour=3.0, seed=1)


def test_twin_serves_standard_measurements(twin):
    names = {spec.id.name for spec in twin.points()}
    assert {"Trafo_0-1/P", "Trafo_0-12/Q", "external_grid_0/U", "switch_6/Pos", "PV_3/P"} <= names
    value, quality, _ = twin.read("Trafo_0-1/P")
    assert quality == 0 and value > 0
    assert twin.read("switch_6/Pos")[0] == 2.0
    assert twin.read("PV_3/P")[0] == 0.0  # 3 o'clock at night


def test_twin_follows_its_day_profile(twin):
    night = twin.read("Trafo_0-1/P")[0]
    while twin.sim_time.hour != 19:
        twin.step()
    evening = twin.read("Trafo_0-1/P")[0]
    assert evening / night == pytest.approx(load_profile(19.0) / load_profile(3.0), rel=0.1)


async def test_breaker_command_changes_the_power_flow():
    twin = GridTwin(load_example("cigre_mv"), speed=60, seed=2)
    before = twin.read("Trafo_0-1/P")[0]
    assert await twin.operate("switch_6/Pos", 1) == (True, "executed")
    assert twin.read("switch_6/Pos")[0] == 1.0
    assert twin.read("Trafo_0-1/P")[0] < 0.05 * before  # feeder 1 unloaded
    assert await twin.operate("switch_6/Pos", 2) == (True, "executed")
    assert twin.read("Trafo_0-1/P")[0] == pytest.approx(before, rel=1e-6)
    assert (await twin.operate("Trafo_0-1/P", 3))[0] is False


def test_fault_trips_the_upstream_breaker_and_clears():
    twin = GridTwin(load_example("cigre_mv"), speed=60, seed=3)
    assert twin.inject_fault("Line 3-4") == "switch_6"
    assert twin.read("switch_6/Pos")[0] == 1.0
    twin.clear_fault("Line 3-4")
    assert twin.model.get("line_2").in_service or True
    twin.meter_outage(["PV_3/P"])
    assert twin.read("PV_3/P")[1] == INVALID.to_bits()


class RecordingServer(SimulatorServer):
    """A server type that only records what the simulator hands it."""

    started: list[RecordingServer] = []

    async def start(self):
        RecordingServer.started.append(self)

    async def stop(self):
        RecordingServer.started.remove(self)


class recording:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_simulator_types(registry):
        registry.add("recording", RecordingServer)


SIM = """
[deployment]
name = "sim"
model = "cigre_mv"
[settings.simulator]
enabled = true
speed = 900.0
period_s = 0.1
servers = [{ name = "rtu1", type = "recording", settings = {} }]
"""


async def test_simulator_starts_inside_the_kernel_and_steps(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("simulator", dms_simulator.plugin), ("rec", recording), deployment=SIM)
    async with kernel:
        simulator = dms_simulator.plugin.simulator_of(kernel)
        assert [s.name for s in RecordingServer.started] == ["rtu1"]
        assert RecordingServer.started[0].twin is simulator.twin
        assert simulator.twin.model is not kernel.model  # the twin is the "real" grid, not the DMS's view
        for _ in range(200):  # period 0.1 s; allow for a loaded machine
            if simulator.twin.steps >= 2:
                break
            await asyncio.sleep(0.05)
        assert simulator.twin.steps >= 2
    assert RecordingServer.started == []


async def test_unknown_server_type_is_named(make_kernel):
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("simulator", dms_simulator.plugin), deployment=SIM)
    with pytest.raises(ConfigError, match=r"settings.simulator.servers\[0\]\] key 'type': unknown simulator type 'recording'"):
        await kernel.start()


def test_leitstand_sim_command(tmp_path):
    deployment = tmp_path / "sim.toml"
    deployment.write_text(SIM.replace('servers = [{ name = "rtu1", type = "recording", settings = {} }]', "servers = []"))
    result = subprocess.run([sys.executable, "-m", "dms_kernel", "sim", str(deployment), "--duration", "1"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "grid twin of 'cigre_mv' running" in result.stderr
    assert "simulator ready: 0 servers" in result.stderr


def _request(method, url, body=None):
    import json
    import urllib.error
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


async def test_control_api_injects_faults_and_outages(make_kernel):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = SIM.replace("servers = [", f"control_port = {port}\nservers = [").replace('{ name = "rtu1", type = "recording", settings = {} }', "")
    kernel = make_kernel(("pandapower", dms_pandapower.plugin), ("simulator", dms_simulator.plugin), deployment=text)
    base = f"http://127.0.0.1:{port}"
    async with kernel:
        twin = dms_simulator.plugin.simulator_of(kernel).twin
        status, body = await asyncio.to_thread(_request, "POST", f"{base}/faults", {"element": "Line 3-4"})
        assert (status, body["tripped"]) == (201, "switch_6")
        assert twin.read("switch_6/Pos")[0] == 1.0
        status, body = await asyncio.to_thread(_request, "GET", f"{base}/state")
        assert status == 200 and list(body["faults"].values()) == ["switch_6"]
        status, body = await asyncio.to_thread(_request, "POST", f"{base}/faults", {"element": "Line 99-98"})
        assert status == 404 and "Line 99-98" in body["error"]
        status, body = await asyncio.to_thread(_request, "POST", f"{base}/outages", {"points": ["PV_3/P"]})
        assert status == 201 and twin.read("PV_3/P")[1] == INVALID.to_bits()
        status, body = await asyncio.to_thread(_request, "POST", f"{base}/outages", {"points": "PV_3/P"})
        assert status == 400
        status, body = await asyncio.to_thread(_request, "GET", f"{base}/points/switch_6/Pos")
        assert (status, body["value"]) == (200, 1.0)
