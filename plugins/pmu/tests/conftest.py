"""Fixtures for the PMU plugin tests: two simulated PMUs over loopback and a kernel with the source."""

from __future__ import annotations

import pytest

import dms_pmu.plugin
import plugins_for_tests as p
from dms_pmu.testing import Rig


@pytest.fixture
async def rig():
    rig = Rig()
    await rig.start()
    try:
        yield rig
    finally:
        await rig.stop()


@pytest.fixture
def kernel_for(make_kernel):
    """``kernel_for(rig, **source_settings)``: a kernel with the c37118 source on the rig and a ListSink."""

    def make(rig, **settings):
        return make_kernel(("pmu", dms_pmu.plugin), p.test_types, deployment=rig.deployment(**settings))

    return make
