"""Agreement with the pandapower plugin on the same network model (issue 4 acceptance).

Balanced: every node and phase within 1e-6 pu (magnitude; angle within 1e-6 rad). Unbalanced
(runpp_3ph is the reference engine): within 1e-4 pu on a network both engines model identically.
"""

from __future__ import annotations

import math

import pytest

import dms_pgm.plugin
from dms_hookspecs import hookimpl
from dms_kernel.model import EnergyConsumer, EnergyConsumerPhase
from dms_kernel.model.results import rows

pp = pytest.importorskip("pandapower")
dms_pandapower = pytest.importorskip("dms_pandapower")
from dms_pandapower import examples  # noqa: E402
from dms_pandapower.convert import to_pandapower  # noqa: E402

import dms_pandapower.plugin  # noqa: E402
from dms_pgm.convert import to_pgm  # noqa: E402
from dms_pgm.solver import calculate, results_data  # noqa: E402

VM_TOL = 1e-6
VA_TOL_DEG = math.degrees(1e-6)


def node_table(data):
    return {(r["node"], r["phase"]): (r["vm_pu"], r["va_deg"]) for r in rows(data["nodes"])}


def deviations(a, b):
    """Largest |dvm| and |dva| (degrees) over all nodes and phases; NaN (de-energised) must match."""
    ta, tb = node_table(a), node_table(b)
    assert ta.keys() == tb.keys()
    dvm = dva = 0.0
    for key, (vm, va) in ta.items():
        vm_b, va_b = tb[key]
        assert math.isnan(vm) == math.isnan(vm_b), key
        if math.isnan(vm):
            continue
        dvm = max(dvm, abs(vm - vm_b))
        dva = max(dva, abs((va - va_b + 180) % 360 - 180))
    return dvm, dva


def pgm_data(model, unbalanced=False):
    net = to_pgm(model, asymmetric=unbalanced)
    return results_data(net, calculate(net))


@pytest.mark.parametrize("name", ["cigre_mv", "mv_oberrhein", "radial_300"])
async def test_balanced_agreement_through_both_plugins(make_kernel, name):
    """Both solver plugins through the kernel on the example network.

    Needs dms_pandapower's runpp to use pgm's branch model: ``trafo_model="pi"`` (pandapower's
    default "t" differs by 2-3e-6 pu on mv_oberrhein and radial_N) and, for three-winding
    transformers, ``trafo3w_losses="hv"``.
    """
    deployment = f'[deployment]\nname = "agree"\nmodel = "{name}"\n'
    kernel = make_kernel(dms_pandapower.plugin, dms_pgm.plugin, deployment=deployment)
    async with kernel:
        model = kernel.model
        if name == "cigre_mv":  # open one more switch: switching changes both the same way
            closed = [s for s in model.switches() if not s.open]
            closed[0].open = True
        ours = await kernel.run_study("power_flow", {"solver": "power-grid-model"})
        theirs = await kernel.run_study("power_flow", {"solver": "pandapower"})
    assert ours.converged and theirs.converged
    assert ours.solver == "power-grid-model" and theirs.solver == "pandapower"
    dvm, dva = deviations(ours.data, theirs.data)
    assert dvm < VM_TOL and dva < VA_TOL_DEG, (dvm, dva)
    assert ours.data["losses_mw"] == pytest.approx(theirs.data["losses_mw"], abs=1e-4)


@pytest.mark.parametrize("name", ["cigre_mv", "mv_oberrhein", "radial_300"])
def test_balanced_agreement_with_pi_transformer_model(name):
    """The converters alone: pandapower's runpp with trafo_model="pi" (pgm's transformer model)."""
    model = examples.load_example(name)
    net = to_pandapower(model)
    pp.runpp(net.net, trafo_model="pi", calculate_voltage_angles=True)
    ours = pgm_data(model)
    vm = net.net.res_bus.vm_pu
    va = net.net.res_bus.va_degree
    theirs = {(node, 1): (vm[bus], va[bus]) for node, bus in net.bus_of.items()}
    for key, (vm_b, va_b) in theirs.items():
        vm_a, va_a = node_table(ours)[key]
        assert math.isnan(vm_a) == math.isnan(vm_b), key
        if not math.isnan(vm_b):
            assert abs(vm_a - vm_b) < VM_TOL, key
            assert abs((va_a - va_b + 180) % 360 - 180) < VA_TOL_DEG, key


