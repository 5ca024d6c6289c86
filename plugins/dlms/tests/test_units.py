"""Address parsing and plugin registration."""

from __future__ import annotations

import pytest

import dms_dlms.plugin
from dms_dlms.address import AddressError, DlmsAddress, parse_address
from dms_dlms.server import DlmsMeterServer
from dms_dlms.source import DlmsSource
from dms_hookspecs import SimulatorServer, Source


def test_addresses():
    assert parse_address("1.0.1.7.0.255:2") == DlmsAddress("1.0.1.7.0.255", 2)
    profile = parse_address(" 1.0.99.1.0.255:2:1.0.1.8.0.255 ")
    assert profile.is_profile_column and profile.column == "1.0.1.8.0.255"
    assert parse_address("0.0.96.3.10.255:2").is_disconnect_control
    assert str(profile) == "1.0.99.1.0.255:2:1.0.1.8.0.255"


@pytest.mark.parametrize(
    "bad",
    ["1.0.1.7.0.255", "1.0.1.7.0:2", "1.0.1.7.0.256:2", "a.b.c.d.e.f:2", "1.0.1.7.0.255:x", "1.0.1.7.0.255:0",
     "1.0.99.1.0.255:3:1.0.1.8.0.255", "0.0.96.3.10.255:4", "1:2:3:4"],
)
def test_bad_addresses(bad):
    with pytest.raises(AddressError):
        parse_address(bad)


def test_plugin_registers_source_and_simulator():

    class Registry(dict):
        def add(self, name, factory):
            self[name] = factory

    sources, simulators = Registry(), Registry()
    dms_dlms.plugin.dms_add_source_types(sources)
    dms_dlms.plugin.dms_add_simulator_types(simulators)
    assert sources == {"dlms": DlmsSource} and issubclass(DlmsSource, Source)
    assert simulators == {"dlms": DlmsMeterServer} and issubclass(DlmsMeterServer, SimulatorServer)
