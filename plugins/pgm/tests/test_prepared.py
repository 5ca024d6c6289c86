"""Prepared calculations and cached update datasets give exactly what power-grid-model's public
``update`` + ``calculate_power_flow`` give, cycle after cycle, and fail the same way."""

from __future__ import annotations

import numpy as np
import pytest
from power_grid_model import CalculationMethod, ComponentType, DatasetType, PowerGridModel, initialize_array
from power_grid_model.errors import PowerGridError

from dms_pgm import prepared
from dms_pgm.convert import to_pgm
from dms_pgm.prepared import PreparedCalculation, UpdatePusher
from dms_pgm.solver import _OUTPUTS, calculate

C = ComponentType


def test_internals_are_available():
    """With the installed power-grid-model the fast path is in use (a release that moves its
    internals must fail here, not silently fall back to the slower public calls)."""
    assert prepared.AVAILABLE


def _outputs(net):
    return {c: list(_OUTPUTS[c]) for c in _OUTPUTS if c in net.input_data}


def _assert_equal(public, fast):
    assert public.keys() == fast.keys()
    for component, columns in public.items():
        names = columns.dtype.names if hasattr(columns, "dtype") else columns.keys()
        for name in names:
            assert np.array_equal(public[component][name], fast[component][name], equal_nan=True), (component, name)


@pytest.mark.parametrize("asymmetric", [False, True])
@pytest.mark.parametrize("fresh_arrays", [False, True])
def test_same_as_public_calls_over_many_updates(build_feeder, asymmetric, fresh_arrays):
    model = build_feeder(zip_load=True)
    net = to_pgm(model, asymmetric=asymmetric)
    public = PowerGridModel({c: a.copy() for c, a in net.input_data.items()}, system_frequency=net.frequency)
    loads = C.asym_load if asymmetric else C.sym_load
    ids = net.input_data[loads]["id"]
    p0 = net.input_data[loads]["p_specified"].copy()
    kept = initialize_array(DatasetType.update, loads, len(ids))
    kept["id"] = ids
    pusher = UpdatePusher()
    outputs = _outputs(net)
    fast = PreparedCalculation(
        net.model, state_estimation=False, symmetric=not asymmetric, calculation_method=CalculationMethod.newton_raphson,
        error_tolerance=1e-8, max_iterations=20, output_component_types=outputs,
    )
    rng = np.random.default_rng(7)
    for _ in range(30):
        update = initialize_array(DatasetType.update, loads, len(ids)) if fresh_arrays else kept
        update["id"] = ids
        update["p_specified"] = p0 * rng.uniform(0.2, 1.5, p0.shape)
        public.update(update_data={loads: update.copy()})
        pusher.push(net.model, {loads: update})
        expected = public.calculate_power_flow(
            symmetric=not asymmetric, calculation_method=CalculationMethod.newton_raphson, error_tolerance=1e-8, max_iterations=20,
            output_component_types=outputs,
        )
        output = fast.run()
        assert output is fast.output  # reused, not rebuilt
        _assert_equal(expected, output)
    assert len(pusher._datasets) <= UpdatePusher.MAX_DATASETS
    assert len(pusher._datasets) == (UpdatePusher.MAX_DATASETS if fresh_arrays else 1)


def test_not_converging_raises_and_the_next_run_works(feeder):
    net = to_pgm(feeder)
    net.update(feeder)
    good = calculate(net)
    u_good = good[C.node]["u_pu"].copy()
    feeder.get("load3").p_mw = 1e6  # far beyond what the feeder can carry: Newton-Raphson diverges
    net.update(feeder)
    with pytest.raises(PowerGridError):
        calculate(net)
    feeder.get("load3").p_mw = 2.0
    net.update(feeder)
    fresh = to_pgm(feeder)
    fresh.update(feeder)
    assert np.allclose(calculate(net)[C.node]["u_pu"], calculate(fresh)[C.node]["u_pu"], atol=1e-12)
    assert not np.allclose(calculate(net)[C.node]["u_pu"], u_good, atol=1e-9)  # the new load counts


def test_prepared_calculations_follow_a_new_model_object(feeder):
    """A new PowerGridModel on the network (state estimation builds one with sensors) gets its
    own prepared calculations."""
    net = to_pgm(feeder)
    first = net.prepared(output_component_types={C.node: ["u_pu"]})
    assert net.prepared(output_component_types={C.node: ["u_pu"]}) is first
    net.model = PowerGridModel(net.input_data, system_frequency=net.frequency)
    second = net.prepared(output_component_types={C.node: ["u_pu"]})
    assert second is not first and second.model is net.model