def test_three_winding_transformer_agrees_with_pandapower(build_three_winding):
    """pandapower settings equal to pgm's model: pi branches, magnetising admittance at the HV end."""
    model = build_three_winding()
    net = to_pandapower(model)
    pp.runpp(net.net, trafo_model="pi", trafo3w_losses="hv", calculate_voltage_angles=True)
    pgm = to_pgm(model)
    ours = node_table(results_data(pgm, calculate(pgm)))
    for node, bus in net.bus_of.items():
        vm_a, va_a = ours[(node, 1)]
        assert abs(vm_a - net.net.res_bus.vm_pu[bus]) < VM_TOL, node
        assert abs((va_a - net.net.res_bus.va_degree[bus] + 180) % 360 - 180) < VA_TOL_DEG, node
    # the tap moves: both converted networks are updated in place
    before = ours[("lv", 1)][0]
    model.get("t3_tap").step = -3
    pgm.update(model)
    net.update(model)
    pp.runpp(net.net, trafo_model="pi", trafo3w_losses="hv", calculate_voltage_angles=True)
    ours = node_table(results_data(pgm, calculate(pgm)))
    assert ours[("lv", 1)][0] > before + 0.05  # 5 steps of 1.25 % fewer HV turns
    for node, bus in net.bus_of.items():
        assert abs(ours[(node, 1)][0] - net.net.res_bus.vm_pu[bus]) < VM_TOL, node


def _unbalance(model):
    """Per-phase loads on every consumer: 60 % on phase A, 25 % B, 15 % C."""
    for consumer in model.of_type(EnergyConsumer):
        for phase, share in zip("ABC", (0.6, 0.25, 0.15), strict=True):
            model.add(EnergyConsumerPhase(f"{consumer.mrid}_{phase}", consumer=consumer.mrid, phase=phase,
                                          p_mw=consumer.p_mw * share, q_mvar=consumer.q_mvar * share))


def _phase_table(net, ppn):
    res = net.res_bus_3ph
    return {
        (node, k + 1): (res[f"vm_{p}_pu"][bus], res[f"va_{p}_degree"][bus])
        for node, bus in ppn.bus_of.items() for k, p in enumerate("abc")
    }


@pytest.mark.parametrize("vector_group", ["Dyn5", "YNyn0"])
def test_unbalanced_agreement_with_runpp_3ph_on_the_same_input(build_feeder, vector_group):
    """runpp_3ph on dms_pandapower's conversion, which carries the settings that make pandapower's input
    the same network as ours: PV sgen type "wye" (runpp_3ph skips other types), a zero-sequence
    magnetising impedance from the transformer's no-load current (mag0_percent; pandapower's default
    100 % nearly halves z0) and a stiff source in the zero and negative sequence too (s_sc_max_mva)."""
    model = build_feeder()
    if vector_group == "YNyn0":
        end1, end2 = model.get("tr1_e1"), model.get("tr1_e2")
        end1.connection, end1.grounded, end2.phase_angle_clock = "Y", True, 0
    _unbalance(model)
    ppn = to_pandapower(model, unbalanced=True)
    net = ppn.net
    assert (net.sgen["type"] == "wye").all()
    mag0 = 100 * (100 / net.trafo.i0_percent) / (net.trafo.vk0_percent / 100)
    assert net.trafo["mag0_percent"].to_numpy() == pytest.approx(mag0.to_numpy(), rel=1e-9)
    assert (net.ext_grid["s_sc_max_mva"] >= 1e9).all()  # an ideal source in all sequences, as ours
    pp.runpp_3ph(net)
    ours = node_table(pgm_data(model, unbalanced=True))
    theirs = _phase_table(net, ppn)
    assert ours[("n6", 1)][0] < ours[("n6", 2)][0] - 0.05  # strongly unbalanced
    for key, (vm_b, va_b) in theirs.items():
        vm_a, va_a = ours[key]
        assert abs(vm_a - vm_b) < 1e-4, (key, vm_a, vm_b)
        assert abs((va_a - va_b + 180) % 360 - 180) < math.degrees(1e-4), (key, va_a, va_b)


