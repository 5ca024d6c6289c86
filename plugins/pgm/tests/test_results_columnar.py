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
