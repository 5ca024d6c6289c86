"""The pandapower solver plugin through the kernel, against direct pandapower calls."""

from __future__ import annotations

import math

import dms_pandapower.plugin
import numpy as np
import pandapower as pp
import pytest
from dms_pandapower.convert import common_3ph_model, from_pandapower, to_pandapower
from dms_pandapower.examples import load_example, pandapower_example
from dms_pandapower.solver import TRAFO_MODEL, PandapowerSolver

from dms_kernel.model import EnergyConsumer, EnergySource, NetworkModel, PowerTransformer, PowerTransformerEnd
from dms_kernel.model.results import rows

TOL = 1e-6


def _deployment(model: str) -> str:
    return f'[deployment]\nname="t"\nmodel="{model}"\n'


def _by_node(result, phase: int = 1) -> dict[str, dict]:
    return {row["node"]: row for row in rows(result.data["nodes"]) if row["phase"] == phase}


async def test_cigre_mv_through_the_kernel_matches_direct_runpp(make_kernel):
    kernel = make_kernel(dms_pandapower.plugin, deployment=_deployment("cigre_mv"))
    await kernel.prepare()
    assert isinstance(kernel.model, NetworkModel)
    result = await kernel.run_study("power_flow")
    assert result.converged and result.solver == "pandapower" and result.study == "power_flow"
    net = pandapower_example("cigre_mv")
    pp.runpp(net, calculate_voltage_angles=True, trafo_model=TRAFO_MODEL)
    nodes = _by_node(result)
    for bus, (vm, va) in net.res_bus[["vm_pu", "va_degree"]].iterrows():
        row = nodes[f"bus_{bus}"]
        assert row["vm_pu"] == pytest.approx(vm, abs=TOL)
        assert row["va_deg"] == pytest.approx(va, abs=TOL * 180 / math.pi)
        assert row["name"] == net.bus.at[bus, "name"].lower()
        assert row["u_kv"] == pytest.approx(vm * net.bus.at[bus, "vn_kv"] / math.sqrt(3))
    # balanced result: three phase rows, angles shifted by -120/+120 degrees
    phase_b = _by_node(result, 2)["bus_5"]
    assert phase_b["vm_pu"] == nodes["bus_5"]["vm_pu"]
    assert math.isclose((phase_b["va_deg"] - nodes["bus_5"]["va_deg"]) % 360, 240.0)
    losses = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert result.data["losses_mw"] == pytest.approx(losses, abs=1e-9)
    branches = [r for r in rows(result.data["branches"]) if r["element"] == "line_0"]
    assert [r["phase"] for r in branches] == [1, 2, 3]
    assert branches[0]["loading_percent"] == pytest.approx(net.res_line.at[0, "loading_percent"])
    assert sum(r["p_from_mw"] for r in branches) == pytest.approx(net.res_line.at[0, "p_from_mw"])


async def test_warm_start_reflects_a_changed_load(make_kernel):
    kernel = make_kernel(dms_pandapower.plugin, deployment=_deployment("cigre_mv"))
    await kernel.prepare()
    first = await kernel.run_study("power_flow")
    load = kernel.model.by_name("Load R11", EnergyConsumer)
    load.p_mw, load.q_mvar = 3.0, 1.0
    second = await kernel.run_study("power_flow")
    assert second.converged and "init=results" in second.message
    fresh = to_pandapower(kernel.model)
    pp.runpp(fresh.net, calculate_voltage_angles=True, trafo_model=TRAFO_MODEL)
    nodes = _by_node(second)
    for node, bus in fresh.bus_of.items():
        assert nodes[node]["vm_pu"] == pytest.approx(fresh.net.res_bus.at[bus, "vm_pu"], abs=TOL)
    node = "bus_11"
    assert nodes[node]["vm_pu"] < _by_node(first)[node]["vm_pu"] - 1e-4


