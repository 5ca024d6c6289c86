"""Power-flow result tables: rows or column tables (lists or numpy arrays)."""

from __future__ import annotations

import numpy as np
import pytest

from dms_kernel.model.results import BRANCH_COLUMNS, NODE_COLUMNS, balanced_phases, power_flow_data, rows


def test_column_tables_are_used_as_given_and_rows_are_plain_python():
    from_rows = power_flow_data(balanced_phases("n1", "bus 1", 1.01, -2.0, 11.66), (), losses_mw=0.0, losses_mvar=0.0, unbalanced=False)
    columns = {name: list(values) for name, values in from_rows["nodes"].items()}
    columns.update(vm_pu=np.asarray(columns["vm_pu"]), va_deg=np.asarray(columns["va_deg"]))
    empty = {name: np.zeros(0) for name in BRANCH_COLUMNS}
    data = power_flow_data(columns, empty, losses_mw=0.0, losses_mvar=0.0, unbalanced=False)
    assert tuple(data["nodes"]) == NODE_COLUMNS and data["nodes"]["vm_pu"] is columns["vm_pu"]
    assert rows(data["nodes"]) == rows(from_rows["nodes"])
    assert all(type(row["vm_pu"]) is float for row in rows(data["nodes"]))


def test_column_table_errors_name_the_problem():
    columns = {name: [1.0] for name in NODE_COLUMNS}
    with pytest.raises(ValueError, match="lacks the columns"):
        power_flow_data({"node": ["n1"]}, (), losses_mw=0.0, losses_mvar=0.0, unbalanced=False)
    with pytest.raises(ValueError, match="unequal length"):
        power_flow_data({**columns, "vm_pu": [1.0, 2.0]}, (), losses_mw=0.0, losses_mvar=0.0, unbalanced=False)