async def test_unbalanced_agreement_through_both_plugins(make_kernel, build_feeder):
    """Both plugins through the kernel, unbalanced (dms_pandapower's runpp_3ph conversion has the settings
    of :func:`test_unbalanced_agreement_with_runpp_3ph_on_the_same_input`)."""
    model = build_feeder()
    _unbalance(model)

    class Loader:
        @hookimpl
        def dms_load_model(self, location, base_dir):
            return model

    deployment = '[deployment]\nname = "agree3ph"\nmodel = "feeder"\n'
    kernel = make_kernel(dms_pandapower.plugin, dms_pgm.plugin, ("loader", Loader()), deployment=deployment)
    async with kernel:
        ours = await kernel.run_study("power_flow", {"solver": "power-grid-model", "unbalanced": True})
        theirs = await kernel.run_study("power_flow", {"solver": "pandapower", "unbalanced": True})
    assert ours.converged and theirs.converged, (ours.message, theirs.message)
    dvm, dva = deviations(ours.data, theirs.data)
    assert dvm < 1e-4 and dva < math.degrees(1e-4), (dvm, dva)


async def test_unbalanced_ieee_european_lv_agreement_through_both_plugins(make_kernel):
    """The IEEE European LV feeder (55 single-phase loads, Dyn1 11/0.416 kV transformer without magnetising
    current) through both plugins, unbalanced: every node and phase within 1e-4 pu."""
    deployment = '[deployment]\nname="t"\nmodel="ieee_european_lv"\n'
    kernel = make_kernel(dms_pandapower.plugin, dms_pgm.plugin, deployment=deployment)
    async with kernel:
        ours = await kernel.run_study("power_flow", {"solver": "power-grid-model", "unbalanced": True})
        theirs = await kernel.run_study("power_flow", {"solver": "pandapower", "unbalanced": True})
    assert ours.converged and theirs.converged, (ours.message, theirs.message)
    assert ours.solver == "power-grid-model" and theirs.solver == "pandapower"
    phases: dict[str, list[float]] = {}
    for r in rows(ours.data["nodes"]):
        phases.setdefault(r["node"], []).append(r["vm_pu"])
    assert max(max(v) - min(v) for v in phases.values()) > 1e-3  # really unbalanced
    dvm, dva = deviations(ours.data, theirs.data)
    assert dvm < 1e-4 and dva < math.degrees(1e-4), (dvm, dva)


@pytest.mark.parametrize("unbalanced", [False, True])
async def test_source_impedance_agreement_through_both_plugins(make_kernel, build_feeder, unbalanced):
    """Option ``source_impedance`` in both plugins: the EnergySource's Thevenin impedance behind an ideal
    source (pgm: sk/rx_ratio/z01_ratio; dms_pandapower: an internal bus and line). pgm's zero-sequence
    source impedance has the positive sequence's r/x ratio: r0/x0 here has it too."""
    model = build_feeder()
    _unbalance(model)
    source = model.get("src")
    source.r_ohm, source.x_ohm, source.r0_ohm, source.x0_ohm = 1.2, 12.0, 2.4, 24.0  # ~1000 MVA at 110 kV

    class Loader:
        @hookimpl
        def dms_load_model(self, location, base_dir):
            return model

    deployment = '[deployment]\nname = "agree_z"\nmodel = "feeder"\n'
    kernel = make_kernel(dms_pandapower.plugin, dms_pgm.plugin, ("loader", Loader()), deployment=deployment)
    options = {"unbalanced": unbalanced, "source_impedance": True}
    async with kernel:
        ours = await kernel.run_study("power_flow", {"solver": "power-grid-model", **options})
        theirs = await kernel.run_study("power_flow", {"solver": "pandapower", **options})
        ideal = await kernel.run_study("power_flow", {"solver": "power-grid-model", "unbalanced": unbalanced})
    assert ours.converged and theirs.converged, (ours.message, theirs.message)
    assert node_table(ideal.data)[("grid", 1)][0] - node_table(ours.data)[("grid", 1)][0] > 1e-4  # it matters
    dvm, dva = deviations(ours.data, theirs.data)
    tolerance = 1e-4 if unbalanced else VM_TOL
    assert dvm < tolerance and dva < math.degrees(tolerance), (dvm, dva)