async def test_opened_switch_de_energises_buses_as_nan(make_kernel):
    kernel = make_kernel(dms_pandapower.plugin, deployment=_deployment("cigre_mv"))
    await kernel.prepare()
    await kernel.run_study("power_flow")
    # the breaker feeding the second feeder (transformer 0-12)
    breaker = next(s for s in kernel.model.switches() if s.mrid == "switch_7")
    breaker.open = True
    result = await kernel.run_study("power_flow")
    assert result.converged and "init=auto" in result.message  # topology changed: no warm start
    nodes = _by_node(result)
    dead = ["bus_12", "bus_13", "bus_14"]
    assert all(math.isnan(nodes[n]["vm_pu"]) and math.isnan(nodes[n]["u_kv"]) for n in dead)
    assert all(not math.isnan(nodes[n]["vm_pu"]) for n in ("bus_0", "bus_1", "bus_11"))
    net = pandapower_example("cigre_mv")
    net.switch.at[7, "closed"] = False
    pp.runpp(net, calculate_voltage_angles=True, trafo_model=TRAFO_MODEL)
    for bus in range(12):
        assert nodes[f"bus_{bus}"]["vm_pu"] == pytest.approx(net.res_bus.at[bus, "vm_pu"], abs=TOL)
    breaker.open = False
    again = await kernel.run_study("power_flow")
    assert not math.isnan(_by_node(again)["bus_13"]["vm_pu"])


async def test_unbalanced_ieee_european_lv_matches_direct_runpp_3ph(make_kernel):
    kernel = make_kernel(dms_pandapower.plugin, deployment=_deployment("ieee_european_lv"))
    await kernel.prepare()
    result = await kernel.run_study("power_flow", {"unbalanced": True})
    assert result.converged and result.data["unbalanced"] is True
    net = common_3ph_model(pandapower_example("ieee_european_lv"))  # the converters' 3-phase model
    pp.runpp_3ph(net)
    for phase, letter in ((1, "a"), (2, "b"), (3, "c")):
        nodes = _by_node(result, phase)
        vm = np.array([nodes[f"bus_{bus}"]["vm_pu"] for bus in net.bus.index])
        va = np.array([nodes[f"bus_{bus}"]["va_deg"] for bus in net.bus.index])
        assert np.max(np.abs(vm - net.res_bus_3ph[f"vm_{letter}_pu"].to_numpy())) < TOL
        ref_va = (net.res_bus_3ph[f"va_{letter}_degree"].to_numpy() + 180) % 360 - 180
        assert np.max(np.abs(va - ref_va)) < TOL * 180 / math.pi
    losses = sum(net[t][f"pl_{p}_mw"].sum() for t in ("res_line_3ph", "res_trafo_3ph") for p in "abc")
    assert result.data["losses_mw"] == pytest.approx(losses, abs=1e-9)
    # the voltages really are unbalanced
    far = [r["vm_pu"] for r in rows(result.data["nodes"]) if r["name"] == net.bus.name.iloc[-1].lower()]
    assert max(far) - min(far) > 1e-3
    # warm-started second run after a single-phase load grew: equals a fresh conversion
    from dms_kernel.model import EnergyConsumerPhase

    phase = kernel.model.get("asym_load_0_A", EnergyConsumerPhase)
    phase.p_mw *= 20
    second = await kernel.run_study("power_flow", {"unbalanced": True})
    assert second.converged and "init=results" in second.message
    fresh = to_pandapower(kernel.model, unbalanced=True)
    pp.runpp_3ph(fresh.net)
    nodes = _by_node(second, 1)
    got = np.array([nodes[n]["vm_pu"] for n in fresh.nodes])
    ref = fresh.net.res_bus_3ph.vm_a_pu.to_numpy()[[fresh.bus_of[n] for n in fresh.nodes]]
    assert np.max(np.abs(got - ref)) < TOL
    load_bus = f"bus_{net.asymmetric_load.at[0, 'bus']}"
    assert nodes[load_bus]["vm_pu"] < _by_node(result, 1)[load_bus]["vm_pu"] - 1e-4


