"""Point map from CIM measurements: RemoteUnit/RemoteSource addresses in a CIM file → the iec104 source."""

from __future__ import annotations

import json
import time

import pytest

import dms_iec104.plugin
import plugins_for_tests as p
from dms_hookspecs import PointKind, PointSpec
from dms_hookspecs.pointmap import write_point_map
from dms_iec104.server import Iec104Server
from dms_iec104.testing import free_port, wait_until
from dms_simulator import StaticTwin

dms_cim = pytest.importorskip("dms_cim")
import dms_cim.plugin  # noqa: E402


def _model():
    from dms_kernel.model import NetworkModel
    from dms_kernel.model import elements as el

    m = NetworkModel("rtu-model")
    m.add(el.Analog("m_u", name="S1 U", point="S1/U", measurement_type="PhaseVoltage", unit="V", unit_multiplier="k"))
    m.add(el.Analog("m_p", name="S1 P", point="S1/P", measurement_type="ThreePhaseActivePower", unit="W", unit_multiplier="M"))
    m.add(el.Discrete("m_cb", name="S1 CB1", point="S1/CB1", measurement_type="SwitchPosition"))
    m.add(el.Analog("m_other", name="elsewhere", point="S2/U", measurement_type="PhaseVoltage"))
    m.add(el.RemoteUnit("ru_s1", name="RTU_S1"))
    m.add(el.RemoteUnit("ru_s2", name="RTU_S2"))
    for mrid, measurement, address, unit, cls in (
        ("rs_u", "m_u", "1:1001", "ru_s1", el.AnalogValue), ("rs_p", "m_p", "1:1002", "ru_s1", el.AnalogValue),
        ("rs_cb", "m_cb", "1:2001", "ru_s1", el.DiscreteValue), ("rs_o", "m_other", "1:1001", "ru_s2", el.AnalogValue),
    ):
        m.add(cls(f"v_{mrid}", measurement=measurement))
        m.add(el.RemoteSource(mrid, name=address, remote_unit=unit, measurement_value=f"v_{mrid}"))
    return m


def _deployment(port: int, **settings) -> str:
    options = {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "connect_timeout_s": 2.0, **settings}
    inline = ", ".join(f"{key} = {json.dumps(value)}" for key, value in options.items())
    return f"""
[deployment]
name = "cim-rtu"
model = "grid.xml"
[[sources]]
name = "rtu_s1"
type = "iec104"
settings = {{ {inline} }}
[[sinks]]
name = "log"
type = "list"
"""


@pytest.mark.parametrize("settings", [{"point_map": "cim", "connection": "RTU_S1"}, {"connection": "RTU_S1"}])
async def test_iec104_source_reads_its_point_map_from_cim(tmp_path, make_kernel, settings):
    from dms_kernel.model.addresses import point_map_from_model

    model = _model()
    dms_cim.write_cim(model, tmp_path / "grid.xml")
    # the simulated RTU serves the same addresses (its CSV written from the model)
    write_point_map(tmp_path / "rtu.csv", point_map_from_model(model, "RTU_S1"))
    twin = StaticTwin([PointSpec("S1/U"), PointSpec("S1/P"), PointSpec("S1/CB1", PointKind.DOUBLE, controllable=True)],
                      {"S1/U": 20.5, "S1/P": 1.75, "S1/CB1": 2})
    port = free_port()
    server = Iec104Server("sim", {"port": port, "points_file": str(tmp_path / "rtu.csv")}, twin)
    await server.start()
    kernel = make_kernel(("iec104", dms_iec104.plugin), ("cim", dms_cim.plugin), p.test_types,
                         deployment=_deployment(port, **settings))
    try:
        async with kernel:
            assert sorted(kernel.points.names) == ["S1/CB1", "S1/P", "S1/U"]  # only RTU_S1's RemoteSources
            await wait_until(lambda: kernel.points.read("S1/U").value == pytest.approx(20.5)
                             and kernel.points.read("S1/CB1").value == 2, what="GI values under the CIM point names")
            assert kernel.points.read("S1/P").value == pytest.approx(1.75)
            assert kernel.points.read("S1/U").quality.is_good
            twin.set("S1/P", -0.5, 0, time.time())
            await wait_until(lambda: kernel.points.read("S1/P").value == pytest.approx(-0.5), what="spontaneous update")
    finally:
        await server.stop()


async def test_cim_point_map_errors_name_the_connection(tmp_path, make_kernel):
    from dms_kernel import ConfigError, PluginError

    dms_cim.write_cim(_model(), tmp_path / "grid.xml")
    kernel = make_kernel(("iec104", dms_iec104.plugin), ("cim", dms_cim.plugin), p.test_types,
                         deployment=_deployment(free_port(), point_map="cim", connection="RTU_X"))
    with pytest.raises((ConfigError, PluginError), match="RTU_X"):
        await kernel.prepare()
