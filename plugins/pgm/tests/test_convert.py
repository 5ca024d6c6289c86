"""Converter and solver of the power-grid-model plugin, self-consistency on networks built in code."""

from __future__ import annotations

import math

import numpy as np
import pytest
from power_grid_model import CalculationType, ComponentType
from power_grid_model.validation import validate_input_data

from dms_kernel.model import (
    ACLineSegment,
    EnergyConsumerPhase,
    PerLengthPhaseImpedance,
    PhaseImpedanceEntry,
    PowerTransformer,
    PowerTransformerEnd,
    TransformerTank,
)
from dms_kernel.model.results import rows
from dms_pgm.convert import UnsupportedNetworkError, to_pgm
from dms_pgm.solver import calculate, results_data, run_power_flow

C = ComponentType


def voltages(data) -> dict[tuple[str, int], tuple[float, float]]:
    return {(r["node"], r["phase"]): (r["vm_pu"], r["va_deg"]) for r in rows(data["nodes"])}


def assert_same_voltages(a, b, tol):
    va, vb = voltages(a), voltages(b)
    assert va.keys() == vb.keys()
    for key in va:
        (ma, aa), (mb, ab) = va[key], vb[key]
        if math.isnan(ma) or math.isnan(mb):
            assert math.isnan(ma) and math.isnan(mb), key
            continue
        assert ma == pytest.approx(mb, abs=tol), key
        assert (aa - ab + 180) % 360 - 180 == pytest.approx(0, abs=tol * 60), key


@pytest.mark.parametrize("asymmetric", [False, True])
def test_input_is_valid_for_power_grid_model(asymmetric, build_feeder):
    net = to_pgm(build_feeder(zip_load=True), asymmetric=asymmetric)
    assert validate_input_data(net.input_data, calculation_type=CalculationType.power_flow, symmetric=not asymmetric) is None
    # the breaker and the tie switch are in series with one line end each: folded into the line's end status
    assert set(net.node_mrids) == {"grid", "bus"} | {f"n{k}" for k in range(1, 7)}
    assert {a[0] for a in net.absorbed} == {"head", "tie_end"} and C.link not in net.input_data
    lines = dict(zip(net.input_data[C.line]["id"], net.input_data[C.line], strict=True))
    assert lines[net.element_ids["l1"][0]]["from_status"] == 1  # breaker closed
    assert lines[net.element_ids["ltie"][0]]["to_status"] == 0  # tie open
    # ZIP loads (odd numbers) are split into constant-impedance, -current and -power parts
    assert len(net.element_ids["load1"]) == 3 and len(net.element_ids["load2"]) == 1
    links = to_pgm(build_feeder(), asymmetric=asymmetric, absorb_switches=False)
    assert links.input_data[C.link]["from_status"].tolist() == [1, 0]  # as links: breaker closed, tie open
    assert validate_input_data(links.input_data, calculation_type=CalculationType.power_flow, symmetric=not asymmetric) is None


@pytest.mark.parametrize("asymmetric", [False, True])
def test_folded_switches_equal_links(asymmetric, build_feeder):
    """Switches folded into line ends give the link model's results (which has a 1e-6 pu link impedance)."""
    for tie_open in (True, False):
        model = build_feeder()
        model.get("tie").open = tie_open
        folded, links = to_pgm(model, asymmetric), to_pgm(model, asymmetric, absorb_switches=False)
        a, b = results_data(folded, calculate(folded)), results_data(links, calculate(links))
        assert_same_voltages(a, b, 1e-6)
        flows_a = {(r["element"], r["phase"]): r for r in rows(a["branches"])}
        flows_b = {(r["element"], r["phase"]): r for r in rows(b["branches"])}
        assert flows_a.keys() == flows_b.keys()
        for key, row in flows_a.items():
            for column in ("i_ka", "p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"):
                assert row[column] == pytest.approx(flows_b[key][column], abs=1e-5), (key, column)


