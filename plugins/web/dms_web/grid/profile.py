"""Voltage profile along a feeder: distance from the substation against voltage.

:func:`feeder_profile` walks a feeder (see :func:`dms_web.grid.network.feeders`) breadth-first
from its station-side head node over conducting branches (closed switches, in service) within
the feeder's nodes. The distance of a node is the sum of the ``length_km`` of the lines on the
path from the head node (transformers and switches add nothing), so it never decreases from a
node to the nodes it feeds. The voltage per node and phase comes from a power-flow or estimation
result (:func:`dms_web.grid.diagram.node_voltages`).

Output: ``feeder`` (id, name, head, head_node), ``points`` (``node``, ``name``, ``distance_km``,
``parent`` node or None, ``via`` the branch from the parent, ``vm_pu`` per phase or None,
``kv``), ``band`` ``[low, high]`` in pu, ``result`` (study, solver, converged, finished) or None.
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from dms_kernel.model import ACLineSegment, NetworkModel

from .diagram import node_voltages
from .network import FeederInfo, branches, conducts, feeders, node_kv

__all__ = ["feeder_list", "feeder_profile", "ProfileError"]


class ProfileError(LookupError):
    """The feeder is not in the model."""


def feeder_list(model: NetworkModel) -> list[dict[str, Any]]:
    """Every feeder: ``id``, ``name``, ``head`` (branch mRID), ``head_node``, ``nodes`` (count)."""
    return [
        {"id": f.id, "name": f.name, "head": f.head, "head_node": f.head_node, "nodes": len(f.nodes)}
        for f in feeders(model)
    ]


def _find(model: NetworkModel, feeder: str) -> FeederInfo:
    found = feeders(model)
    for info in found:
        if info.id == feeder:
            return info
    for info in found:
        if info.name.lower() == feeder.lower():
            return info
    raise ProfileError(f"no feeder {feeder!r} in model {model.name!r} (feeders: {', '.join(f.id for f in found) or 'none'})")


def feeder_profile(
    model: NetworkModel, feeder: str, result: Any = None, band: Sequence[float] = (0.9, 1.1)
) -> dict[str, Any]:
    """The voltage profile of ``feeder`` (its id or name).

    :raises ProfileError: no such feeder.
    """
    info = _find(model, feeder)
    members = set(info.nodes) | {info.head_node}
    adjacency: dict[str, list[tuple[Any, str]]] = collections.defaultdict(list)
    for eq, nodes in branches(model):
        if not conducts(eq):
            continue
        for a in nodes:
            if a in members:
                adjacency[a].extend((eq, b) for b in nodes if b != a and b in members)
    distance = {info.head_node: 0.0}
    parent: dict[str, tuple[str, str] | None] = {info.head_node: None}
    order = [info.head_node]
    queue = collections.deque([info.head_node])
    while queue:
        node = queue.popleft()
        for eq, other in adjacency[node]:
            if other in distance:
                continue
            if node == info.head_node and eq.mrid != info.head:
                continue  # leave the busbar only through this feeder's head
            step = eq.length_km if isinstance(eq, ACLineSegment) else 0.0
            distance[other] = distance[node] + float(step or 0.0)
            parent[other] = (node, eq.mrid)
            order.append(other)
            queue.append(other)
    voltages = node_voltages(result)
    kv = node_kv(model)
    points = []
    for node in order:
        obj = model.objects.get(node)
        step = parent[node]
        points.append(
            {
                "node": node,
                "name": getattr(obj, "name", "") or node,
                "distance_km": round(distance[node], 6),
                "parent": step[0] if step else None,
                "via": step[1] if step else None,
                "vm_pu": voltages.get(node),
                "kv": kv.get(node),
            }
        )
    meta = None
    if result is not None:
        meta = {
            "study": getattr(result, "study", None),
            "solver": getattr(result, "solver", None),
            "converged": bool(getattr(result, "converged", False)),
            "finished": getattr(result, "finished", None),
        }
    return {
        "feeder": {"id": info.id, "name": info.name, "head": info.head, "head_node": info.head_node},
        "points": points,
        "band": [float(band[0]), float(band[1])],
        "result": meta,
    }
