"""CIM written by other tools: OpenDSS (``export cim100`` through dss-python) and pypowsybl (CGMES)."""

from __future__ import annotations

import math

import pytest

from dms_cim import read_cim, write_cim
from dms_kernel.model import elements as el

dss = pytest.importorskip("dss", reason="dss-python is not installed")

CIRCUIT = """
clear
new circuit.cimtest basekv=12.47 pu=1.02 phases=3 bus1=src MVAsc3=200 MVAsc1=180
new linecode.lc3 nphases=3 r1=0.3 x1=0.6 r0=0.9 x0=1.8 c1=3.4 c0=1.6 units=km normamps=400
new linecode.lc2 nphases=2 rmatrix=[0.5 | 0.1 0.5] xmatrix=[0.9 | 0.3 0.9] cmatrix=[3.0 | -0.5 3.0] units=km
new linecode.lc1 nphases=1 rmatrix=[0.6] xmatrix=[1.0] cmatrix=[2.5] units=km
new line.l1 bus1=src bus2=b2 linecode=lc3 length=1.5 units=km
new transformer.t1 phases=3 windings=2 buses=[b2 b3] conns=[delta wye] kvs=[12.47 4.16] kvas=[1000 1000] %rs=[0.5 0.5] xhl=6
new line.l2 bus1=b3 bus2=b4 linecode=lc3 length=500 units=m
new line.l3 bus1=b4.2.3 bus2=b5.2.3 linecode=lc2 length=0.3 units=km
new line.l4 bus1=b5.3 bus2=b7.3 linecode=lc1 length=0.2 units=km
new line.sw1 bus1=b4 bus2=b6 switch=yes
new transformer.reg1 phases=1 bank=reg XHL=0.01 kVAs=[1666 1666] Buses=[b6.1 b8.1] kVs=[2.4 2.4] %LoadLoss=0.01
new regcontrol.creg1 transformer=reg1 winding=2 vreg=122 band=2 ptratio=20
new transformer.reg2 phases=1 bank=reg XHL=0.01 kVAs=[1666 1666] Buses=[b6.2 b8.2] kVs=[2.4 2.4] %LoadLoss=0.01
new regcontrol.creg2 transformer=reg2 winding=2 vreg=122 band=2 ptratio=20
new transformer.ct1 phases=1 windings=3 buses=[b8.1.0 s1.1.0 s1.0.2] kvs=[2.4 0.12 0.12] kvas=[50 50 50] %rs=[0.6 1.2 1.2] xhl=2.04 xht=2.04 xlt=1.36
new load.ld1 bus1=b4 phases=3 kv=4.16 kw=300 kvar=100 model=1
new load.ld2 bus1=b7.3 phases=1 kv=2.4 kw=50 kvar=20 model=1
new load.ld3 bus1=b6 phases=3 kv=4.16 kw=100 kvar=30 model=2
new load.ld4 bus1=b5.2.3 phases=1 kv=4.16 kw=40 kvar=10 conn=delta model=1
new load.house bus1=s1.1.2 phases=1 kv=0.24 kw=8 kvar=2 model=1
new capacitor.c1 bus1=b4 phases=3 kvar=200 kv=4.16
new capacitor.c2 bus1=b5.2 phases=1 kvar=50 kv=2.4
set voltagebases=[12.47 4.16 0.24]
calcv
solve
"""


@pytest.fixture(scope="module")
def opendss_export(tmp_path_factory):
    engine = dss.DSS.NewContext()  # own context: the global engine and contexts must not mix in one process
    text = engine.Text
    for line in CIRCUIT.strip().splitlines():
        text.Command = line
    circuit = engine.ActiveCircuit
    assert circuit.Solution.Converged
    path = tmp_path_factory.mktemp("opendss") / "cimtest.xml"
    text.Command = f"export cim100 file={path}"
    assert path.exists(), text.Result
    facts = {"lines": {}, "loads": {}, "transformers": {}, "capacitors": {}, "buses": set(circuit.AllBusNames)}
    for name in circuit.Lines.AllNames:
        circuit.Lines.Name = name
        units_factor = {3: 1.0, 4: 1e-3}.get(circuit.Lines.Units, 1.0)  # OpenDSS LineUnits: 3 = km, 4 = m
        facts["lines"][name] = {"length_km": circuit.Lines.Length * units_factor, "phases": circuit.Lines.Phases,
                                "switch": circuit.Lines.IsSwitch, "norm_amps": circuit.Lines.NormAmps}
    for name in circuit.Loads.AllNames:
        circuit.Loads.Name = name
        facts["loads"][name] = {"kw": circuit.Loads.kW, "kvar": circuit.Loads.kvar, "phases": circuit.Loads.Phases,
                                "delta": circuit.Loads.IsDelta}
    for name in circuit.Transformers.AllNames:
        circuit.Transformers.Name = name
        windings = []
        for winding in range(1, circuit.Transformers.NumWindings + 1):
            circuit.Transformers.Wdg = winding
            windings.append({"kva": circuit.Transformers.kVA, "kv": circuit.Transformers.kV, "r_pct": circuit.Transformers.R})
        facts["transformers"][name] = {"windings": windings, "xhl": circuit.Transformers.Xhl, "tap": circuit.Transformers.Tap}
    for name in circuit.Capacitors.AllNames:
        circuit.Capacitors.Name = name
        facts["capacitors"][name] = {"kvar": circuit.Capacitors.kvar, "kv": circuit.Capacitors.kV}
    return path, facts


