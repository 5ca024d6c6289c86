"""Fixtures: test networks with recloser–fuse–relay chains, and settings that coordinate on them."""

from __future__ import annotations

import pytest

from dms_kernel.model import Fuse, Recloser
from dms_pandapower.examples import load_example
from dms_protection.settings import DeviceSettings, Overcurrent

from .chains import FUSE_100, insert_switch, recloser_settings, relay_settings


@pytest.fixture
def radial():
    """radial_32: 110/20 kV, one feeder: breaker F0 CB (relay) – recloser R1 on the trunk – fuse FU1 on a lateral."""
    model = load_example("radial_32")
    insert_switch(model, "F0 L3", Recloser, "R1", "R1")
    insert_switch(model, "F0 LB6", Fuse, "FU1", "FU1")
    return model


@pytest.fixture
def radial_good(radial):
    return {"switch_0": relay_settings("switch_0"), "R1": recloser_settings("R1"), "FU1": DeviceSettings("FU1", "fuse", fuse=FUSE_100)}


@pytest.fixture
def cigre():
    """CIGRE MV with a recloser on Line 2-3 and a fuse on Line 9-10; the relay at the HV breaker of Trafo 0-1."""
    model = load_example("cigre_mv")
    insert_switch(model, "Line 2-3", Recloser, "R1", "R1", at_node="bus_2")
    insert_switch(model, "Line 9-10", Fuse, "FU1", "FU1", at_node="bus_9")
    return model


@pytest.fixture
def cigre_good(cigre):
    # the HV relay sees 20/110 of the MV current
    return {
        "switch_6": DeviceSettings("switch_6", "relay", overcurrent=[Overcurrent(120.0, "iec_standard_inverse", 0.3)]),
        "R1": recloser_settings("R1", pickup=300.0),
        "FU1": DeviceSettings("FU1", "fuse", fuse=FUSE_100),
    }

