"""The PMU simulator on the CIGRE MV grid twin, through the field simulator's server registry."""

from __future__ import annotations

import math

import pytest

import dms_pmu.plugin
import plugins_for_tests as p
from dms_pmu.testing import free_port, wait_until


async def test_simulated_pmus_serve_power_flow_phasors(make_kernel):
    pytest.importorskip("dms_simulator")
    import dms_pandapower.plugin
    import dms_simulator.plugin

    ports = [free_port(), free_port()]
    deployment = f"""
[deployment]
name = "pmu-sim"
model = "cigre_mv"
[settings.simulator]
enabled = true
speed = 60.0
seed = 1
servers = [
  {{ name = "pmu-hv", type = "c37118", settings = {{ port = {ports[0]}, id_code = 1, rate = 25, phasors = [{{ name = "V1", bus = "Bus 0" }}] }} }},
  {{ name = "pmu-12", type = "c37118", settings = {{ port = {ports[1]}, id_code = 2, rate = 25, phasors = [{{ name = "V1", bus = "Bus 12" }}] }} }},
]
[[sources]]
name = "pdc"
type = "c37118"
settings = {{ pmus = [
  {{ name = "hv", port = {ports[0]}, id_code = 1, phasors = ["V1"], magnitude_scale = 0.001, magnitude_unit = "kV" }},
  {{ name = "n12", port = {ports[1]}, id_code = 2, phasors = ["V1"], magnitude_scale = 0.001, magnitude_unit = "kV" }},
] }}
[[sinks]]
name = "log"
type = "list"
"""
    kernel = make_kernel(("pmu", dms_pmu.plugin), ("simulator", dms_simulator.plugin), ("pandapower", dms_pandapower.plugin), p.test_types,
                         deployment=deployment)
    async with kernel:
        read = kernel.points.read
        await wait_until(lambda: read("hv/V1/mag").quality.is_good and read("n12/V1/mag").quality.is_good, timeout=20, what="both PMUs")
        from dms_simulator.plugin import simulator_of

        net = simulator_of(kernel).twin.network.net
        bus12 = int(net.bus.index[net.bus.name == "Bus 12"][0])
        expected_kv = float(net.res_bus.at[bus12, "vm_pu"] * net.bus.at[bus12, "vn_kv"]) / math.sqrt(3)
        assert read("n12/V1/mag").value == pytest.approx(expected_kv, rel=0.02)
        # the feeder end lags the 110 kV slack (transformer phase shift and load)
        assert read("hv/V1/ang_deg").value == pytest.approx(0.0, abs=1e-3)
        assert read("n12/V1/ang_deg").value != pytest.approx(0.0, abs=1e-3)
        assert read("n12/V1/ang_deg").value == pytest.approx(float(net.res_bus.at[bus12, "va_degree"]), abs=0.05)
        assert read("hv/freq_hz").value == pytest.approx(50.0, abs=0.02)
