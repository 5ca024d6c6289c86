"""Shared fixtures: a model built in code holding every element class, and a model comparison."""

from __future__ import annotations

import math

import attrs
from dms_kernel.model import NetworkModel
from dms_kernel.model import elements as el


def _terminal(m: NetworkModel, equipment: el.ConductingEquipment, mrid: str, node: str, number: int, phases: str) -> el.Terminal:
    terminal = m.add(el.Terminal(mrid, name=mrid, conducting_equipment=equipment.mrid, connectivity_node=node,
                                 sequence_number=number, phases=phases))
    equipment.terminals.append(mrid)
    return terminal


def build_full_model() -> NetworkModel:
    """A small feeder using every class of :mod:`dms_kernel.model.elements`.

    Tank transformers are in the canonical form the CIM100 asset description can carry:
    2-winding leakage reactance on end 1 (end 2 x = 0), magnetising admittance on the ends it
    belongs to, no zero-sequence values (TransformerEndInfo has none).
    """
    m = NetworkModel("full")
    m.add(el.GeographicalRegion("region", name="Region"))
    m.add(el.Substation("sub", name="Sub 1", region="region"))
    m.add(el.BaseVoltage("bv20", name="20 kV", nominal_kv=20.0))
    m.add(el.BaseVoltage("bv04", name="0.4 kV", nominal_kv=0.4))
    m.add(el.VoltageLevel("vl20", name="VL 20", substation="sub", base_voltage="bv20"))
    m.add(el.VoltageLevel("vl04", name="VL 0.4", substation="sub", base_voltage="bv04"))
    m.add(el.Location("loc1", name="loc", points=[(8.4037, 49.0069), (8.41, 49.01)], coordinate_system="EPSG:4326"))
    m.add(el.Location("loc2", name="loc2", points=[(1.5, -2.25)]))
    m.add(el.TopologicalNode("tn1", name="TN1", container="vl20", base_voltage="bv20"))
    nodes = {}
    for name, bv in [("src", "bv20"), ("n1", "bv20"), ("n2", "bv20"), ("n3", "bv20"), ("lv1", "bv04"), ("lv2", "bv04"),
                     ("s1", "bv04"), ("n4", "bv20")]:
        nodes[name] = m.add(el.ConnectivityNode(f"cn_{name}", name=name.upper(), container="vl20" if bv == "bv20" else "vl04"))
    nodes["src"].topological_node = "tn1"
    m.add(el.Feeder("feeder", name="F1", substation="sub"))
    src = m.add(el.EnergySource("es", name="grid", nominal_kv=20.0, voltage_kv=20.4, voltage_angle_deg=-1.5,
                                r_ohm=0.1, x_ohm=1.2, r0_ohm=0.3, x0_ohm=3.6, container="feeder", base_voltage="bv20",
                                location="loc1"))
    m.connect(src, nodes["src"])
    m.get("feeder").normal_head_terminal = src.terminals[0]
    brk = m.add(el.Breaker("brk", name="CB1", normal_open=False, open=False, rated_current_a=630.0, container="vl20"))
    m.connect(brk, nodes["src"], nodes["n1"])
    m.add(el.PerLengthSequenceImpedance("plsi", name="NA2XS2Y", r_ohm_per_km=0.161, x_ohm_per_km=0.117, b_us_per_km=84.8,
                                        r0_ohm_per_km=0.644, x0_ohm_per_km=0.468, b0_us_per_km=50.1))
    line1 = m.add(el.ACLineSegment("l1", name="L1", length_km=2.5, per_length_impedance="plsi", max_i_ka=0.362,
                                   container="feeder", base_voltage="bv20", location="loc2"))
    m.connect(line1, nodes["n1"], nodes["n2"])
    line2 = m.add(el.ACLineSegment("l2", name="L2", length_km=0.8, r_ohm=0.5, x_ohm=0.4, b_us=12.0, r0_ohm=1.5,
                                   x0_ohm=1.2, b0_us=6.0, container="feeder"))
    m.connect(line2, nodes["n2"], nodes["n3"])
    z = m.add(el.PerLengthPhaseImpedance("plpi", name="2ph", conductor_count=2, entries=[
        el.PhaseImpedanceEntry(1, 1, 0.4, 0.8, 3.1), el.PhaseImpedanceEntry(2, 1, 0.1, 0.3, -0.9),
        el.PhaseImpedanceEntry(2, 2, 0.41, 0.79, 3.0)]))
    line3 = m.add(el.ACLineSegment("l3", name="L3", length_km=0.3, per_length_impedance=z.mrid, phases="BC"))
    m.connect(line3, nodes["n3"], nodes["n4"])
    m.add(el.ACLineSegmentPhase("l3b", name="L3_B", line="l3", phase="B", sequence_number=1))
    m.add(el.ACLineSegmentPhase("l3c", name="L3_C", line="l3", phase="C", sequence_number=2))
    for cls, mrid, nc in [(el.Recloser, "rec", True), (el.LoadBreakSwitch, "lbs", False), (el.Disconnector, "dis", False),
                          (el.Fuse, "fuse", False), (el.Sectionaliser, "sec", False), (el.Jumper, "jmp", False),
                          (el.Switch, "sw", False)]:
        switch = m.add(cls(mrid, name=mrid.upper(), normal_open=nc, open=not nc, retained=nc))
        m.connect(switch, nodes["n2"], nodes["n3"])
    earth = m.add(el.GroundDisconnector("es1", name="ES1", normal_open=True, open=False))  # closed: n4 earthed
    m.connect(earth, nodes["n4"])
    # 2-winding three-phase transformer with a tap changer
    tr = m.add(el.PowerTransformer("tr1", name="T1", vector_group="Dyn5", container="sub"))
    t1, t2 = m.connect(tr, nodes["n1"], nodes["lv1"])
    m.add(el.PowerTransformerEnd("tr1_e1", name="T1 HV", power_transformer="tr1", terminal=t1.mrid, end_number=1,
                                 rated_s_mva=0.63, rated_u_kv=20.0, r_ohm=3.2, x_ohm=25.0, g_us=1.1, b_us=-5.0,
                                 r0_ohm=3.2, x0_ohm=24.0, connection="D", base_voltage="bv20"))
    m.add(el.PowerTransformerEnd("tr1_e2", name="T1 LV", power_transformer="tr1", terminal=t2.mrid, end_number=2,
                                 rated_s_mva=0.63, rated_u_kv=0.41, r_ohm=0.001, x_ohm=0.002, connection="Yn",
                                 phase_angle_clock=5, grounded=True, base_voltage="bv04"))
    m.add(el.RatioTapChanger("tc1", name="T1 tap", transformer_end="tr1_e1", low_step=-2, high_step=2, neutral_step=0,
                             normal_step=0, step=1.0, step_voltage_increment_percent=2.5, neutral_u_kv=20.0,
                             control_enabled=True, target_u_kv=0.4, target_deadband_kv=0.01))
    # single-phase regulator bank (two tanks, as OpenDSS writes them)
    reg = m.add(el.PowerTransformer("reg", name="REG", phases="AB"))
    reg_terminals = {(phase, number): _terminal(m, reg, f"reg{phase}_t{number}", node, number, phase + "N")
                     for number, node in ((1, "cn_n3"), (2, "cn_n4")) for phase in "AB"}
    for phase in "AB":
        tank = m.add(el.TransformerTank(f"tank{phase}", name=f"reg{phase}", power_transformer="reg"))
        ta, tb = reg_terminals[(phase, 1)], reg_terminals[(phase, 2)]
        for number, terminal in ((1, ta), (2, tb)):
            m.add(el.PowerTransformerEnd(f"reg{phase}_e{number}", name=f"reg{phase}_{number}", transformer_tank=tank.mrid,
                                         power_transformer="reg", terminal=terminal.mrid, end_number=number,
                                         rated_s_mva=1.666, rated_u_kv=11.547, r_ohm=0.0004 * number,
                                         x_ohm=0.0028 if number == 1 else 0.0, connection="I", phases=phase + "N",
                                         grounded=True, g_us=0.5 if number == 1 else 0.0, b_us=2.0 if number == 1 else 0.0))
        m.add(el.RatioTapChanger(f"regtc{phase}", name=f"regtc{phase}", transformer_end=f"reg{phase}_e2", low_step=-16,
                                 high_step=16, step=7.0, step_voltage_increment_percent=0.625, neutral_u_kv=11.547))
    # centre-tapped single-phase service transformer (three-winding tank)
    ct = m.add(el.PowerTransformer("ct", name="CT", phases="A"))
    ct_tank = m.add(el.TransformerTank("ct_tank", name="ct", power_transformer="ct"))
    for number, (node, phases, u, r, x) in enumerate(
        [("n2", "AN", 11.547, 0.7, 1.6), ("s1", "s1N", 0.12, 0.0035, 0.002), ("s1", "Ns2", 0.12, 0.0035, 0.0015)], start=1
    ):
        terminal = _terminal(m, ct, f"ct_t{number}", f"cn_{node}", number, phases)
        m.add(el.PowerTransformerEnd(f"ct_e{number}", name=f"ct_{number}", transformer_tank=ct_tank.mrid,
                                     power_transformer="ct", terminal=terminal.mrid, end_number=number, rated_s_mva=0.05,
                                     rated_u_kv=u, r_ohm=r, x_ohm=x, connection="I", phases=phases))
    lrc = m.add(el.LoadResponseCharacteristic("zip", name="ZIP", p_constant_impedance=0.25, p_constant_current=0.25,
                                              p_constant_power=0.5, q_constant_impedance=0.5, q_constant_power=0.5,
                                              q_constant_current=0.0))
    m.add(el.LoadResponseCharacteristic("exp", name="EXP", exponent_model=True, p_voltage_exponent=1.3,
                                        q_voltage_exponent=2.1, p_constant_power=0.0, q_constant_power=0.0))
    load = m.add(el.EnergyConsumer("ld1", name="Load 1", p_mw=0.3, q_mvar=0.1, load_response=lrc.mrid, customer_count=12,
                                   container="feeder"))
    m.connect(load, nodes["lv1"])
    load2 = m.add(el.EnergyConsumer("ld2", name="Load 2", p_mw=0.05, q_mvar=0.02, phases="B", load_response="exp"))
    m.connect(load2, nodes["n4"])
    m.add(el.EnergyConsumerPhase("ld2b", name="Load 2 B", consumer="ld2", phase="B", p_mw=0.05, q_mvar=0.02))
    load3 = m.add(el.EnergyConsumer("ld3", name="Load 3", p_mw=0.02, q_mvar=0.01, connection="D", phases="AB"))
    m.connect(load3, nodes["n3"])
    load4 = m.add(el.EnergyConsumer("ld4", name="House", p_mw=0.004, q_mvar=0.001, phases="s12"))
    m.connect(load4, nodes["s1"])
    cap = m.add(el.LinearShuntCompensator("cap", name="C1", b_per_section_us=250.0, g_per_section_us=0.1, maximum_sections=3,
                                          sections=2.0, normal_sections=1, nominal_kv=20.0, connection="D"))
    m.connect(cap, nodes["n2"])
    cap2 = m.add(el.LinearShuntCompensator("cap2", name="C2", b_per_section_us=100.0, nominal_kv=11.547, phases="C"))
    m.connect(cap2, nodes["n3"])
    m.add(el.LinearShuntCompensatorPhase("cap2c", name="C2 C", shunt_compensator="cap2", phase="C",
                                         b_per_section_us=100.0, sections=1.0))
    pec = m.add(el.PowerElectronicsConnection("pv_inv", name="PV inv", p_mw=0.08, q_mvar=-0.01, rated_s_mva=0.1,
                                              rated_u_kv=0.4, max_q_mvar=0.04, min_q_mvar=-0.04))
    m.connect(pec, nodes["lv2"])
    m.add(el.PhotoVoltaicUnit("pv", name="PV", power_electronics_connection="pv_inv", max_p_mw=0.1, min_p_mw=0.0))
    bat_inv = m.add(el.PowerElectronicsConnection("bat_inv", name="BAT inv", p_mw=-0.02, rated_s_mva=0.05, rated_u_kv=0.4))
    m.connect(bat_inv, nodes["lv2"])
    m.add(el.BatteryUnit("bat", name="BAT", power_electronics_connection="bat_inv", max_p_mw=0.05, min_p_mw=-0.05,
                         rated_e_mwh=0.2, stored_e_mwh=0.1))
    lv_line = m.add(el.ACLineSegment("l4", name="L4", length_km=0.1, r_ohm=0.02, x_ohm=0.008, base_voltage="bv04"))
    m.connect(lv_line, nodes["lv1"], nodes["lv2"])
    gen = m.add(el.SynchronousMachine("gen", name="G1", p_mw=1.5, q_mvar=0.3, rated_s_mva=2.0, rated_u_kv=20.0,
                                      in_service=False))
    m.connect(gen, nodes["n2"])
    m.add(el.Analog("m_p", name="P feeder", terminal=src.terminals[0], power_system_resource="es",
                    measurement_type="ThreePhaseActivePower", unit="W", unit_multiplier="M", point="F1.P",
                    normal_value=1.0, min_value=-5.0, max_value=5.0))
    m.add(el.Analog("m_u", name="U A", terminal=t2.mrid, measurement_type="PhaseVoltage", phases="AN", unit="V"))
    m.add(el.Discrete("m_sw", name="CB1 pos", terminal=brk.terminals[0], power_system_resource="brk",
                      measurement_type="SwitchPosition", normal_value=1))
    m.add(el.Discrete("m_tap", name="T1 tap", power_system_resource="tr1", measurement_type="TapPosition"))
    # SCADA addressing: RTU "RTU1" (IEC 104 addresses) serves the feeder P and the breaker position
    m.add(el.RemoteUnit("ru1", name="RTU1", remote_unit_type="RTU"))
    m.add(el.AnalogValue("av_p", name="P feeder value", measurement="m_p"))
    m.add(el.DiscreteValue("dv_sw", measurement="m_sw"))
    m.add(el.RemoteSource("rs_p", name="1:1001", remote_unit="ru1", measurement_value="av_p"))
    m.add(el.RemoteSource("rs_sw", name="1:2001", remote_unit="ru1", measurement_value="dv_sw"))
    m.state_voltages["tn1"] = (20.3, -0.25)
    m.validate()
    return m


