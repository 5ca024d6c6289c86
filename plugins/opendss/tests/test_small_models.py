"""Small feeders built in code: single- and two-phase laterals, a centre-tapped service
transformer, and run-time switching without recompilation."""

from __future__ import annotations

import math

import dms_opendss.plugin
from dms_kernel.model import (
    ACLineSegment,
    BaseVoltage,
    ConnectivityNode,
    EnergyConsumer,
    EnergyConsumerPhase,
    EnergySource,
    LoadBreakSwitch,
    NetworkModel,
    PerLengthSequenceImpedance,
    PowerTransformer,
    PowerTransformerEnd,
    TransformerTank,
)
from dms_kernel.model.results import rows
from dms_opendss.convert import to_dss
from dms_opendss.solver import DssSolver


def feeder() -> NetworkModel:
    """12.47 kV: source - trunk (ABC) - switch - bus 2; lateral B from bus 1, lateral AC from bus 1."""
    m = NetworkModel("laterals")
    bv = m.add(BaseVoltage("bv", nominal_kv=12.47))
    n = {k: m.add(ConnectivityNode(f"cn{k}", name=f"N{k}", container=None)) for k in ("0", "1", "2", "b", "ac")}
    src = m.add(EnergySource("src", name="grid", base_voltage=bv.mrid, nominal_kv=12.47, voltage_kv=12.47, r_ohm=0.1, x_ohm=0.5))
    m.connect(src, n["0"])
    z = m.add(PerLengthSequenceImpedance("z", r_ohm_per_km=0.3, x_ohm_per_km=0.4, b_us_per_km=3.0, r0_ohm_per_km=0.6, x0_ohm_per_km=1.2))
    for name, a, b, phases, km in (("trunk", "0", "1", "ABC", 2.0), ("latb", "1", "b", "B", 1.5), ("latac", "1", "ac", "AC", 1.0)):
        line = m.add(ACLineSegment(name, name=name, phases=phases, length_km=km, per_length_impedance=z.mrid, base_voltage=bv.mrid))
        m.connect(line, n[a], n[b])
    sw = m.add(LoadBreakSwitch("sw", name="SW1", base_voltage=bv.mrid))
    m.connect(sw, n["1"], n["2"])
    for name, node, phases, p in (("l2", "2", "ABC", 0.9), ("lb", "b", "B", 0.3), ("lac", "ac", "AC", 0.4)):
        load = m.add(EnergyConsumer(name, name=name, phases=phases, p_mw=p, q_mvar=p / 3, base_voltage=bv.mrid))
        m.connect(load, n[node])
        for ph in phases:
            m.add(EnergyConsumerPhase(f"{name}_{ph}", consumer=name, phase=ph, p_mw=p / len(phases), q_mvar=p / 3 / len(phases)))
    m.validate()
    return m


def phases_by_node(result) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {}
    for row in rows(result.data["nodes"]):
        out.setdefault(row["name"], {})[row["phase"]] = row
    return out


def test_single_and_two_phase_laterals_report_only_their_phases():
    model = feeder()
    script = to_dss(model)
    assert "bus1=n1.2 bus2=nb.2 phases=1" in script
    assert "bus1=n1.1.3 bus2=nac.1.3 phases=2" in script
    result = DssSolver(model).solve(model)
    assert result.converged, result.message
    nodes = phases_by_node(result)
    assert set(nodes["n1"]) == {1, 2, 3}
    assert set(nodes["nb"]) == {2}
    assert set(nodes["nac"]) == {1, 3}
    # the loaded single-phase lateral drops the voltage of its phase below the trunk's
    assert nodes["nb"][2]["vm_pu"] < nodes["n1"][2]["vm_pu"] < 1.0
    assert nodes["nac"][1]["vm_pu"] < nodes["n1"][1]["vm_pu"]
    branches = [r for r in rows(result.data["branches"]) if r["element"] == "latb"]
    assert [b["phase"] for b in branches] == [2]
    # the lateral carries its 0.3 MW load plus its losses
    assert 0.3 < branches[0]["p_from_mw"] < 0.32
    assert result.data["losses_mw"] > 0


