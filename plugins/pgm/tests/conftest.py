"""Small networks built in code with the NetworkModel API."""

from __future__ import annotations

import pytest

from dms_kernel.model import (
    ACLineSegment,
    BaseVoltage,
    Breaker,
    ConnectivityNode,
    EnergyConsumer,
    EnergySource,
    LinearShuntCompensator,
    LoadBreakSwitch,
    LoadResponseCharacteristic,
    NetworkModel,
    PerLengthSequenceImpedance,
    PhotoVoltaicUnit,
    PowerElectronicsConnection,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
)


def build_feeder(n_sections: int = 6, *, zip_load: bool = False, shunt: bool = True) -> NetworkModel:
    """110 kV source -> 110/20 kV transformer with OLTC -> breaker -> radial cable feeder with loads, a PV,
    a normally open tie switch back to the bus bar and (optionally) a capacitor bank."""
    model = NetworkModel("test_feeder")
    hv = model.add(BaseVoltage("bv110", name="110 kV", nominal_kv=110.0))
    mv = model.add(BaseVoltage("bv20", name="20 kV", nominal_kv=20.0))

    def node(mrid: str, base: BaseVoltage) -> ConnectivityNode:
        """A node; its nominal voltage comes from the equipment's BaseVoltage (``base`` documents it)."""
        return model.add(ConnectivityNode(mrid, name=mrid.upper()))

    grid = node("grid", hv)
    bus = node("bus", mv)
    head = node("head", mv)
    source = model.add(EnergySource("src", name="Grid", base_voltage=hv.mrid, nominal_kv=110.0, voltage_kv=112.2, voltage_angle_deg=0.0))
    model.connect(source, grid)
    transformer = model.add(PowerTransformer("tr1", name="TR1", vector_group="Dyn5"))
    model.connect(transformer, grid, bus)
    # 40 MVA, uk 12 %, ukr 0.4 %, i0 0.05 %, p0 20 kW, referred to the 110 kV end
    sn, u1 = 40.0, 110.0
    z = 0.12 * u1**2 / sn
    r = 0.004 * u1**2 / sn
    x = (z**2 - r**2) ** 0.5
    g = 0.020 / u1**2 * 1e6  # µS
    y = 0.0005 * sn / u1**2 * 1e6
    b = -((y**2 - g**2) ** 0.5)
    model.add(PowerTransformerEnd("tr1_e1", power_transformer="tr1", terminal="tr1_T1", end_number=1, rated_s_mva=sn,
                                  rated_u_kv=u1, r_ohm=r, x_ohm=x, g_us=g, b_us=b, connection="D", base_voltage=hv.mrid))
    model.add(PowerTransformerEnd("tr1_e2", power_transformer="tr1", terminal="tr1_T2", end_number=2, rated_s_mva=sn,
                                  rated_u_kv=20.0, connection="Y", grounded=True, phase_angle_clock=5, base_voltage=mv.mrid))
    model.add(RatioTapChanger("tr1_tap", transformer_end="tr1_e1", low_step=-9, high_step=9, neutral_step=0,
                              normal_step=0, step=-2, step_voltage_increment_percent=1.5))
    breaker = model.add(Breaker("brk", name="BRK", base_voltage=mv.mrid))
    model.connect(breaker, bus, head)
    model.add(PerLengthSequenceImpedance("cable", r_ohm_per_km=0.161, x_ohm_per_km=0.117, b_us_per_km=87.96,
                                                 r0_ohm_per_km=0.644, x0_ohm_per_km=0.468, b0_us_per_km=52.0))
    previous = head
    zip_response = None
    if zip_load:
        zip_response = model.add(LoadResponseCharacteristic("zip", p_constant_impedance=0.3, p_constant_current=0.2,
                                                            p_constant_power=0.5, q_constant_impedance=0.6,
                                                            q_constant_current=0.0, q_constant_power=0.4))
    for k in range(1, n_sections + 1):
        here = node(f"n{k}", mv)
        line = model.add(ACLineSegment(f"l{k}", name=f"L{k}", base_voltage=mv.mrid, length_km=1.5 + 0.25 * k,
                                       per_length_impedance="cable", max_i_ka=0.4))
        model.connect(line, previous, here)
        load = model.add(EnergyConsumer(f"load{k}", name=f"Load{k}", base_voltage=mv.mrid, p_mw=1.0 + 0.2 * k,
                                        q_mvar=0.3 + 0.05 * k,
                                        load_response=zip_response.mrid if (zip_response and k % 2) else None))
        model.connect(load, here)
        previous = here
    pv = model.add(PowerElectronicsConnection("pv1", name="PV1", base_voltage=mv.mrid, p_mw=2.0, q_mvar=-0.2, rated_s_mva=3.0))
    model.add(PhotoVoltaicUnit("pv1_unit", power_electronics_connection="pv1", max_p_mw=3.0))
    model.connect(pv, f"n{n_sections // 2}")
    tie = model.add(LoadBreakSwitch("tie", name="TIE", base_voltage=mv.mrid, normal_open=True, open=True))
    tie_node = node("tie_end", mv)
    tie_line = model.add(ACLineSegment("ltie", name="LTIE", base_voltage=mv.mrid, length_km=2.0, r_ohm=0.2, x_ohm=0.24,
                                       b_us=120.0, r0_ohm=0.8, x0_ohm=0.9, b0_us=70.0, max_i_ka=0.3))
    model.connect(tie_line, "bus", tie_node)
    model.connect(tie, tie_node, previous)
    if shunt:
        cap = model.add(LinearShuntCompensator("cap", name="CAP", base_voltage=mv.mrid, b_per_section_us=2.0,
                                               maximum_sections=2, sections=1, nominal_kv=20.0))
        model.connect(cap, "n2")
    return model