def test_non_convergence_is_a_result_not_an_exception():
    model = load_example("cigre_mv")
    load = model.by_name("Load R11", EnergyConsumer)
    load.p_mw = 5000.0
    result = dms_pandapower.plugin.dms_run_study(study="power_flow", model=model, snapshot=None, options={})
    assert result.converged is False and "did not converge" in result.message
    load.p_mw = 0.2
    result = dms_pandapower.plugin.dms_run_study(study="power_flow", model=model, snapshot=None, options={})
    assert result.converged


def test_hooks_decline_what_they_do_not_handle(tmp_path):
    model = load_example("cigre_mv")
    run = dms_pandapower.plugin.dms_run_study
    assert run(study="power_flow", model=model, snapshot=None, options={"solver": "opendss"}) is None
    assert run(study="state_estimation", model=model, snapshot=None, options={}) is None
    assert run(study="power_flow", model=model, snapshot=None, options={"solver": "pandapower"}).converged
    assert dms_pandapower.plugin.dms_load_model(location="grid.xml", base_dir=tmp_path) is None
    assert dms_pandapower.plugin.dms_load_model(location="radial_50", base_dir=tmp_path).name == "radial_50"
    assert dms_pandapower.plugin.dms_studies() == ["power_flow"]


def test_cyclic_updates_match_a_fresh_conversion():
    """Loads, taps, source voltage, shunt sections and switches changed between runs: the cached,
    updated (and recycled) net gives what a fresh conversion of the model gives."""
    from dms_kernel.model import EnergySource, LinearShuntCompensator, RatioTapChanger

    model = load_example("mv_oberrhein")
    shunt = model.add(
        LinearShuntCompensator("cap", name="Cap", b_per_section_us=2500.0, maximum_sections=3, sections=1)
    )
    model.connect(shunt, "bus_100")
    solver = dms_pandapower.plugin._solver
    loads = model.of_type(EnergyConsumer)
    tap = model.of_type(RatioTapChanger)[0]
    source = model.of_type(EnergySource)[0]
    switch = next(s for s in model.switches() if not s.open and s.mrid == "switch_10")

    def step_loads():
        for k, load in enumerate(loads[::7]):
            load.p_mw *= 1.1 + 0.01 * k

    def step_tap():
        tap.step += 2

    def step_source():
        source.voltage_kv *= 1.01

    def step_shunt():
        shunt.sections = 3

    def step_switch():
        switch.open = True

    first = solver.run(model)
    assert first.converged
    for change in (step_loads, step_tap, step_source, step_shunt, step_loads, step_switch, step_loads):
        change()
        result = solver.run(model)
        assert result.converged, change.__name__
        fresh = to_pandapower(model)
        pp.runpp(fresh.net, calculate_voltage_angles=True, trafo_model=TRAFO_MODEL)
        nodes = _by_node(result)
        got = np.array([nodes[node]["vm_pu"] for node in fresh.nodes])
        ref = fresh.net.res_bus.vm_pu.to_numpy()[[fresh.bus_of[n] for n in fresh.nodes]]
        assert np.array_equal(np.isnan(got), np.isnan(ref)), change.__name__
        assert np.nanmax(np.abs(got - ref)) < 1e-8, change.__name__


async def test_transformer_model_option_on_mv_oberrhein(make_kernel):
    """Default "pi" transformer model (as power-grid-model); option trafo_model="t" is pandapower's default."""
    kernel = make_kernel(dms_pandapower.plugin, deployment=_deployment("mv_oberrhein"))
    await kernel.prepare()
    for trafo_model in ("pi", "t"):
        options = {} if trafo_model == TRAFO_MODEL else {"trafo_model": trafo_model}
        result = await kernel.run_study("power_flow", options)
        net = pandapower_example("mv_oberrhein")
        pp.runpp(net, calculate_voltage_angles=True, trafo_model=trafo_model)
        nodes = _by_node(result)
        got = np.array([nodes[f"bus_{bus}"]["vm_pu"] for bus in net.bus.index])
        assert np.nanmax(np.abs(got - net.res_bus.vm_pu.to_numpy())) < TOL