async def test_opening_a_switch_between_runs_changes_results_without_recompiling():
    model = feeder()
    solver = dms_opendss.plugin.solver_for(model)
    first = await dms_opendss.plugin.dms_run_study("power_flow", model, None, {"solver": "opendss"})
    assert first.converged and solver.compile_count == 1
    before = phases_by_node(first)
    assert all(not math.isnan(r["vm_pu"]) for r in before["n2"].values())

    model.get("sw", LoadBreakSwitch).open = True
    opened = await dms_opendss.plugin.dms_run_study("power_flow", model, None, {"solver": "opendss"})
    assert opened.converged
    after = phases_by_node(opened)
    assert all(math.isnan(r["vm_pu"]) for r in after["n2"].values())  # de-energised
    assert after["n1"][1]["vm_pu"] > before["n1"][1]["vm_pu"]  # less load upstream
    assert opened.data["losses_mw"] < first.data["losses_mw"]

    model.get("sw", LoadBreakSwitch).open = False
    model.get("lb_B", EnergyConsumerPhase).p_mw = 0.6  # a load change is applied too
    closed = await dms_opendss.plugin.dms_run_study("power_flow", model, None, {"solver": "opendss"})
    again = phases_by_node(closed)
    assert not math.isnan(again["n2"][1]["vm_pu"])
    assert again["nb"][2]["vm_pu"] < before["nb"][2]["vm_pu"]
    assert solver.compile_count == 1 and closed.data["compile_count"] == 1
    assert await dms_opendss.plugin.dms_run_study("power_flow", model, None, {"solver": "pandapower"}) is None


def test_centre_tapped_service_transformer():
    """7.2 kV phase A to a 120/240 V split-phase secondary with loads on both legs and across."""
    m = NetworkModel("centre-tap")
    bv = m.add(BaseVoltage("bv", nominal_kv=12.47))
    lv = m.add(BaseVoltage("lv", nominal_kv=0.24))
    mv, sec = m.add(ConnectivityNode("mv", name="MV")), m.add(ConnectivityNode("sec", name="SEC"))
    src = m.add(EnergySource("src", base_voltage=bv.mrid, nominal_kv=12.47, voltage_kv=12.47, r_ohm=0.01, x_ohm=0.1))
    m.connect(src, mv)
    pt = m.add(PowerTransformer("xf", name="XF", phases="A"))
    tank = m.add(TransformerTank("xf_t", power_transformer="xf"))
    t1, t2, t3 = m.connect(pt, mv, sec, sec)
    t1.phases, t2.phases, t3.phases = "AN", "s1N", "s2N"
    for number, terminal, kv, phases, r in ((1, t1, 7.2, "AN", 0.6), (2, t2, 0.12, "s1N", 0.0003), (3, t3, 0.12, "s2N", 0.0003)):
        m.add(PowerTransformerEnd(f"xf_e{number}", power_transformer="xf", transformer_tank=tank.mrid, terminal=terminal.mrid,
                                  end_number=number, rated_s_mva=0.05, rated_u_kv=kv, r_ohm=r, x_ohm=r * 2, connection="I",
                                  phases=phases))
    for name, phases, p in (("leg1", "s1", 0.01), ("leg2", "s2", 0.006), ("range", "s1s2", 0.008)):
        load = m.add(EnergyConsumer(name, phases=phases, p_mw=p, q_mvar=p / 4, base_voltage=lv.mrid))
        m.connect(load, sec, phases=phases)
    m.validate()
    script = to_dss(m)
    assert "buses=[mv.1.0, sec.1.0, sec.0.2]" in script
    result = DssSolver(m).solve(m)
    assert result.converged, result.message
    nodes = phases_by_node(result)
    assert set(nodes["sec"]) == {1, 2}
    # both legs near 120 V, unequal because the leg loads differ
    u1, u2 = nodes["sec"][1]["u_kv"], nodes["sec"][2]["u_kv"]
    assert 0.11 < u2 < 0.121 and 0.11 < u1 < 0.121 and u1 != u2
    assert 0.9 < nodes["sec"][1]["vm_pu"] < 1.01
