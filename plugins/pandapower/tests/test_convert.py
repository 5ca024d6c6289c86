"""Model <-> pandapower converters: round trips give the same power flow as the original net."""

from __future__ import annotations

import math

import numpy as np
import pandapower as pp
import pytest
from dms_pandapower.convert import ConversionError, common_3ph_model, from_pandapower, to_pandapower
from dms_pandapower.examples import load_example, pandapower_example

from dms_kernel.model import (
    ACLineSegment,
    BaseVoltage,
    ConnectivityNode,
    EnergyConsumer,
    EnergySource,
    NetworkModel,
    PerLengthPhaseImpedance,
    PerLengthSequenceImpedance,
    PhaseImpedanceEntry,
    PowerTransformer,
    PowerTransformerEnd,
    TransformerTank,
    VoltageLevel,
)

TOL = 1e-6


def _original_buses(converted, net):
    return [converted.bus_of[f"bus_{i}"] for i in net.bus.index]


def _assert_same_balanced(net, converted):
    buses = _original_buses(converted, net)
    ref = net.res_bus
    got = converted.net.res_bus.loc[buses]
    assert np.array_equal(np.isnan(ref.vm_pu.to_numpy()), np.isnan(got.vm_pu.to_numpy()))
    assert np.nanmax(np.abs(got.vm_pu.to_numpy() - ref.vm_pu.to_numpy())) < TOL
    assert np.nanmax(np.abs(got.va_degree.to_numpy() - ref.va_degree.to_numpy())) < TOL * 180 / math.pi


@pytest.mark.parametrize("name", ["cigre_mv", "mv_oberrhein"])
def test_round_trip_balanced_power_flow(name):
    net = pandapower_example(name)
    pp.runpp(net, calculate_voltage_angles=True)
    model = from_pandapower(net, name)
    model.validate()
    converted = to_pandapower(model)
    pp.runpp(converted.net, calculate_voltage_angles=True)
    _assert_same_balanced(net, converted)
    # line/transformer switches became node-breaker switches with their own node
    assert len(converted.net.switch) == len(net.switch)
    assert set(converted.net.switch.et) == {"b"}
    lines = net.res_line.pl_mw.sum() + net.res_trafo.pl_mw.sum()
    assert converted.net.res_line.pl_mw.sum() + converted.net.res_trafo.pl_mw.sum() == pytest.approx(lines, abs=1e-9)


def test_cigre_mv_model_content():
    model = load_example("cigre_mv")
    counts = model.counts()
    assert counts["ConnectivityNode"] == 15 + 8  # buses + one node per line switch
    assert counts["ACLineSegment"] == 15 and counts["PowerTransformer"] == 2
    assert counts["LoadBreakSwitch"] == 6 and counts["Breaker"] == 2 and counts["EnergySource"] == 1
    assert counts["PowerElectronicsConnection"] == counts["PhotoVoltaicUnit"] == 9  # 8 PV, 1 wind park (WP)
    names = {n.name for n in model.of_type(ConnectivityNode)}
    assert {"Bus 0", "Bus 14"} <= names
    open_switches = sorted(s.name for s in model.switches() if s.open)
    assert open_switches == ["S1", "S2", "S3"]
    line = model.by_name("Line 1-2", ACLineSegment)
    assert line.location is not None and len(model.get(line.location).points) == 2
    source = model.of_type(EnergySource)[0]
    assert source.voltage_kv == pytest.approx(1.03 * 110)


def test_round_trip_unbalanced_ieee_european_lv():
    # the reference: pandapower on its own net with the converters' 3-phase model (README.md: zero-sequence
    # magnetising impedance from i0 instead of pandapower's default mag0_percent=100, an ideal source)
    net = common_3ph_model(pandapower_example("ieee_european_lv"))
    pp.runpp_3ph(net)
    model = from_pandapower(net, "ieee_european_lv")
    model.validate()
    assert len([c for c in model.of_type(EnergyConsumer) if c.phases != "ABCN"]) == 55  # single-phase loads
    converted = to_pandapower(model, unbalanced=True)
    assert len(converted.net.asymmetric_load) == 55
    pp.runpp_3ph(converted.net)
    buses = _original_buses(converted, net)
    for phase in "abc":
        ref = net.res_bus_3ph[f"vm_{phase}_pu"].to_numpy()
        got = converted.net.res_bus_3ph[f"vm_{phase}_pu"].to_numpy()[buses]
        assert np.max(np.abs(got - ref)) < TOL
        ref_a = net.res_bus_3ph[f"va_{phase}_degree"].to_numpy()
        got_a = converted.net.res_bus_3ph[f"va_{phase}_degree"].to_numpy()[buses]
        assert np.max(np.abs(got_a - ref_a)) < TOL * 180 / math.pi


