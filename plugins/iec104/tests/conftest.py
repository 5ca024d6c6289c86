"""Fixtures for the IEC 104 plugin tests: a twin behind the real c104 server, a kernel with the source."""

from __future__ import annotations

import pytest

import dms_iec104.plugin
import plugins_for_tests as p
from dms_iec104.testing import Rig


@pytest.fixture
async def rig(tmp_path):
    """A started simulator server with its twin; stopped after the test."""
    rig = Rig(tmp_path)
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.server.stop()


@pytest.fixture
def kernel_for(make_kernel):
    """``kernel_for(rig, **source_settings)``: a kernel with the iec104 source pointed at the rig and a ListSink."""

    def make(rig, **settings):
        return make_kernel(("iec104", dms_iec104.plugin), p.test_types, deployment=rig.deployment(**settings))

    return make
