"""Fixtures of the grid-view tests: example models, a kernel with the pandapower plugin."""

from __future__ import annotations

import pytest

from dms_pandapower.examples import load_example


@pytest.fixture
def cigre():
    return load_example("cigre_mv")


@pytest.fixture
def oberrhein():
    return load_example("mv_oberrhein")


@pytest.fixture
async def cigre_kernel(make_kernel):
    """A prepared kernel on CIGRE MV (pandapower plugin, standard SCADA measurements, not started)."""
    import dms_pandapower.plugin as pandapower_plugin

    kernel = make_kernel(
        ("pandapower", pandapower_plugin),
        deployment="""
            [deployment]
            name = "grid views"
            model = "cigre_mv"
            standard_measurements = true
        """,
    )
    await kernel.prepare()
    return kernel