def test_radial_example_has_n_buses_and_converges():
    for n in (100, 1000):
        net = pandapower_example(f"radial_{n}")
        assert len(net.bus) == n
        pp.runpp(net)
        assert net.converged
        vm = net.res_bus.vm_pu
        assert vm.min() > 0.9 and vm.max() < 1.1
        assert net.res_line.loading_percent.max() < 100
    assert pandapower_example("radial_1000").bus.name.tolist() == pandapower_example("radial_1000").bus.name.tolist()


def test_three_winding_transformer_storage_shunt_zip_load_round_trip():
    net = pp.create_empty_network()
    hv, mv, lv, lv2 = (pp.create_bus(net, kv) for kv in (110.0, 20.0, 10.0, 10.0))
    pp.create_ext_grid(net, hv, vm_pu=1.01, va_degree=5.0)
    pp.create_transformer3w_from_parameters(
        net,
        hv,
        mv,
        lv,
        110.0,
        20.0,
        10.0,
        40.0,
        30.0,
        15.0,
        vk_hv_percent=10.0,
        vk_mv_percent=8.0,
        vk_lv_percent=9.0,
        vkr_hv_percent=0.4,
        vkr_mv_percent=0.3,
        vkr_lv_percent=0.35,
        pfe_kw=20.0,
        i0_percent=0.1,
        shift_mv_degree=150.0,
        shift_lv_degree=150.0,
        tap_side="hv",
        tap_pos=2,
        tap_neutral=0,
        tap_min=-8,
        tap_max=8,
        tap_step_percent=1.25,
        tap_changer_type="Ratio",
    )
    pp.create_line_from_parameters(net, lv, lv2, 2.0, 0.2, 0.1, 250.0, 0.3, parallel=2)
    pp.create_load(net, mv, 12.0, 4.0, const_z_p_percent=30.0, const_i_p_percent=20.0, const_z_q_percent=50.0)
    pp.create_load(net, lv2, 6.0, 2.0, scaling=0.8)
    pp.create_storage(net, lv2, p_mw=1.5, max_e_mwh=4.0, q_mvar=-0.2)
    pp.create_sgen(net, mv, 3.0, 0.5, type="PV")
    pp.create_shunt(net, mv, q_mvar=-2.0, p_mw=0.01, step=2, max_step=3)
    pp.runpp(net, calculate_voltage_angles=True)
    model = from_pandapower(net, "small")
    converted = to_pandapower(model)
    pp.runpp(converted.net, calculate_voltage_angles=True)
    _assert_same_balanced(net, converted)
    assert len(converted.net.trafo3w) == 1 and len(converted.net.storage) == 1 and len(converted.net.shunt) == 1


def test_update_copies_run_time_values_in_place():
    model = load_example("cigre_mv")
    converted = to_pandapower(model)
    net = converted.net
    load = model.by_name("Load R11", EnergyConsumer)
    switch = next(s for s in model.switches() if s.name == "S2")
    table, row = converted.element_index[load.mrid]
    load.p_mw, load.q_mvar = 1.25, 0.3
    switch.open = False
    source = model.of_type(EnergySource)[0]
    source.voltage_kv = 1.0 * 110
    converted.update(model)
    assert (table, net.load.at[row, "p_mw"], net.load.at[row, "q_mvar"]) == ("load", 1.25, 0.3)
    assert bool(net.switch.at[converted.element_index[switch.mrid][1], "closed"]) is True
    assert net.ext_grid.at[0, "vm_pu"] == pytest.approx(1.0)
    pp.runpp(net)
    fresh = to_pandapower(model)
    pp.runpp(fresh.net)
    assert np.nanmax(np.abs(net.res_bus.vm_pu.to_numpy() - fresh.net.res_bus.vm_pu.to_numpy())) < 1e-9


def _feeder(model: NetworkModel, impedance: str) -> None:
    bv = model.add(BaseVoltage("bv20", nominal_kv=20.0))
    vl = model.add(VoltageLevel("vl20", base_voltage=bv.mrid))
    a = model.add(ConnectivityNode("a", name="A", container=vl.mrid))
    b = model.add(ConnectivityNode("b", name="B", container=vl.mrid))
    source = model.add(EnergySource("src", name="Source", voltage_kv=20.4))
    model.connect(source, a)
    line = model.add(ACLineSegment("ln", name="Line", length_km=3.0, per_length_impedance=impedance))
    model.connect(line, a, b)
    load = model.add(EnergyConsumer("ld", name="Load", p_mw=2.0, q_mvar=0.6))
    model.connect(load, b)


