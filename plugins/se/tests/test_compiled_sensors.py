"""The compiled sensor arithmetic (dms_se.kernels) gives the numpy arithmetic's estimate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from dms_pandapower.examples import load_example
from dms_simulator.grid import GridTwin

from dms_se import pgm_estimator
from dms_se.measurements import Accuracy
from dms_se.pgm_estimator import PgmEstimator
from dms_se.pp_estimator import nominal_powers

sys.path.insert(0, str(Path(__file__).parent))
from se_cases import equip, noisy, true_values  # noqa: E402


def _estimate(model, measured, usable_mask, method):
    estimator = PgmEstimator()
    entry = estimator.entry(model, None)
    assert pgm_estimator._compiled(entry, Accuracy()) is pgm_estimator._COMPILED
    assert len(entry.v_rows) and len(entry.app_ids) and len(entry.bp_p)
    values = np.array([measured.get(r.point, np.nan) for r in entry.plan.rows]) * entry.plan.factors
    usable = np.isfinite(values) & usable_mask(entry)
    result = estimator.run(model, values, usable, None, Accuracy(), {"calculation_method": method, "max_bad_data": 0})
    assert result.converged, result.message
    return result


@pytest.mark.parametrize("method", ["newton_raphson", "iterative_linear"])
@pytest.mark.parametrize("example", ["cigre_mv", "mv_oberrhein"])
def test_compiled_and_numpy_sensor_arithmetic_agree(monkeypatch, example, method):
    model = equip(load_example(example))  # meters, voltages, current magnitudes
    nominal_powers(model, capture=True)
    truth = true_values(model, GridTwin(load_example(example), seed=1, start_hour=12.0))
    measured = noisy(truth, model, np.random.default_rng(3))
    rng = np.random.default_rng(4)

    def some_missing(entry):  # every 5th meter missing: pseudo-measurements and P without Q
        drop = np.zeros(len(entry.plan.rows), dtype=bool)
        drop[rng.permutation(len(drop))[: len(drop) // 5]] = True
        kinds = np.array([r.kind for r in entry.plan.rows])
        return ~(drop & (kinds != "v"))

    rng_state = rng.bit_generator.state
    compiled = _estimate(model, measured, some_missing, method)
    rng.bit_generator.state = rng_state  # the same missing values
    monkeypatch.setattr(pgm_estimator, "_COMPILED", False)
    reference = _estimate(model, measured, some_missing, method)
    if example == "cigre_mv":  # current magnitudes at the lines leaving the MV busbars
        assert any(p.endswith("/I") for p in compiled.data["residuals"]["point"])
    assert compiled.data["measurements"] == reference.data["measurements"]
    assert compiled.data["pseudo"] == reference.data["pseudo"]
    chi_c, chi_r = compiled.data["chi2"], reference.data["chi2"]
    assert chi_c["dof"] == chi_r["dof"]
    assert chi_c["J"] == pytest.approx(chi_r["J"], rel=1e-9)
    np.testing.assert_allclose(compiled.data["nodes"]["vm_pu"], reference.data["nodes"]["vm_pu"], rtol=0, atol=1e-12)
    for column in ("measured", "estimated", "sigma", "weighted_residual"):
        np.testing.assert_allclose(compiled.data["residuals"][column], reference.data["residuals"][column], rtol=1e-9, atol=1e-12, err_msg=column)