def build_three_winding() -> NetworkModel:
    """110/20/10 kV three-winding transformer (YNyn0d1) with magnetising admittance and an OLTC, two loads."""
    model = NetworkModel("three_winding")
    for mrid, kv in (("bv110", 110.0), ("bv20", 20.0), ("bv10", 10.0)):
        model.add(BaseVoltage(mrid, nominal_kv=kv))
    for node in ("hv", "mv", "lv"):
        model.add(ConnectivityNode(node, name=node.upper()))
    source = model.add(EnergySource("src", name="Grid", base_voltage="bv110", nominal_kv=110.0, voltage_kv=111.0))
    model.connect(source, "hv")
    transformer = model.add(PowerTransformer("t3", name="T3"))
    model.connect(transformer, "hv", "mv", "lv")
    ends = ((110.0, 40.0, 1.2, 36.0, "Y", 0), (20.0, 40.0, 0.03, 0.9, "Y", 0), (10.0, 20.0, 0.02, 0.5, "D", 1))
    for k, (kv, sn, r, x, connection, clock) in enumerate(ends, start=1):
        model.add(PowerTransformerEnd(
            f"t3_e{k}", power_transformer="t3", terminal=f"t3_T{k}", end_number=k, rated_s_mva=sn, rated_u_kv=kv,
            r_ohm=r, x_ohm=x, connection=connection, grounded=k < 3, phase_angle_clock=clock,
            b_us=-2.0 if k == 1 else 0.0, g_us=0.5 if k == 1 else 0.0, base_voltage=f"bv{int(kv)}",
        ))
    model.add(RatioTapChanger("t3_tap", transformer_end="t3_e1", low_step=-8, high_step=8, step=2,
                              step_voltage_increment_percent=1.25))
    for node, base, p in (("mv", "bv20", 12.0), ("lv", "bv10", 6.0)):
        load = model.add(EnergyConsumer(f"load_{node}", name=f"Load {node}", base_voltage=base, p_mw=p, q_mvar=p / 3))
        model.connect(load, node)
    return model


@pytest.fixture(name="build_three_winding")
def build_three_winding_fixture():
    return build_three_winding


@pytest.fixture
def feeder() -> NetworkModel:
    return build_feeder()


@pytest.fixture(name="build_feeder")
def build_feeder_fixture():
    """The :func:`build_feeder` function (test modules cannot import conftest by name)."""
    return build_feeder
