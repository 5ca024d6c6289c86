"""Topology processor: islands, energisation, tracing, feeders, loops, incremental = full rebuild."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms_hookspecs import ALL_EVENT_TYPES, TopologyChanged
from dms_kernel.model import (
    ACLineSegment,
    Breaker,
    ConnectivityNode,
    EnergyConsumer,
    EnergySource,
    Feeder,
    LoadBreakSwitch,
    ModelError,
    NetworkModel,
    PowerTransformer,
    SynchronousMachine,
)
from dms_kernel.model.topology import TopologyChange, TopologyProcessor


# -- an open-loop MV ring: HV grid -> transformer -> MV bus -> two feeders with a normally open tie --


def mv_ring(feeder_objects: bool = True, **out_of_service: bool) -> NetworkModel:
    """Source at HV, transformer TR to the MV bus, feeders 1 and 2 of 5 nodes each, tie between their ends.

    Feeder k: CBk (BUS - Fk_0), Lk_1 (Fk_0 - Fk_1), Lk_2 (Fk_1 - Fk_2), SWk (Fk_2 - Fk_3), Lk_3 (Fk_3 - Fk_4);
    a load LDk_i at every Fk_i (i >= 1); TIE (F1_4 - F2_4) normally open.
    """
    model = NetworkModel("mv_ring")
    node = {}
    for name in ["HV", "BUS"] + [f"F{k}_{i}" for k in (1, 2) for i in range(5)]:
        node[name] = model.add(ConnectivityNode(name, name=name.lower()))
    source = model.add(EnergySource("S", nominal_kv=110.0))
    model.connect(source, node["HV"])
    transformer = model.add(PowerTransformer("TR"))
    model.connect(transformer, node["HV"], node["BUS"])
    for k in (1, 2):
        breaker = model.add(Breaker(f"CB{k}"))
        model.connect(breaker, node["BUS"], node[f"F{k}_0"])
        for a, b, eq in [
            (0, 1, ACLineSegment(f"L{k}_1", length_km=1.0)),
            (1, 2, ACLineSegment(f"L{k}_2", length_km=1.0)),
            (2, 3, LoadBreakSwitch(f"SW{k}")),
            (3, 4, ACLineSegment(f"L{k}_3", length_km=1.0)),
        ]:
            model.connect(model.add(eq), node[f"F{k}_{a}"], node[f"F{k}_{b}"])
        for i in range(1, 5):
            model.connect(model.add(EnergyConsumer(f"LD{k}_{i}", p_mw=0.1)), node[f"F{k}_{i}"])
        if feeder_objects:
            model.add(Feeder(f"FDR{k}", name=f"Feeder {k}", normal_head_terminal=f"CB{k}_T1"))
    tie = model.add(LoadBreakSwitch("TIE", normal_open=True, open=True))
    model.connect(tie, node["F1_4"], node["F2_4"])
    for mrid, in_service in out_of_service.items():
        model.get(mrid).in_service = in_service
    return model


FEEDER1_DOWN = {"F1_3", "F1_4"}


def partition(topology: TopologyProcessor) -> set[frozenset[str]]:
    return set(topology.islands())


def test_normal_state_is_one_energised_island_without_loops():
    model = mv_ring()
    topology = TopologyProcessor(model)
    assert topology.island_count == 1
    assert topology.deenergised_nodes() == []
    assert topology.deenergised_equipment() == []
    assert topology.energised("TIE")  # open, but live on both sides
    assert topology.loops() == []
    assert topology.switch_open("TIE") and not topology.switch_open("SW1")


def test_opening_a_sectionalising_switch_deenergises_the_downstream_part():
    model = mv_ring()
    topology = TopologyProcessor(model)
    change = topology.set_switch("SW1", open=True)
    assert model.get("SW1").open is True  # the model follows
    assert set(change.deenergised_nodes) == FEEDER1_DOWN
    assert change.energised_nodes == ()
    assert set(change.deenergised_equipment) == {"L1_3", "LD1_3", "LD1_4"}
    assert change.switches == ("SW1",) and change.island_count == 2
    assert partition(topology) == {frozenset(FEEDER1_DOWN), frozenset(model.node_ids()) - FEEDER1_DOWN}
    assert topology.island_of("F1_3") == topology.island_of("F1_4") != topology.island_of("F1_2")
    assert set(topology.deenergised_nodes()) == FEEDER1_DOWN
    assert not topology.energised("LD1_4") and topology.energised("LD1_2")
    assert topology.energised("SW1") and topology.energised("TIE")  # one live side each
    # the same as a full rebuild from the model
    assert partition(TopologyProcessor(model)) == partition(topology)
    # repeating the command changes nothing
    assert topology.set_switch("SW1", open=True) == TopologyChange(island_count=2)


def test_closing_the_tie_restores_supply_and_closing_the_switch_then_makes_a_loop():
    model = mv_ring()
    topology = TopologyProcessor(model)
    topology.set_switch("SW1", open=True)
    restore = topology.set_switch("TIE", open=False)
    assert set(restore.energised_nodes) == FEEDER1_DOWN
    assert set(restore.energised_equipment) == {"L1_3", "LD1_3", "LD1_4"}
    assert topology.deenergised_nodes() == [] and topology.island_count == 1
    assert topology.loops() == []  # SW1 is open: still radial

    mesh = topology.set_switch("SW1", open=False)
    assert not mesh.energisation_changed and mesh.island_count == 1
    loops = topology.loops()
    assert len(loops) == 1
    ring = {"CB1", "L1_1", "L1_2", "SW1", "L1_3", "TIE", "L2_3", "SW2", "L2_2", "L2_1", "CB2"}
    assert set(loops[0]) == ring and len(loops[0]) == len(ring)
    # opening the tie again: not a bridge, nothing de-energised, the loop is gone
    change = topology.set_switch("TIE", open=True)
    assert not change.energisation_changed and change.island_count == 1
    assert topology.loops() == []


def test_trace_upstream_and_downstream_from_a_mid_feeder_line():
    topology = TopologyProcessor(mv_ring())
    up = topology.trace_upstream("L1_2")
    assert up.nodes == ("F1_1", "F1_0", "BUS", "HV")
    assert up.equipment == ("L1_1", "CB1", "TR", "S")
    down = topology.trace_downstream("L1_2")
    assert down.nodes == ("F1_2", "F1_3", "F1_4")
    assert set(down.equipment) == {"SW1", "L1_3", "LD1_2", "LD1_3", "LD1_4", "TIE"}
    # from a node: the node itself and everything behind it
    assert topology.trace_downstream("F1_3").nodes == ("F1_3", "F1_4")
    assert topology.trace_upstream("F2_4").nodes == ("F2_4", "F2_3", "F2_2", "F2_1", "F2_0", "BUS", "HV")
    # from a load: upstream is its supply path, nothing is downstream of it
    assert topology.trace_upstream("LD1_4").equipment == ("L1_3", "SW1", "L1_2", "L1_1", "CB1", "TR", "S")
    assert topology.trace_downstream("LD1_4").nodes == ()
    # from the source: everything
    assert len(topology.trace_downstream("S").nodes) == len(topology.model.node_ids())
    # an open switch carries nothing downstream
    assert topology.trace_downstream("TIE").nodes == ()


def test_traces_follow_switching_and_are_empty_when_deenergised():
    topology = TopologyProcessor(mv_ring())
    topology.trace_upstream("F1_4")  # fill the direction cache
    topology.set_switch("SW1", open=True)
    assert topology.trace_upstream("F1_4").nodes == ()
    assert topology.trace_downstream("L1_3").nodes == ()
    topology.set_switch("TIE", open=False)
    # now fed backwards through the tie from feeder 2
    assert topology.trace_upstream("F1_3").nodes == ("F1_3", "F1_4", "F2_4", "F2_3", "F2_2", "F2_1", "F2_0", "BUS", "HV")
    assert topology.trace_downstream("L1_3").nodes == ("F1_3",)
    assert topology.trace_downstream("F2_4").nodes == ("F2_4", "F1_4", "F1_3")


def test_feeder_membership_moves_when_the_tie_closes_and_the_feeder_breaker_opens():
    topology = TopologyProcessor(mv_ring())
    assert [(f, eq, n) for f, eq, n in topology.feeder_heads()] == [("FDR1", "CB1", "BUS"), ("FDR2", "CB2", "BUS")]
    feeder1 = [f"F1_{i}" for i in range(5)]
    assert {topology.feeder_of(n) for n in feeder1} == {"FDR1"}
    assert topology.feeder_of("BUS") is None and topology.feeder_of("HV") is None
    assert topology.feeder_of("LD2_3") == "FDR2"
    # transfer feeder 1 to feeder 2: close the tie first (meshed for a moment), then open CB1
    topology.set_switch("TIE", open=False)
    assert len(topology.loops()) == 1
    assert topology.feeder_of("F1_1") == "FDR1" and topology.feeder_of("F2_1") == "FDR2"  # nearest head
    change = topology.set_switch("CB1", open=True)
    assert not change.energisation_changed
    assert {topology.feeder_of(n) for n in feeder1} == {"FDR2"}
    assert topology.feeder_nodes("FDR1") == []
    assert len(topology.feeder_nodes("FDR2")) == 10
    assert topology.trace_upstream("F1_0").nodes[-3:] == ("F2_0", "BUS", "HV")


def test_feeders_without_feeder_objects_start_at_the_branches_leaving_the_source_substation():
    topology = TopologyProcessor(mv_ring(feeder_objects=False))
    # HV and the MV bus (through the transformer) are source buses; CB1 and CB2 leave them
    assert topology.feeder_heads() == [("CB1", "CB1", "BUS"), ("CB2", "CB2", "BUS")]
    assert topology.feeder_of("F1_4") == "CB1" and topology.feeder_of("L2_2") == "CB2"


def test_out_of_service_equipment_is_absent():
    topology = TopologyProcessor(mv_ring(L1_2=False))
    assert set(topology.deenergised_nodes()) == {"F1_2", "F1_3", "F1_4"}
    assert "L1_2" in topology.deenergised_equipment() and not topology.energised("L1_2")
    assert topology.island_count == 2
    change = topology.set_switch("TIE", open=False)
    assert set(change.energised_nodes) == {"F1_2", "F1_3", "F1_4"}
    assert not topology.energised("L1_2")  # still out of service

    dead = TopologyProcessor(mv_ring(S=False))
    assert len(dead.deenergised_nodes()) == len(dead.model.node_ids())
    assert dead.trace_upstream("F1_1").nodes == ()

    # an out-of-service switch does not conduct whatever its state
    model = mv_ring(TIE=False)
    topology = TopologyProcessor(model)
    topology.set_switch("SW1", open=True)
    change = topology.set_switch("TIE", open=False)
    assert change.switches == ("TIE",) and not change.energisation_changed
    assert set(topology.deenergised_nodes()) == FEEDER1_DOWN


def test_synchronous_machine_as_source_is_optional():
    model = mv_ring()
    machine = model.add(SynchronousMachine("G1", p_mw=0.5))
    model.connect(machine, "F1_4")
    assert set(TopologyProcessor(model).set_switch("SW1", True).deenergised_nodes) == FEEDER1_DOWN
    islanded = TopologyProcessor(model, source_types=(EnergySource, SynchronousMachine))
    change = islanded.set_switch("SW1", True)
    assert change.island_count == 2 and change.deenergised_nodes == ()
    assert islanded.trace_upstream("F1_3").equipment == ("L1_3", "G1")


def test_sync_from_model_applies_point_database_switch_states():
    model = mv_ring()
    topology = TopologyProcessor(model)
    model.get("SW1").open = True
    model.get("SW2").open = True
    model.get("TIE").open = False
    change = topology.sync_from_model()
    assert set(change.switches) == {"SW1", "SW2", "TIE"}
    assert set(change.deenergised_nodes) == FEEDER1_DOWN | {"F2_3", "F2_4"}
    assert change.energised_nodes == ()
    assert partition(topology) == partition(TopologyProcessor(model))
    assert topology.sync_from_model().switches == ()
    event = change.to_event(time_s=1.0)
    assert isinstance(event, TopologyChanged) and TopologyChanged in ALL_EVENT_TYPES
    assert event.deenergised == change.deenergised_nodes and event.islands == 2 and event.time == 1.0


def test_three_winding_transformer_and_parallel_switches():
    model = NetworkModel("t3")
    for name in "ABCD":
        model.add(ConnectivityNode(name))
    model.connect(model.add(EnergySource("S")), "A")
    model.connect(model.add(PowerTransformer("T3")), "A", "B", "C")
    model.connect(model.add(Breaker("Q1")), "C", "D")
    model.connect(model.add(Breaker("Q2")), "C", "D")
    topology = TopologyProcessor(model)
    assert topology.island_count == 1
    assert topology.loops() == [("Q2", "Q1")]  # the parallel breakers, not the transformer
    assert not topology.set_switch("Q1", True).energisation_changed
    assert topology.set_switch("Q2", True).deenergised_nodes == ("D",)
    assert topology.trace_upstream("C").equipment == ("T3", "S")


def test_opening_a_three_terminal_switch_splits_the_island_in_three():
    model = NetworkModel("star")
    for name in "ABCDE":
        model.add(ConnectivityNode(name))
    model.connect(model.add(EnergySource("S")), "A")
    model.connect(model.add(LoadBreakSwitch("X")), "A", "B", "C")
    model.connect(model.add(ACLineSegment("L1")), "C", "D")
    model.connect(model.add(ACLineSegment("L2")), "B", "E")
    topology = TopologyProcessor(model)
    change = topology.set_switch("X", True)
    assert change.island_count == 3 and set(change.deenergised_nodes) == {"B", "C", "D", "E"}
    assert partition(topology) == {frozenset("A"), frozenset("BE"), frozenset("CD")}
    assert set(topology.set_switch("X", False).energised_nodes) == {"B", "C", "D", "E"}
    assert topology.island_count == 1

def test_errors_name_the_object():
    topology = TopologyProcessor(mv_ring())
    with pytest.raises(ModelError, match="L1_1"):
        topology.set_switch("L1_1", True)
    with pytest.raises(ModelError, match="nowhere"):
        topology.island_of("nowhere")
    with pytest.raises(ModelError, match="nowhere"):
        topology.trace_upstream("nowhere")


# -- property: incremental updates equal a full rebuild -------------------------------------------


@st.composite
def switching_cases(draw):
    n = draw(st.integers(2, 24))
    tree = [(draw(st.integers(0, i - 1)), i, draw(st.booleans())) for i in range(1, n)]  # (parent, child, is switch)
    extra = draw(st.lists(st.lists(st.integers(0, n - 1), min_size=2, max_size=3), max_size=6))
    sources = draw(st.lists(st.integers(0, n - 1), max_size=3))
    model = NetworkModel("random")
    for i in range(n):
        model.add(ConnectivityNode(f"N{i}"))
    for j, node in enumerate(sources):
        model.connect(model.add(EnergySource(f"S{j}", in_service=draw(st.booleans()) or j == 0)), f"N{node}")
    for parent, child, is_switch in tree:
        cls = Breaker if is_switch else ACLineSegment
        eq = model.add(cls(f"E{child}", **({"open": draw(st.booleans())} if is_switch else {})))
        model.connect(eq, f"N{parent}", f"N{child}")
        model.connect(model.add(EnergyConsumer(f"LD{child}")), f"N{child}")
    for k, nodes in enumerate(extra):  # ties, parallel switches, self-loops, a three-terminal "switch"
        eq = model.add(LoadBreakSwitch(f"X{k}", open=draw(st.booleans()), in_service=draw(st.integers(0, 5)) > 0))
        model.connect(eq, *(f"N{i}" for i in nodes))
    switches = [s.mrid for s in model.switches()]
    steps = st.one_of(
        st.tuples(st.just("set"), st.sampled_from(switches), st.booleans()),
        st.tuples(st.just("sync"), st.lists(st.tuples(st.sampled_from(switches), st.booleans()), max_size=4)),
    ) if switches else st.nothing()
    operations = draw(st.lists(steps, min_size=5, max_size=30)) if switches else []
    return model, operations


def snapshot(topology: TopologyProcessor):
    model = topology.model
    return {
        "islands": partition(topology),
        "energised": set(topology.energised_nodes()),
        "deenergised_equipment": set(topology.deenergised_equipment()),
        "upstream": {n: topology.trace_upstream(n) for n in model.node_ids()},
        "downstream": {n: topology.trace_downstream(n) for n in model.node_ids()[:5]},
        "feeders": {n: topology.feeder_of(n) for n in model.node_ids()},
        "loops": len(topology.loops()),
    }


def check_traces(topology: TopologyProcessor, state) -> None:
    """Upstream paths run over conducting branches to a source; downstream = nodes whose path passes through."""
    sources = {eq.mrid: topology.model.nodes_of(eq)[0] for eq in topology.model.of_type(EnergySource) if eq.in_service}
    for node, up in state["upstream"].items():
        if node not in state["energised"]:
            assert up.nodes == () and up.equipment == ()
            continue
        assert up.nodes[0] == node and up.equipment[-1] in sources and sources[up.equipment[-1]] == up.nodes[-1]
        for a, b, branch in zip(up.nodes, up.nodes[1:], up.equipment, strict=False):
            assert {a, b} <= set(topology.model.nodes_of(branch)) and not getattr(topology.model.get(branch), "open", False)
    for node, down in state["downstream"].items():
        expected = {m for m, up in state["upstream"].items() if node in up.nodes}
        assert set(down.nodes) == expected


def cyclomatic_number(topology: TopologyProcessor) -> int:
    edges = sum(len(topology._eq_nodes[eq]) - 1 for eq, on in topology._active.items() if on)
    return edges - len(topology.model.node_ids()) + topology.island_count


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(switching_cases())
def test_incremental_updates_equal_a_full_rebuild(case):
    model, operations = case
    topology = TopologyProcessor(model)
    before = snapshot(topology)  # also fills the lazy caches, so their invalidation is tested
    check_traces(topology, before)
    for operation in operations:
        if operation[0] == "set":
            _, mrid, state = operation
            change = topology.set_switch(mrid, state)
        else:
            for mrid, state in operation[1]:
                model.get(mrid).open = state
            change = topology.sync_from_model()
        after = snapshot(topology)
        rebuilt = TopologyProcessor(model)
        assert after == snapshot(rebuilt)
        assert after["loops"] == cyclomatic_number(topology)
        check_traces(topology, after)
        assert set(change.energised_nodes) == after["energised"] - before["energised"]
        assert set(change.deenergised_nodes) == before["energised"] - after["energised"]
        assert set(change.deenergised_equipment) == after["deenergised_equipment"] - before["deenergised_equipment"]
        assert set(change.energised_equipment) == before["deenergised_equipment"] - after["deenergised_equipment"]
        assert change.island_count == rebuilt.island_count
        for mrid in {s.mrid for s in model.switches()}:
            assert topology.switch_open(mrid) == model.get(mrid).open
        before = after