def test_unbalanced_with_balanced_loads_equals_balanced_including_pv_and_storage():
    """runpp_3ph with balanced loads is the balanced power flow: PV (sgen) and batteries (storage) must be
    in the 3-phase conversion too (runpp_3ph ignores sgens not of type "wye" and the storage table)."""
    net = pandapower_example("cigre_mv")
    pp.create_storage(net, 5, p_mw=-0.8, max_e_mwh=2.0, q_mvar=0.1, name="battery")  # discharging
    model = from_pandapower(net, "cigre_mv_storage")
    solver = PandapowerSolver()
    balanced = solver.run(model, trafo_model="t")  # runpp_3ph has only the T transformer model
    unbalanced = solver.run(model, unbalanced=True)
    assert balanced.converged and unbalanced.converged
    network = solver.network(model, unbalanced=True)
    assert (network.net.sgen["type"] == "wye").all() and len(network.net.sgen) == len(net.sgen) + 1
    a = {(r["node"], r["phase"]): r["vm_pu"] for r in rows(balanced.data["nodes"])}
    b = {(r["node"], r["phase"]): r["vm_pu"] for r in rows(unbalanced.data["nodes"])}
    assert max(abs(a[k] - b[k]) for k in a if not math.isnan(a[k])) < 1e-9
    # the battery matters: without its infeed the feeder voltage is lower
    model.get("storage_0").p_mw = 0.0
    without = {(r["node"], r["phase"]): r["vm_pu"] for r in rows(solver.run(model, unbalanced=True).data["nodes"])}
    assert without[("bus_5", 1)] < b[("bus_5", 1)] - 1e-4


def test_radial_example_gets_a_vector_group_and_solves_unbalanced():
    """pandapower nets without vector group (radial_N: 150° shift) get one that fits the shift (Dyn5), so
    the model solves unbalanced too; lines without zero-sequence data use the positive sequence."""
    model = load_example("radial_40")
    (transformer,) = model.of_type(PowerTransformer)
    assert transformer.vector_group == "Dyn5"
    ends = sorted(model.of_type(PowerTransformerEnd), key=lambda e: e.end_number)
    assert (ends[0].connection, ends[1].connection, ends[1].grounded) == ("D", "Y", True)
    result = PandapowerSolver().run(model, unbalanced=True)
    assert result.converged, result.message
    balanced = PandapowerSolver().run(model, trafo_model="t")
    a = {(r["node"], r["phase"]): r["vm_pu"] for r in rows(balanced.data["nodes"])}
    b = {(r["node"], r["phase"]): r["vm_pu"] for r in rows(result.data["nodes"])}
    assert max(abs(a[k] - b[k]) for k in a) < 1e-9


def test_source_impedance_option_puts_the_thevenin_impedance_before_the_node():
    """``source_impedance``: the EnergySource's r/x between an ideal source and its node (an internal bus and
    line that are not in the results); the default is an ideal source at the node."""
    model = load_example("ieee_european_lv")
    (source,) = model.of_type(EnergySource)
    assert source.x_ohm > 0
    source.r_ohm, source.x_ohm = 2.0, 6.0  # a weak grid (~20 MVA at 11 kV): a visible drop
    solver = PandapowerSolver()
    for unbalanced in (False, True):
        ideal = solver.run(model, unbalanced=unbalanced)
        behind = solver.run(model, unbalanced=unbalanced, source_impedance=True)
        assert len(behind.data["nodes"]["node"]) == len(ideal.data["nodes"]["node"])
        slack_bus = model.nodes_of(source)[0]
        vi = [r["vm_pu"] for r in rows(ideal.data["nodes"]) if r["node"] == slack_bus]
        vb = [r["vm_pu"] for r in rows(behind.data["nodes"]) if r["node"] == slack_bus]
        assert vi == pytest.approx([1.05] * 3, abs=1e-6)  # the set point
        assert all(b < a - 1e-4 for a, b in zip(vi, vb, strict=True))  # the load current's drop over the impedance
    net = solver.network(model, unbalanced=True, source_impedance=True).net
    assert len(net.bus) == len(model.node_ids()) + 1 and net.ext_grid.bus.iloc[0] not in net.line.from_bus.iloc[:-1]
