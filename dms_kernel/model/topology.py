"""Topology processor: energised islands, tracing, feeder membership and loops from switch states.

The processor builds a node-breaker graph of a :class:`~dms_kernel.model.network.NetworkModel` once:

* **vertices** are the node mRIDs (``model.node_ids()``: ConnectivityNodes, or TopologicalNodes in
  bus-branch models);
* **branches** are in-service conducting equipment with connected terminals on two or more distinct
  nodes (ACLineSegment, PowerTransformer, the Switch family, ...). A branch joins *all* its nodes
  (a three-winding transformer joins its three end nodes; for loop reporting it counts as a star
  from its first end, so it does not form a loop by itself). A switch branch conducts only while
  closed (``Switch.open`` False). Equipment with ``in_service`` False and terminals with
  ``connected`` False are left out;
* one-terminal equipment (EnergyConsumer, EnergySource, shunts, PowerElectronicsConnection,
  SynchronousMachine) is attached to its node.

**Energised**: an island (connected component over conducting branches) is energised when it holds
the node of an in-service source: an EnergySource by default, SynchronousMachine too when passed in
``source_types``. Equipment is energised when it is in service and at least one of its connected
terminals is on an energised node (so an open switch with one live side counts as energised; a load
downstream of it does not). Out-of-service equipment is always de-energised.

**Incremental update**: :meth:`TopologyProcessor.set_switch` changes one switch without rebuilding:

* closing merges the islands of the switch's nodes, relabelling the smaller into the larger
  (cost O(smaller island));
* opening runs an alternating bidirectional breadth-first search from both switch nodes within the
  island, avoiding the switch, and stops when the two searches meet (the switch was not a bridge:
  no split) or when one search runs out of nodes (that side is a new island and only it is
  relabelled). Cost O(smaller side) for a bridge; for a non-bridge, at most twice the size of the
  smaller of the two searches until they meet.

Energisation is kept as a count of sources per island, updated on merge and split.

**Caches** (direction trees, feeder membership, loops) are derived lazily: a direction tree is
computed per island on the first trace query and dropped when that island changes (merge, split,
or a switch inside it closing or opening); feeder membership and the loop list are recomputed
on the first query after any change (both O(network)).

**Directions**: a multi-source breadth-first search from the island's source nodes over conducting
branches gives each energised node a parent (the node one hop nearer a source, and the branch to
it). Upstream of a node is the path of parents back to the source; downstream is the subtree of the
node. In a meshed island this is the shortest-hop tree (ties broken by model order): each node is fed
by the nearest source path. De-energised islands have no direction: traces from them are empty.

**Feeders**: a feeder starts at a head: ``(feeder id, head equipment, head node)``.

* With Feeder objects in the model, each Feeder's ``normal_head_terminal`` gives the head: the
  terminal's equipment and node; the head terminal must be the *substation-side* terminal (e.g. the
  bus-side terminal of the feeder breaker). Feeder id = the Feeder's mRID.
* Without Feeder objects, the *source buses* are the nodes of in-service sources and every node
  reached from them through in-service PowerTransformers only (an HV/MV substation); each other
  in-service branch attached to a source bus and leaving it (not a bus coupler between two source
  buses) is a head, its mRID the feeder id.

From every conducting head equipment a multi-source breadth-first search runs over conducting
branches, never entering a head node or a source node. A node belongs to the feeder whose search
reaches it first (fewest hops from the head; ties by head order). So when a feeder breaker is
opened and a tie closed, the nodes move to the feeder that now feeds them; with a tie closed while
both feeders are fed (meshed), each feeder gets the nodes nearer to its head. Head and source nodes
belong to no feeder.

**Loops**: a spanning forest of the conducting branches; every branch not in the forest closes one
fundamental loop (cycle basis), reported as the branch mRIDs around it. Parallel branches between
the same two nodes form a loop of two.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable

import attrs

from .elements import ConductingEquipment, EnergySource, Feeder, IdentifiedObject, PowerTransformer, Switch, Terminal
from .network import ModelError, NetworkModel

__all__ = ["TopologyProcessor", "TopologyChange", "Trace"]


@attrs.frozen
class TopologyChange:
    """What one or more switching operations changed.

    :param switches: switch mRIDs whose state changed.
    :param energised_nodes: node mRIDs newly energised.
    :param deenergised_nodes: node mRIDs newly de-energised.
    :param energised_equipment: equipment mRIDs newly energised.
    :param deenergised_equipment: equipment mRIDs newly de-energised.
    :param changed_islands: ids of islands whose node set changed (merged away, split off, grown).
    :param island_count: number of islands afterwards.
    """

    switches: tuple[str, ...] = ()
    energised_nodes: tuple[str, ...] = ()
    deenergised_nodes: tuple[str, ...] = ()
    energised_equipment: tuple[str, ...] = ()
    deenergised_equipment: tuple[str, ...] = ()
    changed_islands: tuple[int, ...] = ()
    island_count: int = 0

    @property
    def energisation_changed(self) -> bool:
        return bool(self.energised_nodes or self.deenergised_nodes)

    def then(self, later: TopologyChange) -> TopologyChange:
        """The net change of ``self`` followed by ``later`` (a node energised then de-energised is no change)."""

        def net(up1: tuple[str, ...], down1: tuple[str, ...], up2: tuple[str, ...], down2: tuple[str, ...]):
            s_up1, s_down1, s_up2, s_down2 = set(up1), set(down1), set(up2), set(down2)
            up = [x for x in up1 if x not in s_down2] + [x for x in up2 if x not in s_down1]
            down = [x for x in down1 if x not in s_up2] + [x for x in down2 if x not in s_up1]
            return tuple(up), tuple(down)

        nodes_up, nodes_down = net(self.energised_nodes, self.deenergised_nodes, later.energised_nodes, later.deenergised_nodes)
        eq_up, eq_down = net(
            self.energised_equipment, self.deenergised_equipment, later.energised_equipment, later.deenergised_equipment
        )
        return TopologyChange(
            switches=tuple(dict.fromkeys(self.switches + later.switches)),
            energised_nodes=nodes_up,
            deenergised_nodes=nodes_down,
            energised_equipment=eq_up,
            deenergised_equipment=eq_down,
            changed_islands=tuple(dict.fromkeys(self.changed_islands + later.changed_islands)),
            island_count=later.island_count,
        )

    def to_event(self, time_s: float | None = None):
        """This change as a :class:`dms_hookspecs.TopologyChanged` event to publish."""
        from dms_hookspecs import TopologyChanged

        return TopologyChanged(
            energised=self.energised_nodes,
            deenergised=self.deenergised_nodes,
            switches=self.switches,
            islands=self.island_count,
            time=time.time() if time_s is None else time_s,
        )


@attrs.frozen
class Trace:
    """Result of an upstream or downstream trace.

    :param start: the node or equipment mRID traced from.
    :param nodes: node mRIDs: upstream from the start node to the source node; downstream in
        breadth-first order away from the source.
    :param equipment: upstream: the branches on the path and the source(s) at its end; downstream:
        every equipment with a terminal on a downstream node (the start element and the branch
        feeding the start node left out).
    """

    start: str
    nodes: tuple[str, ...] = ()
    equipment: tuple[str, ...] = ()


def _mrid(item: IdentifiedObject | str) -> str:
    return item if isinstance(item, str) else item.mrid


class TopologyProcessor:
    """Islands, energisation, tracing, feeders and loops of a network model (see the module docs).

    :param model: the network model; switch states are read from ``Switch.open``.
    :param source_types: equipment classes that energise their node (EnergySource by default;
        add ``SynchronousMachine`` to treat machines as sources).
    """

    def __init__(self, model: NetworkModel, source_types: Iterable[type] = (EnergySource,)) -> None:
        self.model = model
        self.source_types = tuple(source_types)
        self.rebuild()

    # -- building ------------------------------------------------------------------------

    def rebuild(self) -> None:
        """Build everything from the model (switch states, in-service flags, terminals)."""
        model = self.model
        self._node_list: list[str] = model.node_ids()
        self._adj: dict[str, list[str]] = {n: [] for n in self._node_list}  # node -> branch mRIDs
        self._nbrs: dict[str, list[tuple[str, str]]] = {n: [] for n in self._node_list}  # node -> (branch, other node)
        self._attached: dict[str, list[str]] = {n: [] for n in self._node_list}  # node -> in-service equipment
        self._single: dict[str, list[str]] = {n: [] for n in self._node_list}  # node -> one-terminal equipment
        self._eq_nodes: dict[str, tuple[str, ...]] = {}  # in-service equipment -> its distinct connected nodes
        self._active: dict[str, bool] = {}  # branch -> conducting
        self._switch_open: dict[str, bool] = {}  # every switch, in service or not
        self._source_count: dict[str, int] = {}  # node -> number of sources on it
        self._source_eq: dict[str, list[str]] = collections.defaultdict(list)  # node -> source mRIDs
        self._transformers: set[str] = set()
        objects = model.objects
        for eq in model.of_type(ConductingEquipment):
            if isinstance(eq, Switch):
                self._switch_open[eq.mrid] = bool(eq.open)
            if not eq.in_service:
                continue
            nodes: list[str] = []
            for terminal_id in eq.terminals:
                terminal = objects.get(terminal_id)
                if not isinstance(terminal, Terminal) or not terminal.connected:
                    continue
                node = terminal.connectivity_node or terminal.topological_node
                if node is None:
                    continue
                if node not in self._adj:
                    self._adj[node] = []
                    self._nbrs[node] = []
                    self._attached[node] = []
                    self._single[node] = []
                    self._node_list.append(node)
                if node not in nodes:
                    nodes.append(node)
            self._eq_nodes[eq.mrid] = node_tuple = tuple(nodes)
            for node in node_tuple:
                self._attached[node].append(eq.mrid)
            if len(node_tuple) == 1:
                self._single[node_tuple[0]].append(eq.mrid)
            if len(node_tuple) >= 2:
                for node in node_tuple:
                    self._adj[node].append(eq.mrid)
                if len(node_tuple) == 2:
                    a, b = node_tuple
                    self._nbrs[a].append((eq.mrid, b))
                    self._nbrs[b].append((eq.mrid, a))
                else:
                    for node in node_tuple:
                        self._nbrs[node].extend([(eq.mrid, other) for other in node_tuple if other != node])
                self._active[eq.mrid] = not (isinstance(eq, Switch) and eq.open)
                if isinstance(eq, PowerTransformer):
                    self._transformers.add(eq.mrid)
            if isinstance(eq, self.source_types) and node_tuple:
                node = node_tuple[0]
                self._source_count[node] = self._source_count.get(node, 0) + 1
                self._source_eq[node].append(eq.mrid)
        self._source_nodes: list[str] = list(self._source_count)

        # islands by breadth-first search
        self._island: dict[str, int] = {}
        self._members: dict[int, set[str]] = {}
        self._island_sources: dict[int, int] = {}
        self._next_id = 0
        for start in self._node_list:
            if start in self._island:
                continue
            component = self._component(start)
            self._new_island(component)
        self._trees: dict[int, tuple[dict, dict, dict]] = {}
        self._feeder_cache: dict[str, str] | None = None
        self._loop_cache: list[tuple[str, ...]] | None = None
        self._heads = self._find_heads()

    def _component(self, start: str) -> set[str]:
        nbrs, active = self._nbrs, self._active
        seen = {start}
        stack = [start]
        while stack:
            for eq, other in nbrs[stack.pop()]:
                if other not in seen and active[eq]:
                    seen.add(other)
                    stack.append(other)
        return seen

    def _new_island(self, nodes: set[str]) -> int:
        island_id = self._next_id
        self._next_id += 1
        island = self._island
        for node in nodes:
            island[node] = island_id
        self._members[island_id] = nodes
        counts = self._source_count
        self._island_sources[island_id] = sum(counts.get(n, 0) for n in nodes) if counts else 0
        return island_id

    def _find_heads(self) -> list[tuple[str, str, str]]:
        heads: list[tuple[str, str, str]] = []
        feeders = self.model.of_type(Feeder)
        if feeders:
            for feeder in feeders:
                terminal = self.model.objects.get(feeder.normal_head_terminal or "")
                if not isinstance(terminal, Terminal):
                    continue
                node = terminal.connectivity_node or terminal.topological_node
                if node is not None and terminal.conducting_equipment in self._active:
                    heads.append((feeder.mrid, terminal.conducting_equipment, node))
            return heads
        buses = dict.fromkeys(self._source_nodes)
        queue = list(buses)
        while queue:
            node = queue.pop()
            for eq in self._adj[node]:
                if eq in self._transformers:
                    for other in self._eq_nodes[eq]:
                        if other not in buses:
                            buses[other] = None
                            queue.append(other)
        for bus in buses:
            for eq in self._adj[bus]:
                if eq in self._transformers or all(n in buses for n in self._eq_nodes[eq]):
                    continue
                heads.append((eq, eq, bus))
        return heads

    # -- resolving -----------------------------------------------------------------------

    def _kind(self, item: IdentifiedObject | str) -> tuple[str, str]:
        mrid = _mrid(item)
        if mrid in self._island:
            return "node", mrid
        if mrid in self.model.objects and isinstance(self.model.objects[mrid], ConductingEquipment):
            return "equipment", mrid
        raise ModelError(f"{mrid!r} is neither a node nor conducting equipment of model {self.model.name!r}")

    # -- islands and energisation -----------------------------------------------------------

    @property
    def island_count(self) -> int:
        return len(self._members)

    def islands(self) -> list[frozenset[str]]:
        """Node sets of all islands (isolated nodes are islands of one)."""
        return [frozenset(nodes) for nodes in self._members.values()]

    def island_ids(self) -> dict[str, int]:
        """Island id per node (ids are stable between changes that do not touch the island)."""
        return dict(self._island)

    def island_of(self, node: IdentifiedObject | str) -> int:
        mrid = _mrid(node)
        try:
            return self._island[mrid]
        except KeyError:
            raise ModelError(f"unknown node {mrid!r} in model {self.model.name!r}") from None

    def island_nodes(self, island_id: int) -> frozenset[str]:
        return frozenset(self._members[island_id])

    def _node_energised(self, node: str) -> bool:
        return self._island_sources[self._island[node]] > 0

    def _eq_energised(self, mrid: str) -> bool:
        nodes = self._eq_nodes.get(mrid)
        if not nodes:
            return False
        island, sources = self._island, self._island_sources
        return any(sources[island[n]] > 0 for n in nodes)

    def energised(self, item: IdentifiedObject | str) -> bool:
        """Whether a node or equipment (mRID or object) is energised."""
        kind, mrid = self._kind(item)
        return self._node_energised(mrid) if kind == "node" else self._eq_energised(mrid)

    def energised_nodes(self) -> list[str]:
        return [n for n in self._node_list if self._node_energised(n)]

    def deenergised_nodes(self) -> list[str]:
        return [n for n in self._node_list if not self._node_energised(n)]

    def deenergised_equipment(self) -> list[str]:
        """Conducting equipment not energised, out-of-service equipment included."""
        return [eq.mrid for eq in self.model.of_type(ConductingEquipment) if not self._eq_energised(eq.mrid)]

    def switch_open(self, mrid: str) -> bool:
        """The switch state the processor works with."""
        return self._switch_open[mrid]

    # -- incremental update -----------------------------------------------------------------

    def set_switch(self, mrid: str, open: bool) -> TopologyChange:  # noqa: A002 - CIM name
        """Open or close a switch and update islands and energisation incrementally.

        Also writes ``Switch.open`` of the model object, so model and processor agree.

        :raises ModelError: ``mrid`` is not a switch of the model.
        """
        switch = self.model.get(mrid, Switch)
        open = bool(open)
        switch.open = open
        if self._switch_open.get(mrid) == open:
            return TopologyChange(island_count=self.island_count)
        self._switch_open[mrid] = open
        if mrid not in self._active:  # out of service, or not between two nodes
            return TopologyChange(switches=(mrid,), island_count=self.island_count)
        self._feeder_cache = None
        self._loop_cache = None
        if open:
            up, down, changed = self._deactivate(mrid)
        else:
            up, down, changed = self._activate(mrid)
        return self._change((mrid,), up, down, changed)

    def sync_from_model(self) -> TopologyChange:
        """Apply every ``Switch.open`` of the model that differs from the processor's state, incrementally."""
        change = TopologyChange(island_count=self.island_count)
        for mrid, state in list(self._switch_open.items()):
            actual = bool(self.model.objects[mrid].open)  # type: ignore[attr-defined]
            if actual != state:
                change = change.then(self.set_switch(mrid, actual))
        return change

    def _change(self, switches: tuple[str, ...], up: list[str], down: list[str], changed: list[int]) -> TopologyChange:
        return TopologyChange(
            switches=switches,
            energised_nodes=tuple(up),
            deenergised_nodes=tuple(down),
            energised_equipment=tuple(self._flipped_equipment(up, True)) if up else (),
            deenergised_equipment=tuple(self._flipped_equipment(down, False)) if down else (),
            changed_islands=tuple(changed),
            island_count=self.island_count,
        )

    def _flipped_equipment(self, nodes: list[str], went_up: bool) -> list[str]:
        """Equipment attached to ``nodes`` whose energisation flipped, when all ``nodes`` flipped one way.

        De-energised: all its nodes are dead now. Energised: all its nodes not in ``nodes`` were
        (and still are) dead, so it was dead before.
        """
        flipped = set(nodes) if went_up else ()
        eq_nodes, island, sources, adj, single = self._eq_nodes, self._island, self._island_sources, self._adj, self._single
        result: list[str] = []
        seen: set[str] = set()
        for node in nodes:
            result.extend(single[node])
            for eq in adj[node]:
                if eq in seen:
                    continue
                seen.add(eq)
                if all(n in flipped or sources[island[n]] == 0 for n in eq_nodes[eq]):
                    result.append(eq)
        return result

    def _activate(self, mrid: str) -> tuple[list[str], list[str], list[int]]:
        self._active[mrid] = True
        ids = list(dict.fromkeys(self._island[n] for n in self._eq_nodes[mrid]))
        if len(ids) == 1:
            self._trees.pop(ids[0], None)  # a loop closed: directions may change
            return [], [], []
        members, sources = self._members, self._island_sources
        ids.sort(key=lambda i: len(members[i]), reverse=True)
        keep = ids[0]
        total = sum(sources[i] for i in ids)
        up: list[str] = []
        if total > 0 and sources[keep] == 0:
            up.extend(members[keep])
        kept = members[keep]
        island = self._island
        for other in ids[1:]:
            moved = members.pop(other)
            if total > 0 and sources[other] == 0:
                up.extend(moved)
            for node in moved:
                island[node] = keep
            kept |= moved
            del sources[other]
            self._trees.pop(other, None)
        sources[keep] = total
        self._trees.pop(keep, None)
        return up, [], ids

    def _deactivate(self, mrid: str) -> tuple[list[str], list[str], list[int]]:
        self._active[mrid] = False
        nodes = self._eq_nodes[mrid]
        old = self._island[nodes[0]]
        self._trees.pop(old, None)
        was_energised = self._island_sources[old] > 0
        if len(nodes) == 2:
            side = self._split_side(nodes[0], nodes[1])
            if side is None:
                return [], [], []
            new_parts = [side]
        else:  # equipment joining three or more nodes: relabel the whole island
            remaining = set(self._members[old])
            parts = []
            while remaining:
                part = self._component(next(iter(remaining)))
                remaining -= part
                parts.append(part)
            if len(parts) == 1:
                return [], [], []
            parts.sort(key=len, reverse=True)
            new_parts = parts[1:]
        old_members = self._members[old]
        changed = [old]
        for part in new_parts:
            old_members -= part
            new_id = self._new_island(part)
            self._island_sources[old] -= self._island_sources[new_id]
            changed.append(new_id)
        down: list[str] = []
        if was_energised:
            for island_id in changed:
                if self._island_sources[island_id] == 0:
                    down.extend(self._members[island_id])
        return [], down, changed

    def _split_side(self, u: str, v: str) -> set[str] | None:
        """Nodes on the smaller side if ``u`` and ``v`` are no longer connected, else None."""
        nbrs, active = self._nbrs, self._active
        seen_u, seen_v = {u}, {v}
        queue_u, queue_v = collections.deque((u,)), collections.deque((v,))
        while queue_u and queue_v:
            if len(seen_u) <= len(seen_v):
                queue, seen, other = queue_u, seen_u, seen_v
            else:
                queue, seen, other = queue_v, seen_v, seen_u
            for eq, nxt in nbrs[queue.popleft()]:
                if nxt not in seen and active[eq]:
                    if nxt in other:
                        return None
                    seen.add(nxt)
                    queue.append(nxt)
        return seen_u if not queue_u else seen_v

    # -- directions and tracing -------------------------------------------------------------

    def _tree(self, island_id: int) -> tuple[dict, dict, dict]:
        """``(parent, depth, children)`` of an island: parent[node] = (parent node, branch) or None at a source.

        ``children`` is filled on the first downstream trace (see :meth:`_children`).
        """
        tree = self._trees.get(island_id)
        if tree is not None:
            return tree
        island = self._island
        roots = [n for n in self._source_nodes if island[n] == island_id]
        parent: dict[str, tuple[str, str] | None] = dict.fromkeys(roots)
        depth = dict.fromkeys(roots, 0)
        nbrs, active = self._nbrs, self._active
        order = list(roots)
        for node in order:  # grows while iterating: breadth-first
            d = depth[node] + 1
            for eq, nxt in nbrs[node]:
                if nxt not in parent and active[eq]:
                    parent[nxt] = (node, eq)
                    depth[nxt] = d
                    order.append(nxt)
        tree = (parent, depth, {})
        self._trees[island_id] = tree
        return tree

    @staticmethod
    def _children(tree: tuple[dict, dict, dict]) -> dict[str, list[str]]:
        parent, _, children = tree
        if not children and len(parent) > 1:
            for node, step in parent.items():  # breadth-first order, so children lists are too
                if step is not None:
                    children.setdefault(step[0], []).append(node)
        return children

    def depth(self, node: str) -> int | None:
        """Hops from the nearest source, None if de-energised."""
        return self._tree(self.island_of(node))[1].get(node)

    def _ends(self, kind: str, mrid: str) -> tuple[str | None, list[str]]:
        """(upstream node, downstream start nodes) of a node or equipment."""
        if kind == "node":
            if not self._node_energised(mrid):
                return None, []
            return mrid, [mrid]
        nodes = [n for n in self._eq_nodes.get(mrid, ()) if self._node_energised(n)]
        if not nodes:
            return None, []
        depths = {n: self._tree(self._island[n])[1][n] for n in nodes}
        near = min(nodes, key=depths.__getitem__)
        if len(self._eq_nodes[mrid]) == 1:
            return near, [near] if mrid in self._source_eq.get(near, ()) else []
        if not self._active.get(mrid, False):
            return near, []
        return near, [n for n in nodes if depths[n] > depths[near]]

    def trace_upstream(self, item: IdentifiedObject | str) -> Trace:
        """Path from a node or equipment back to the source feeding it (empty if de-energised)."""
        kind, mrid = self._kind(item)
        start, _ = self._ends(kind, mrid)
        if start is None:
            return Trace(mrid)
        parent = self._tree(self._island[start])[0]
        nodes = [start]
        equipment: list[str] = []
        node = start
        while (step := parent[node]) is not None:
            node, eq = step
            equipment.append(eq)
            nodes.append(node)
        equipment.extend(self._source_eq.get(node, ()))
        return Trace(mrid, tuple(nodes), tuple(e for e in equipment if e != mrid))

    def trace_downstream(self, item: IdentifiedObject | str) -> Trace:
        """Everything fed through a node or equipment (empty if de-energised or without direction)."""
        kind, mrid = self._kind(item)
        _, starts = self._ends(kind, mrid)
        if not starts:
            return Trace(mrid)
        tree = self._tree(self._island[starts[0]])
        parent, children = tree[0], self._children(tree)
        nodes: list[str] = []
        seen: set[str] = set()
        for start in starts:
            if start in seen:
                continue
            seen.add(start)
            nodes.append(start)
            i = len(nodes) - 1
            while i < len(nodes):
                for child in children.get(nodes[i], ()):
                    if child not in seen:
                        seen.add(child)
                        nodes.append(child)
                i += 1
        skip = {mrid}
        for start in starts:
            if parent[start] is not None:
                skip.add(parent[start][1])
        equipment = dict.fromkeys(eq for node in nodes for eq in self._attached[node] if eq not in skip)
        return Trace(mrid, tuple(nodes), tuple(equipment))

    # -- feeders -----------------------------------------------------------------------------

    def feeder_heads(self) -> list[tuple[str, str, str]]:
        """``(feeder id, head equipment mRID, head node)`` per feeder (see module docs)."""
        return list(self._heads)

    def _feeder_map(self) -> dict[str, str]:
        if self._feeder_cache is not None:
            return self._feeder_cache
        blocked = {head_node for _, _, head_node in self._heads} | set(self._source_nodes)
        owner: dict[str, str] = {}
        queue: collections.deque[str] = collections.deque()
        nbrs, active, eq_nodes = self._nbrs, self._active, self._eq_nodes
        for feeder, eq, head_node in self._heads:
            if not active.get(eq, False):
                continue
            for node in eq_nodes[eq]:
                if node != head_node and node not in blocked and node not in owner:
                    owner[node] = feeder
                    queue.append(node)
        while queue:
            node = queue.popleft()
            feeder = owner[node]
            for eq, nxt in nbrs[node]:
                if nxt not in owner and active[eq] and nxt not in blocked:
                    owner[nxt] = feeder
                    queue.append(nxt)
        self._feeder_cache = owner
        return owner

    def feeder_of(self, item: IdentifiedObject | str) -> str | None:
        """The feeder a node (or equipment, through its nodes) belongs to now, or None."""
        kind, mrid = self._kind(item)
        owner = self._feeder_map()
        if kind == "node":
            return owner.get(mrid)
        for node in self._eq_nodes.get(mrid, ()):
            if node in owner:
                return owner[node]
        return None

    def feeder_nodes(self, feeder: str) -> list[str]:
        return [node for node, owner in self._feeder_map().items() if owner == feeder]

    # -- loops ---------------------------------------------------------------------------------

    def loops(self) -> list[tuple[str, ...]]:
        """Independent loops (a cycle basis) of conducting branches, each as its branch mRIDs."""
        if self._loop_cache is not None:
            return list(self._loop_cache)
        root: dict[str, str] = {}

        def find(x: str) -> str:
            while root.get(x, x) != x:
                root[x] = root.get(root[x], root[x])
                x = root[x]
            return x

        tree_adj: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        chords: list[tuple[str, str, str]] = []
        for eq, conducting in self._active.items():
            if not conducting:
                continue
            nodes = self._eq_nodes[eq]
            first = nodes[0]
            for other in nodes[1:]:
                a, b = find(first), find(other)
                if a == b:
                    chords.append((first, other, eq))
                else:
                    root[a] = b
                    tree_adj[first].append((other, eq))
                    tree_adj[other].append((first, eq))
        parent: dict[str, tuple[str, str] | None] = {}
        depth: dict[str, int] = {}
        for start in list(tree_adj):
            if start in parent:
                continue
            parent[start] = None
            depth[start] = 0
            order = [start]
            for node in order:
                for nxt, eq in tree_adj[node]:
                    if nxt not in parent:
                        parent[nxt] = (node, eq)
                        depth[nxt] = depth[node] + 1
                        order.append(nxt)
        loops: list[tuple[str, ...]] = []
        for u, v, eq in chords:
            left: list[str] = []
            right: list[str] = []
            a, b = u, v
            while a != b:
                if depth.get(a, 0) >= depth.get(b, 0):
                    a, branch = parent[a]  # type: ignore[misc]
                    left.append(branch)
                else:
                    b, branch = parent[b]  # type: ignore[misc]
                    right.append(branch)
            loops.append((eq, *left, *reversed(right)))
        self._loop_cache = loops
        return list(loops)