def _same(a: object, b: object, tol: float) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return math.isclose(float(a), float(b), rel_tol=tol, abs_tol=tol * 1e-3)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y, tol) for x, y in zip(a, b))
    if attrs.has(type(a)) and type(a) is type(b):
        return all(_same(getattr(a, f.name), getattr(b, f.name), tol) for f in attrs.fields(type(a)))
    return a == b


def assert_same_model(original: NetworkModel, copy: NetworkModel, tol: float = 1e-9) -> None:
    """Same objects (mRID and class) with the same attribute values (floats within ``tol``)."""
    assert sorted(copy.objects) == sorted(original.objects), (
        f"missing {sorted(set(original.objects) - set(copy.objects))}, extra {sorted(set(copy.objects) - set(original.objects))}"
    )
    differences = []
    for mrid, obj in original.objects.items():
        other = copy.objects[mrid]
        if type(other) is not type(obj):
            differences.append(f"{mrid}: {type(obj).__name__} became {type(other).__name__}")
            continue
        for field in attrs.fields(type(obj)):
            if not _same(getattr(obj, field.name), getattr(other, field.name), tol):
                differences.append(f"{obj!r}.{field.name}: {getattr(obj, field.name)!r} != {getattr(other, field.name)!r}")
    assert not differences, "\n".join(differences)
    assert set(copy.state_voltages) == set(original.state_voltages)
    for node, value in original.state_voltages.items():
        assert _same(value, copy.state_voltages[node], tol)
