"""Fixtures for the DLMS plugin tests: a simulated meter (real TCP server) and a kernel with the source."""

from __future__ import annotations

import pytest

import dms_dlms.plugin
import plugins_for_tests as p
from dms_dlms.testing import MeterRig


@pytest.fixture
async def rig(tmp_path):
    """A started meter with its twin; stopped after the test."""
    rig = MeterRig(tmp_path, clock_offset_s=-3600.0, profile_period_s=3600.0)
    await rig.server.start()
    try:
        yield rig
    finally:
        await rig.server.stop()


@pytest.fixture
def kernel_for(make_kernel):
    """``kernel_for(rig, **source_settings)``: a kernel with the dlms source pointed at the rig and a ListSink."""

    def make(rig, **settings):
        return make_kernel(("dlms", dms_dlms.plugin), p.test_types, deployment=rig.deployment(**settings))

    return make
