"""Test networks with recloser–fuse–relay chains, and settings that coordinate on them."""

from __future__ import annotations

from dms_kernel.model import ACLineSegment, Breaker, ConnectivityNode, Fuse, Recloser, Terminal
from dms_pandapower.examples import load_example
from dms_protection.curves import TableCurve
from dms_protection.settings import DeviceSettings, FuseCurves, Instantaneous, Overcurrent
from dms_protection.settings import Recloser as RecloserSequence


def insert_switch(model, line_name: str, cls, mrid: str, name: str, at_node: str | None = None):  # noqa: ANN001
    """Insert a switch of ``cls`` at one end of a line (its first terminal, or the one at ``at_node``)."""
    line = model.by_name(line_name, ACLineSegment)
    terminals = model.terminals(line)
    terminal = next(t for t in terminals if at_node is None or model.node_of(t) == at_node)
    old = model.node_of(terminal)
    old_node = model.get(old, ConnectivityNode)
    node = model.add(ConnectivityNode(f"{mrid}_node", name=f"{name} node", container=old_node.container))
    terminal.connectivity_node = node.mrid
    switch = model.add(cls(mrid, name=name, base_voltage=line.base_voltage))
    model.connect(switch, old, node.mrid)
    model.invalidate()
    return switch


FUSE_100 = FuseCurves(
    100.0,
    TableCurve([(200, 300), (300, 10), (500, 1.0), (1000, 0.2), (3000, 0.05), (10000, 0.02)]),
    TableCurve([(200, 330), (300, 11.5), (500, 1.2), (1000, 0.25), (3000, 0.065), (10000, 0.03)]),
    "100A",
)


def recloser_settings(device: str, pickup: float = 400.0) -> DeviceSettings:
    return DeviceSettings(device, "recloser", recloser=RecloserSequence(
        fast=Overcurrent(pickup, "iec_extremely_inverse", 0.01, name="PTOC2"),
        slow=Overcurrent(pickup, "iec_very_inverse", 0.3, name="PTOC3"),
        shots=3, fast_shots=1, dead_times_s=(0.5, 10.0),
    ), ied="IED2LD0")


def relay_settings(device: str, pickup: float = 600.0, tms: float = 0.3) -> DeviceSettings:
    return DeviceSettings(device, "relay", overcurrent=[Overcurrent(pickup, "iec_standard_inverse", tms)],
                          instantaneous=[Instantaneous(pickup * 25, 0.05)], ied="IED1LD0")