def test_balanced_power_flow_energy_balance(feeder):
    result = run_power_flow(feeder, {"solver": "power-grid-model"})
    assert result.converged, result.message
    data = result.data
    nodes = rows(data["nodes"])
    assert {r["phase"] for r in nodes} == {1, 2, 3} and len(nodes) == 3 * 10
    grid = voltages(data)[("grid", 1)]
    assert grid[0] == pytest.approx(112.2 / 110, abs=1e-7)
    # per-phase rows: balanced phases shifted by -120 / +120 degrees
    assert voltages(data)[("n3", 2)][1] == pytest.approx((voltages(data)[("n3", 1)][1] - 120 + 180) % 360 - 180)
    # losses = transformer in-feed minus loads, PV and capacitor (computed by pgm itself)
    out = calculate(to_pgm(feeder))
    load_p = out[C.transformer]["p_from"].sum()
    assert data["losses_mw"] * 1e6 == pytest.approx(
        load_p - sum(1e6 * (1.0 + 0.2 * k) for k in range(1, 7)) + 2e6, rel=1e-6
    )
    branches = {(r["element"], r["phase"]): r for r in rows(data["branches"])}
    line = branches[("l1", 1)]
    assert line["loading_percent"] == pytest.approx(100 * line["i_ka"] / 0.4, rel=1e-6)
    assert branches[("tie", 1)]["i_ka"] == 0.0


def test_symmetric_and_asymmetric_agree_on_a_balanced_network(feeder):
    sym = run_power_flow(feeder, {})
    asym = run_power_flow(feeder, {"unbalanced": True})
    assert asym.data["unbalanced"] and not sym.data["unbalanced"]
    assert_same_voltages(sym.data, asym.data, 1e-9)
    assert asym.data["losses_mw"] == pytest.approx(sym.data["losses_mw"], rel=1e-8)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_update_equals_fresh_conversion(asymmetric, build_feeder):
    """Loads, PV, switch states, tap position, source voltage and shunt sections changed in the model and
    pushed with update() give the same result as converting the changed model from scratch."""
    model = build_feeder(zip_load=True)
    net = to_pgm(model, asymmetric=asymmetric)
    before = results_data(net, calculate(net))
    pgm_model = net.model
    model.get("load3").p_mw = 4.0
    model.get("load4").q_mvar = -0.5
    model.get("pv1").p_mw = 0.5
    model.get("tr1_tap").step = 3
    model.get("src").voltage_kv = 108.0
    model.get("cap").sections = 2
    model.get("tie").open = False  # close the tie: a loop
    model.get("load6").in_service = False
    net.update(model)
    assert net.model is pgm_model  # updated in place, not rebuilt
    updated = results_data(net, calculate(net))
    fresh_net = to_pgm(model, asymmetric=asymmetric)
    fresh = results_data(fresh_net, calculate(fresh_net))
    assert_same_voltages(updated, fresh, 1e-9)
    assert updated["losses_mw"] == pytest.approx(fresh["losses_mw"], rel=1e-9)
    assert voltages(updated)[("n5", 1)][0] != pytest.approx(voltages(before)[("n5", 1)][0], abs=1e-4)


def test_open_breaker_de_energises_the_feeder(feeder):
    feeder.get("brk").open = True
    data = run_power_flow(feeder, {}).data
    v = voltages(data)
    assert math.isnan(v[("n3", 1)][0]) and math.isnan(v[("head", 2)][0])
    assert v[("bus", 1)][0] > 1.0 and not math.isnan(v[("tie_end", 1)][0])
    feeder.get("tie").open = False  # back-feed through the tie
    v = voltages(run_power_flow(feeder, {}).data)
    assert v[("n6", 1)][0] == v[("tie_end", 1)][0] < v[("bus", 1)][0]  # closed switch: one node
    # head: the open end of line l1, fed from n1 (cable charging lifts it slightly)
    assert 0 < v[("head", 1)][0] - v[("n1", 1)][0] < 1e-4


def test_tap_changer_raises_lv_voltage_when_hv_turns_drop(feeder):
    low = voltages(run_power_flow(feeder, {}).data)[("bus", 1)][0]
    feeder.get("tr1_tap").step = -5  # fewer HV turns -> higher LV voltage, 1.5 % per step
    high = voltages(run_power_flow(feeder, {}).data)[("bus", 1)][0]
    assert high / low == pytest.approx((1 - 0.03) / (1 - 0.075), rel=2e-3)


def test_zip_load_parts_follow_voltage(build_feeder):
    model = build_feeder(zip_load=True)
    net = to_pgm(model)
    out = net.model.calculate_power_flow()
    u = dict(zip(out[C.node]["id"], out[C.node]["u_pu"], strict=True))
    loads = out[C.sym_load]
    ids = net.element_ids["load1"]
    part = {i: (p, q, u[node]) for i, p, q, node in zip(loads["id"], loads["p"], loads["q"], net.input_data[C.sym_load]["node"], strict=True)}
    p = sum(part[i][0] for i in ids) / 1e6
    q = sum(part[i][1] for i in ids) / 1e6
    v = part[ids[0]][2]
    assert p == pytest.approx(1.2 * (0.3 * v**2 + 0.2 * v + 0.5), rel=1e-9)
    assert q == pytest.approx(0.35 * (0.6 * v**2 + 0.4), rel=1e-9)


