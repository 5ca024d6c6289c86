"""The plugin through the kernel: study selection by solver name, cached conversion, results schema."""

from __future__ import annotations

import pytest

import dms_pgm.plugin
from dms_hookspecs import hookimpl
from dms_kernel.errors import StudyError
from dms_kernel.model.results import BRANCH_COLUMNS, NODE_COLUMNS
from dms_pgm import solver

DEPLOYMENT = """
[deployment]
name = "pgm-test"
model = "test_feeder"
"""


class FeederLoader:
    def __init__(self, model):
        self.model = model

    @hookimpl
    def dms_load_model(self, location, base_dir):
        return self.model if location == "test_feeder" else None


async def test_power_flow_through_the_kernel(make_kernel, build_feeder):
    model = build_feeder()
    kernel = make_kernel(dms_pgm.plugin, ("loader", FeederLoader(model)), deployment=DEPLOYMENT)
    async with kernel:
        assert kernel.studies["power_flow"] == ["dms_pgm.plugin"]
        result = await kernel.run_study("power_flow", {"solver": "power-grid-model"})
        assert result.converged and result.solver == "power-grid-model"
        assert tuple(result.data["nodes"]) == NODE_COLUMNS and tuple(result.data["branches"]) == BRANCH_COLUMNS
        cached = solver.network_for(model, False)
        model.get("load2").p_mw = 3.0
        second = await kernel.run_study("power_flow", {"solver": "power-grid-model"})
        assert solver.network_for(model, False) is cached  # converted once, updated per run
        assert second.data["losses_mw"] > result.data["losses_mw"]
        unbalanced = await kernel.run_study("power_flow", {"solver": "power-grid-model", "unbalanced": True})
        assert unbalanced.data["unbalanced"] and solver.network_for(model, True) is not cached
        assert unbalanced.data["losses_mw"] == pytest.approx(second.data["losses_mw"], rel=1e-7)
        with pytest.raises(StudyError):  # another solver's name: this plugin does not answer
            await kernel.run_study("power_flow", {"solver": "pandapower"})
        with pytest.raises(StudyError):
            await kernel.run_study("power_flow", {})


def test_cache_does_not_keep_models_alive(build_feeder):
    import gc
    import weakref

    model = build_feeder()
    assert solver.run_power_flow(model, {}).converged
    assert solver.run_power_flow(model, {"unbalanced": True}).converged
    assert model in solver._cache
    alive = weakref.ref(model)
    del model
    gc.collect()
    assert alive() is None  # the cached conversions hold no strong reference to their model


def test_structural_change_reconverts(build_feeder):
    from dms_kernel.model import EnergyConsumer

    model = build_feeder()
    first = solver.network_for(model, False)
    load = model.add(EnergyConsumer("extra", name="Extra", base_voltage="bv20", p_mw=1.0))
    model.connect(load, "n4")
    assert solver.network_for(model, False) is not first
    assert "extra" in solver.network_for(model, False).element_ids