def test_phase_impedance_matrix_becomes_sequence_impedance():
    zs, zm, bs, bm = complex(0.3, 0.8), complex(0.1, 0.35), 3.0, -0.6
    phase = NetworkModel("phase")
    entries = [
        PhaseImpedanceEntry(i, j, (zs if i == j else zm).real, (zs if i == j else zm).imag, bs if i == j else bm)
        for i in (1, 2, 3)
        for j in range(1, i + 1)
    ]
    phase.add(PerLengthPhaseImpedance("z", conductor_count=3, entries=entries))
    _feeder(phase, "z")
    sequence = NetworkModel("sequence")
    z1, z0 = zs - zm, zs + 2 * zm
    sequence.add(
        PerLengthSequenceImpedance(
            "z",
            r_ohm_per_km=z1.real,
            x_ohm_per_km=z1.imag,
            b_us_per_km=bs - bm,
            r0_ohm_per_km=z0.real,
            x0_ohm_per_km=z0.imag,
            b0_us_per_km=bs + 2 * bm,
        )
    )
    _feeder(sequence, "z")
    for unbalanced in (False, True):
        nets = [to_pandapower(m, unbalanced=unbalanced).net for m in (phase, sequence)]
        columns = ("r_ohm_per_km", "x_ohm_per_km", "c_nf_per_km", "r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km")
        for column in columns:
            assert nets[0].line.at[0, column] == pytest.approx(nets[1].line.at[0, column], rel=1e-12)
        runner = pp.runpp_3ph if unbalanced else pp.runpp
        for net in nets:
            runner(net)
        res = "res_bus_3ph" if unbalanced else "res_bus"
        column = "vm_a_pu" if unbalanced else "vm_pu"
        assert nets[0][res][column].to_numpy() == pytest.approx(nets[1][res][column].to_numpy(), abs=1e-12)
        assert nets[0][res][column].iloc[1] < nets[0][res][column].iloc[0]


def test_single_phase_equipment_is_refused_naming_it():
    model = NetworkModel("lateral")
    _feeder(model, "z")
    model.add(PerLengthSequenceImpedance("z", r_ohm_per_km=0.3, x_ohm_per_km=0.4))
    line = model.get("ln")
    line.phases = "AN"
    with pytest.raises(ConversionError, match=r"'ln' \('Line'\).*opendss"):
        to_pandapower(model)
    line.phases = "ABC"
    c = model.add(ConnectivityNode("c", name="C", container="vl20"))
    bank = model.add(PowerTransformer("reg", name="Reg1"))
    model.connect(bank, "b", c)
    for k, terminal in enumerate(bank.terminals, start=1):
        model.add(
            PowerTransformerEnd(
                f"reg_e{k}",
                power_transformer=bank.mrid,
                terminal=terminal,
                end_number=k,
                rated_s_mva=1.0,
                rated_u_kv=20.0,
                connection="I",
                phases="AN",
            )
        )
    model.add(TransformerTank("tank_a", power_transformer=bank.mrid))
    model.add(TransformerTank("tank_b", power_transformer=bank.mrid))
    with pytest.raises(ConversionError, match=r"'reg' \('Reg1'\).*single-phase.*opendss"):
        to_pandapower(model)


def test_voltage_controlled_generators_are_refused():
    net = pp.create_empty_network()
    bus = pp.create_bus(net, 20.0)
    pp.create_ext_grid(net, bus)
    pp.create_gen(net, bus, 1.0, vm_pu=1.0)
    with pytest.raises(ConversionError, match="'gen'"):
        from_pandapower(net)


def test_radial_model_has_substations_and_feeders():
    from dms_kernel.model import Feeder, Substation, Switch

    model = load_example("radial_200")
    model.validate()
    feeders = model.of_type(Feeder)
    assert len(model.of_type(Substation)) == 2 and len(feeders) == 7
    for feeder in feeders:
        head = model.get(feeder.normal_head_terminal)
        assert isinstance(model.get(head.conducting_equipment), Switch)
        members = [e for e in model.of_type(ACLineSegment) if e.container == feeder.mrid]
        assert 0 < len(members) <= 29
    assert all(line.container for line in model.of_type(ACLineSegment))
