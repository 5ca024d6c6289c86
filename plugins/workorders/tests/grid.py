"""A small feeder with CIM locations and customer counts, built in code for the tests."""

from __future__ import annotations

from dms_kernel.model import elements as el
from dms_kernel.model.network import NetworkModel

# Alexanderplatz, Berlin
SITE_LAT, SITE_LON = 52.5219, 13.4132


def feeder() -> NetworkModel:
    """``n0`` (infeed) —Q1 breaker— ``n1`` (loads L1, L2) —line Line 1-2— ``n2`` (load L3).

    Q1 sits at :data:`SITE_LAT`/:data:`SITE_LON`; its measurement feeds point ``Q1.pos``.
    Customers: L1 40, L2 not set (``customers_per_load``), L3 25.
    """
    m = NetworkModel("wo-feeder")
    for node in ("n0", "n1", "n2"):
        m.add(el.ConnectivityNode(node, name=node))
    m.add(el.Location("loc-q1", points=[(SITE_LON, SITE_LAT)], coordinate_system="WGS84"))
    m.add(el.Location("loc-line", points=[(13.40, 52.50), (13.42, 52.52)], coordinate_system="WGS84"))
    source = m.add(el.EnergySource("src", name="Grid", nominal_kv=20.0, voltage_kv=20.0))
    m.connect(source, "n0")
    q1 = m.add(el.Breaker("q1", name="Q1", location="loc-q1"))
    m.connect(q1, "n0", "n1")
    line = m.add(el.ACLineSegment("line12", name="Line 1-2", location="loc-line"))
    m.connect(line, "n1", "n2")
    for mrid, node, customers in (("L1", "n1", 40), ("L2", "n1", 0), ("L3", "n2", 25)):
        load = m.add(el.EnergyConsumer(mrid, name=f"Load {mrid}", p_mw=0.1, customer_count=customers))
        m.connect(load, node)
    m.add(el.Discrete("meas-q1", name="Q1 position", terminal="q1_T1", power_system_resource="q1", measurement_type="SwitchPosition", point="Q1.pos"))
    return m