def test_phase_impedance_matrix_of_a_transposed_line_equals_its_sequence_impedance(build_feeder):
    seq = build_feeder()
    phase = build_feeder()
    # transposed 3x3 matrix with zs, zm chosen so that z1 = zs - zm, z0 = zs + 2 zm match the "cable"
    z1, z0 = complex(0.161, 0.117), complex(0.644, 0.468)
    b1, b0 = 87.96, 52.0
    zs, zm = (z0 + 2 * z1) / 3, (z0 - z1) / 3
    bs, bm = (b0 + 2 * b1) / 3, (b0 - b1) / 3
    entries = [PhaseImpedanceEntry(i, j, (zs if i == j else zm).real, (zs if i == j else zm).imag, bs if i == j else bm)
               for i in range(1, 4) for j in range(1, i + 1)]
    phase.add(PerLengthPhaseImpedance("cable_phase", conductor_count=3, entries=entries))
    for line in phase.of_type(ACLineSegment):
        if line.per_length_impedance == "cable":
            line.per_length_impedance = "cable_phase"
    for asymmetric in (False, True):
        a, b = to_pgm(seq, asymmetric), to_pgm(phase, asymmetric)
        for column in ("r1", "x1", "c1", "r0", "x0", "c0"):
            np.testing.assert_allclose(a.input_data[C.line][column], b.input_data[C.line][column], rtol=1e-12)
        assert_same_voltages(results_data(a, calculate(a)), results_data(b, calculate(b)), 1e-9)


def test_unbalanced_loads_give_unbalanced_voltages(feeder):
    feeder.add(EnergyConsumerPhase("load6_a", consumer="load6", phase="A", p_mw=1.8, q_mvar=0.4))
    feeder.add(EnergyConsumerPhase("load6_b", consumer="load6", phase="B", p_mw=0.2, q_mvar=0.1))
    feeder.add(EnergyConsumerPhase("load6_c", consumer="load6", phase="C", p_mw=0.2, q_mvar=0.1))
    result = run_power_flow(feeder, {"unbalanced": True})
    assert result.converged
    v = voltages(result.data)
    assert v[("n6", 1)][0] < v[("n6", 2)][0] - 1e-3  # the loaded phase sags
    net = to_pgm(feeder, asymmetric=True)
    row = list(net.input_data[C.asym_load]["id"]).index(net.element_ids["load6"][0])
    np.testing.assert_allclose(net.input_data[C.asym_load]["p_specified"][row], [1.8e6, 0.2e6, 0.2e6])


def test_single_phase_bank_and_lateral_are_rejected_naming_the_element(feeder, build_feeder):
    lateral = build_feeder()
    line = lateral.get("l6", ACLineSegment)
    line.phases = "AN"
    with pytest.raises(UnsupportedNetworkError, match=r"ACLineSegment 'l6' \(name 'L6'\).*opendss"):
        to_pgm(lateral)
    bank = feeder
    transformer = bank.get("tr1", PowerTransformer)
    for k, end in enumerate(bank.ends(transformer)):
        bank.add(TransformerTank(f"tank{k}", power_transformer="tr1"))
        end.transformer_tank = f"tank{k}"
    assert isinstance(bank.get("tr1_e1"), PowerTransformerEnd)
    with pytest.raises(UnsupportedNetworkError, match=r"PowerTransformer 'tr1' \(name 'TR1'\).*single-phase.*opendss"):
        to_pgm(bank)


def test_not_converging_is_reported_not_raised(feeder):
    for k in range(1, 7):
        feeder.get(f"load{k}").p_mw = 400.0
    result = run_power_flow(feeder, {"max_iterations": 10})
    assert not result.converged
    assert "did not converge" in result.message


def test_source_impedance_option(feeder):
    source = feeder.get("src")
    source.r_ohm, source.x_ohm = 0.5, 5.0  # ~2400 MVA short-circuit power at 110 kV
    ideal = voltages(run_power_flow(feeder, {}).data)
    with_z = voltages(run_power_flow(feeder, {"source_impedance": True}).data)
    assert ideal[("grid", 1)][0] == pytest.approx(1.02, abs=1e-7)
    # the in-feed (~8.4 MW, 2.8 Mvar) drops across 0.5 + j5 ohm
    assert 1.02 - with_z[("grid", 1)][0] == pytest.approx((0.5 * 8.4 + 5.0 * 2.8) / 112.2**2, rel=0.1)
