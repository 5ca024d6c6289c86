"""The power-grid-model estimator's prepared calculation (dms_pgm.prepared) gives what the public
``calculate_state_estimation`` gives on the same updated model, and a result does not change
when the next estimate reuses the output arrays."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from dms_pandapower.examples import load_example
from dms_pgm.solver import results_data
from dms_simulator.grid import GridTwin

from dms_se.measurements import Accuracy
from dms_se.pgm_estimator import METHODS, PgmEstimator
from dms_se.pp_estimator import nominal_powers

sys.path.insert(0, str(Path(__file__).parent))
from se_cases import equip, noisy, true_values  # noqa: E402


@pytest.mark.parametrize("method", ["newton_raphson", "iterative_linear"])
def test_prepared_estimate_equals_public_call(method):
    model = equip(load_example("cigre_mv"))
    nominal_powers(model, capture=True)
    truth = true_values(model, GridTwin(load_example("cigre_mv"), seed=1, start_hour=12.0))
    estimator = PgmEstimator()
    entry = estimator.entry(model, None)
    earlier = []
    for seed in (3, 4, 5):
        measured = noisy(truth, model, np.random.default_rng(seed))
        values = np.array([measured.get(r.point, np.nan) for r in entry.plan.rows]) * entry.plan.factors
        result = estimator.run(model, values, np.isfinite(values), None, Accuracy(), {"calculation_method": method, "max_bad_data": 0})
        assert result.converged, result.message
        prepared = next(iter(entry.net._prepared[1].values()))
        public = entry.net.model.calculate_state_estimation(  # the model holds this estimate's sensor values
            symmetric=True, calculation_method=METHODS[method], error_tolerance=1e-8, max_iterations=50,
            output_component_types=prepared._kwargs["output_component_types"],
        )
        expected = results_data(entry.net, public)
        assert np.array_equal(result.data["nodes"]["vm_pu"], expected["nodes"]["vm_pu"], equal_nan=True)
        assert np.array_equal(result.data["branches"]["p_from_mw"], expected["branches"]["p_from_mw"], equal_nan=True)
        earlier.append((result, result.data["nodes"]["vm_pu"].copy()))
    for result, vm in earlier:  # later estimates reused the output arrays; earlier results kept their values
        assert np.array_equal(result.data["nodes"]["vm_pu"], vm, equal_nan=True)
    assert not np.array_equal(earlier[0][1], earlier[1][1])  # different noise, different estimate