def test_opendss_cim100_counts_and_values(opendss_export):
    path, facts = opendss_export
    model = read_cim(path)
    by_name = {(type(o).__name__, o.name.lower()): o for o in model}
    lines = {o.name.lower(): o for o in model.of_type(el.ACLineSegment)}
    switches = {o.name.lower(): o for o in model.of_type(el.Switch)}
    assert set(lines) | set(switches) == set(facts["lines"])
    for name, line in facts["lines"].items():
        if line["switch"]:
            assert not switches[name].open and not switches[name].normal_open
            continue
        assert lines[name].length_km == pytest.approx(line["length_km"], rel=1e-6)
        assert lines[name].max_i_ka == pytest.approx(line["norm_amps"] / 1000.0, rel=1e-6)
        assert len(lines[name].phases.replace("N", "")) == line["phases"]
    # per-length impedances: the sequence line code lc3 and the phase matrices
    lc3 = by_name[("PerLengthSequenceImpedance", "lc3")]
    assert (lc3.r_ohm_per_km, lc3.x_ohm_per_km, lc3.r0_ohm_per_km, lc3.x0_ohm_per_km) == pytest.approx((0.3, 0.6, 0.9, 1.8))
    lc2 = by_name[("PerLengthPhaseImpedance", "lc2")]
    z, b = lc2.matrices()
    assert z[1][0] == pytest.approx(complex(0.1, 0.3)) and z[1][1] == pytest.approx(complex(0.5, 0.9))
    assert b[0][0] == pytest.approx(2 * math.pi * 60 * 3.0e-3, rel=1e-6)  # 3 nF/km -> µS/km
    assert lines["l3"].phases == "BC" and lines["l4"].phases == "C"
    # loads: kW / kvar, phases, connection
    consumers = {o.name.lower(): o for o in model.of_type(el.EnergyConsumer)}
    assert set(consumers) == set(facts["loads"])
    for name, load in facts["loads"].items():
        assert consumers[name].p_mw * 1000 == pytest.approx(load["kw"], rel=1e-6)
        assert consumers[name].q_mvar * 1000 == pytest.approx(load["kvar"], rel=1e-6)
        assert consumers[name].connection == ("D" if load["delta"] else "Y")
    assert consumers["ld2"].phases == "C" and consumers["ld4"].phases == "BC" and consumers["ld1"].phases == "ABC"
    assert model.get(consumers["ld3"].load_response).p_constant_impedance == 1.0
    # transformers: ratings per winding, single-phase bank, centre tap
    transformers = {o.name.lower(): o for o in model.of_type(el.PowerTransformer)}
    assert set(transformers) == {"t1", "reg", "ct1"}
    t1 = model.ends(transformers["t1"])
    assert [e.rated_s_mva * 1000 for e in t1] == pytest.approx([w["kva"] for w in facts["transformers"]["t1"]["windings"]])
    assert [e.rated_u_kv for e in t1] == pytest.approx([w["kv"] for w in facts["transformers"]["t1"]["windings"]])
    assert [e.connection for e in t1] == ["D", "Y"]
    z_base = 12.47**2 / 1.0
    r_total = t1[0].r_ohm + t1[1].r_ohm * (12.47 / 4.16) ** 2
    x_total = t1[0].x_ohm + t1[1].x_ohm * (12.47 / 4.16) ** 2
    assert r_total / z_base * 100 == pytest.approx(1.0, rel=1e-5)
    assert x_total / z_base * 100 == pytest.approx(facts["transformers"]["t1"]["xhl"], rel=1e-5)
    bank = model.ends(transformers["reg"])
    assert len(model.of_type(el.TransformerTank)) == 3 and len(bank) == 4
    assert sorted(e.phases for e in bank) == ["AN", "AN", "BN", "BN"]
    assert transformers["reg"].phases == "AB" and len(transformers["reg"].terminals) == 4
    changers = {}
    for changer in model.of_type(el.RatioTapChanger):
        end = model.get(changer.transformer_end, el.PowerTransformerEnd)
        changers[model.get(end.transformer_tank).name.lower()] = changer
    assert set(changers) == {"reg1", "reg2"}
    for name, changer in changers.items():
        tap = facts["transformers"][name]["tap"]
        assert 1 + changer.step * changer.step_voltage_increment_percent / 100 == pytest.approx(tap, abs=1e-9)
        assert changer.target_u_kv == pytest.approx(122 * 20 / 1000)
    reg_end = next(e for e in bank if e.end_number == 1)
    z_reg = 2.4**2 / 1.666
    assert reg_end.x_ohm / z_reg * 100 == pytest.approx(0.01, rel=1e-4)
    ct = model.ends(transformers["ct1"])
    assert len(ct) == 3 and ct[0].phases == "AN"  # secondaries: s1N/Ns2 or AN/NB, as OpenDSS chooses
    assert [e.rated_u_kv for e in ct] == pytest.approx([2.4, 0.12, 0.12])
    # star reactances reproduce the three OpenDSS test reactances (percent on 50 kVA)
    pct = [e.x_ohm / (e.rated_u_kv**2 / 0.05) * 100 for e in ct]
    assert pct[0] + pct[1] == pytest.approx(2.04, rel=1e-5)
    assert pct[0] + pct[2] == pytest.approx(2.04, rel=1e-5)
    assert pct[1] + pct[2] == pytest.approx(1.36, rel=1e-5)
    # capacitors
    capacitors = {o.name.lower(): o for o in model.of_type(el.LinearShuntCompensator)}
    for name, cap in facts["capacitors"].items():
        c = capacitors[name]
        u_kv = c.nominal_kv
        assert c.b_per_section_us * 1e-6 * u_kv**2 * c.sections * 1000 == pytest.approx(cap["kvar"], rel=1e-6)
    assert capacitors["c2"].phases == "B"
    # every bus of OpenDSS is a ConnectivityNode
    assert {n.name.lower() for n in model.of_type(el.ConnectivityNode)} == facts["buses"]
    assert model.get(model.of_type(el.EnergySource)[0].mrid).voltage_kv == pytest.approx(12.47 * 1.02)


