"""The result tables are the same whether power-grid-model returns whole rows or only columns."""

import numpy as np
import pytest

from dms_pandapower.examples import load_example
from dms_pgm import solver


@pytest.mark.parametrize("asymmetric", [False, True])
def test_columnar_output_gives_the_same_tables(monkeypatch, asymmetric):
    model = load_example("cigre_mv")
    net = solver.network_for(model, asymmetric)
    net.update(model)
    rows = solver.results_data(net, solver.calculate(net))
    monkeypatch.setattr(solver, "COLUMNAR_OUTPUT_MIN_NODES", 0)
    columns = solver.results_data(net, solver.calculate(net))
    for table in ("nodes", "branches"):
        for name, values in rows[table].items():
            if isinstance(values, np.ndarray):
                np.testing.assert_array_equal(values, columns[table][name])
            else:
                assert tuple(values) == tuple(columns[table][name])
    assert rows["losses_mw"] == columns["losses_mw"]


def _assert_same_tables(compiled, reference):
    for table in ("nodes", "branches"):
        assert compiled[table].keys() == reference[table].keys()
        for name, values in reference[table].items():
            if isinstance(values, np.ndarray):
                np.testing.assert_allclose(compiled[table][name], values, rtol=1e-13, atol=1e-12, err_msg=f"{table}.{name}")
            else:
                assert tuple(values) == tuple(compiled[table][name])
    assert compiled["losses_mw"] == pytest.approx(reference["losses_mw"], rel=1e-12)
    assert compiled["losses_mvar"] == pytest.approx(reference["losses_mvar"], rel=1e-12)


@pytest.mark.parametrize("example", ["cigre_mv", "mv_oberrhein"])
def test_compiled_tables_equal_the_numpy_tables(example):
    """The numba-filled symmetric tables equal the numpy reference, with a folded switch open."""
    model = load_example(example)
    net = solver.network_for(model, False)
    assert net.absorbed, "the example has no folded switch nodes: this test would not cover them"
    net.absorbed[0][1].open = True  # an open folded switch: open-end voltage and zero flow
    net.update(model)
    output = solver.calculate(net)
    static = solver._static(net)
    _assert_same_tables(solver._results_sym(net, static, output), solver._results_numpy(net, static, output))


def test_compiled_tables_of_three_winding_transformers(build_three_winding):
    model = build_three_winding()
    net = solver.network_for(model, False)
    net.update(model)
    output = solver.calculate(net)
    assert len(output[solver.C.three_winding_transformer]) > 0
    static = solver._static(net)
    _assert_same_tables(solver._results_sym(net, static, output), solver._results_numpy(net, static, output))
