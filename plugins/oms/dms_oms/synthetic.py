"""Give an example network what an AMI outage study needs: protective devices, secondary
substations, customers and meters (for tests, benchmarks and demonstrations).

The example networks (``cigre_mv``, ``radial_<N>``) have feeder breakers and load-break switches
only; :func:`add_devices` inserts fuses, reclosers and sectionalisers at the upstream end of lines
and puts some consumers behind an MV/LV transformer; :func:`add_meters` sets customer counts and
assigns meters to consumers.
"""

from __future__ import annotations

import random
from typing import Any

from dms_kernel.model import elements as el

__all__ = ["insert_switch", "add_secondary_transformer", "add_devices", "add_meters"]


def _node_of(model: Any, terminal_id: str) -> str:
    terminal = model.get(terminal_id, el.Terminal)
    return terminal.connectivity_node or terminal.topological_node


def insert_switch(model: Any, line: str, cls: type[el.Switch], mrid: str, name: str = "", end: int = 1) -> el.Switch:
    """Insert a switch of class ``cls`` between a line's ``end`` terminal and its node."""
    segment = model.get(line, el.ConductingEquipment)
    terminal = model.get(segment.terminals[end - 1], el.Terminal)
    node = _node_of(model, terminal.mrid)
    middle = model.add(el.ConnectivityNode(f"{mrid}_node", name=f"{name or mrid} node"))
    terminal.connectivity_node = middle.mrid
    switch = model.add(cls(mrid, name=name or mrid))
    model.connect(switch, node, middle.mrid)
    model.invalidate()
    return switch


def add_secondary_transformer(model: Any, consumer: str, mrid: str, name: str = "") -> el.PowerTransformer:
    """Move a consumer behind an MV/LV transformer (a secondary substation) on a new LV node."""
    load = model.get(consumer, el.EnergyConsumer)
    terminal = model.get(load.terminals[0], el.Terminal)
    node = _node_of(model, terminal.mrid)
    lv = model.add(el.ConnectivityNode(f"{mrid}_lv", name=f"{name or mrid} LV"))
    terminal.connectivity_node = lv.mrid
    transformer = model.add(el.PowerTransformer(mrid, name=name or mrid))
    model.connect(transformer, node, lv.mrid)
    model.invalidate()
    return transformer


_CYCLE = (el.Fuse, el.Recloser, el.Fuse, el.Sectionaliser, None)


def add_devices(model: Any, *, transformer_every: int = 3) -> list[str]:
    """Insert a fuse, recloser or sectionaliser (in turn, every fifth line none) at the first
    terminal of every line, and put every ``transformer_every``-th consumer behind a secondary
    transformer. Returns the mRIDs of the devices added."""
    added: list[str] = []
    lines = model.of_type(el.ACLineSegment)
    for k, line in enumerate(lines):
        cls = _CYCLE[k % len(_CYCLE)]
        if cls is None:
            continue
        label = {el.Fuse: "fuse", el.Recloser: "recloser", el.Sectionaliser: "sectionaliser"}[cls]
        added.append(insert_switch(model, line.mrid, cls, f"{line.mrid}_{label}", f"{line.name or line.mrid} {label}").mrid)
    if transformer_every > 0:
        for k, consumer in enumerate(model.of_type(el.EnergyConsumer)):
            if k % transformer_every == 0:
                added.append(add_secondary_transformer(model, consumer.mrid, f"{consumer.mrid}_ss", f"{consumer.name or consumer.mrid} MV/LV").mrid)
    return added


def add_meters(model: Any, rng: random.Random, *, meters: tuple[int, int] = (2, 6), customers: tuple[int, int] = (10, 80)) -> dict[str, str]:
    """Give every consumer a customer count and between ``meters[0]`` and ``meters[1]`` smart
    meters (the AMI sample of its customers). Returns ``meter id → consumer mRID``."""
    table: dict[str, str] = {}
    for consumer in model.of_type(el.EnergyConsumer):
        consumer.customer_count = rng.randint(*customers)
        for k in range(min(rng.randint(*meters), consumer.customer_count)):
            table[f"{consumer.mrid}/m{k}"] = consumer.mrid
    return table