def test_opendss_model_round_trips(opendss_export, tmp_path):
    from cim_models import assert_same_model

    model = read_cim(opendss_export[0])
    for profile, name in (("cim100", "rt.xml"), ("cgmes", "rt.zip")):
        copy = read_cim(write_cim(model, tmp_path / name, profile=profile))
        assert_same_model(model, copy)


def test_pypowsybl_cgmes_export(tmp_path):
    pn = pytest.importorskip("pypowsybl.network", reason="pypowsybl is not installed")
    network = pn.create_ieee14()
    network.save(str(tmp_path / "ieee14.zip"), format="CGMES")
    model = read_cim(tmp_path / "ieee14.zip")
    buses, lines = network.get_buses(), network.get_lines()
    loads, generators = network.get_loads(), network.get_generators()
    transformers = network.get_2_windings_transformers()
    assert len(model.of_type(el.TopologicalNode)) == len(buses)
    assert len(model.of_type(el.ACLineSegment)) == len(lines)
    assert len(model.of_type(el.EnergyConsumer)) == len(loads)
    assert len(model.of_type(el.SynchronousMachine)) == len(generators)
    assert len(model.of_type(el.PowerTransformer)) == len(transformers)
    assert "GeneratingUnit" in model.unknown_classes
    segments = {o.name: o for o in model.of_type(el.ACLineSegment)}
    for line_id, row in lines.iterrows():
        segment = segments[line_id]
        assert segment.r_ohm == pytest.approx(row.r) and segment.x_ohm == pytest.approx(row.x)
        assert segment.b_us * 1e-6 == pytest.approx(row.b1 + row.b2)
        # one bus per voltage level in this network: the TopologicalNode's container is the level
        assert [model.get(n).container for n in model.nodes_of(segment)] == [
            "_" + row.voltage_level1_id, "_" + row.voltage_level2_id]
    consumers = {o.name: o for o in model.of_type(el.EnergyConsumer)}
    for load_id, row in loads.iterrows():
        assert (consumers[load_id].p_mw, consumers[load_id].q_mvar) == pytest.approx((row.p0, row.q0))
    machines = {o.name: o for o in model.of_type(el.SynchronousMachine)}
    for gen_id, row in generators.iterrows():
        assert machines[gen_id].p_mw == pytest.approx(row.target_p)  # generation positive in the model
    ends = {o.name: model.ends(o) for o in model.of_type(el.PowerTransformer)}
    for tr_id, row in transformers.iterrows():
        end1, end2 = ends[tr_id]
        assert (end1.rated_u_kv, end2.rated_u_kv) == pytest.approx((row.rated_u1, row.rated_u2))
        x_total = end1.x_ohm * (row.rated_u2 / row.rated_u1) ** 2 + end2.x_ohm
        assert x_total == pytest.approx(row.x, rel=1e-6)
    # SV profile: solved voltages per TopologicalNode
    nodes = {model.get(mrid).container: value for mrid, value in model.state_voltages.items()}
    assert len(nodes) == len(buses)
    for _, row in buses.iterrows():
        assert nodes["_" + row.voltage_level_id] == pytest.approx((row.v_mag, row.v_angle))
