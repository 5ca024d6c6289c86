"""PgmNetwork.update pushes only what changed: a sequence of changes and reverts must still equal
a fresh conversion after every step (nothing stale, nothing missed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dms_kernel.model.results import rows
from dms_pgm.convert import to_pgm
from dms_pgm.solver import calculate, results_data


def voltages(data):
    return {(r["node"], r["phase"]): r["vm_pu"] for r in rows(data["nodes"])}


def assert_same(a, b):
    va, vb = voltages(a), voltages(b)
    assert va.keys() == vb.keys()
    for key, value in va.items():
        if math.isnan(value) or math.isnan(vb[key]):
            assert math.isnan(value) and math.isnan(vb[key]), key
        else:
            assert value == pytest.approx(vb[key], abs=1e-9), key
    for column in ("p_from_mw", "i_ka"):
        assert np.allclose(np.asarray(a["branches"][column]), np.asarray(b["branches"][column]), atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("asymmetric", [False, True])
def test_changes_and_reverts_equal_fresh_conversions(asymmetric, build_feeder):
    model = build_feeder(zip_load=True)
    net = to_pgm(model, asymmetric=asymmetric)
    steps = [
        lambda: setattr(model.get("load3"), "p_mw", 4.0),
        lambda: setattr(model.get("brk"), "open", True),  # de-energises the feeder
        lambda: setattr(model.get("tie"), "open", False),  # back-fed through the tie
        lambda: setattr(model.get("brk"), "open", False),  # revert: loop
        lambda: setattr(model.get("tie"), "open", True),  # revert: radial again
        lambda: setattr(model.get("tr1_tap"), "step", 3),
        lambda: setattr(model.get("load6"), "in_service", False),
        lambda: setattr(model.get("load6"), "in_service", True),
        lambda: None,  # nothing changed: nothing pushed, same result
    ]
    for step in steps:
        step()
        net.update(model)
        fresh = to_pgm(model, asymmetric=asymmetric)
        assert_same(results_data(net, calculate(net)), results_data(fresh, calculate(fresh)))


def test_result_columns_are_numpy_and_identity_columns_are_shared(feeder):
    net = to_pgm(feeder)
    net.update(feeder)
    first, second = results_data(net, calculate(net)), results_data(net, calculate(net))
    assert isinstance(first["nodes"]["vm_pu"], np.ndarray)
    assert first["nodes"]["node"] is second["nodes"]["node"]  # built once per converted network
    assert len({len(column) for column in first["branches"].values()}) == 1
