"""Live model update: point values flow into switch states, taps, loads, source voltage and pseudo-loads."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dms_hookspecs import INVALID, PointSpec
from dms_kernel import PointDatabase
from dms_kernel.model import (
    Analog,
    BaseVoltage,
    Breaker,
    ConnectivityNode,
    Discrete,
    EnergyConsumer,
    EnergySource,
    NetworkModel,
    PowerTransformer,
    PowerTransformerEnd,
    RatioTapChanger,
)
from dms_kernel.model.live import LiveModel


def feeder():
    model = NetworkModel("feeder")
    model.add(BaseVoltage("BV20", nominal_kv=20.0))
    for name in ("HV", "MV", "F1", "X"):
        model.add(ConnectivityNode(name, name=name.lower()))
    source = model.add(EnergySource("SRC", nominal_kv=110.0, voltage_kv=110.0))
    model.connect(source, "HV")
    trafo = model.add(PowerTransformer("TR"))
    (t1, t2) = model.connect(trafo, "HV", "MV")
    end = model.add(PowerTransformerEnd("TR_E1", power_transformer="TR", terminal=t1.mrid, end_number=1, rated_u_kv=110, rated_s_mva=40))
    model.add(PowerTransformerEnd("TR_E2", power_transformer="TR", terminal=t2.mrid, end_number=2, rated_u_kv=20, rated_s_mva=40))
    model.add(RatioTapChanger("TAP", transformer_end=end.mrid, low_step=-9, high_step=9))
    breaker = model.add(Breaker("CB1", name="cb1"))
    (b1, _) = model.connect(breaker, "MV", "F1")
    measured = model.add(EnergyConsumer("L1", p_mw=1.0, q_mvar=0.2))
    (l1,) = model.connect(measured, "F1")
    for n, p in ((2, 1.0), (3, 3.0)):
        load = model.add(EnergyConsumer(f"L{n}", p_mw=p, q_mvar=p / 5))
        model.connect(load, "F1")
    model.add(Discrete("M_CB1", terminal=b1.mrid, measurement_type="SwitchPosition", point="S1/CB1/Pos"))
    model.add(Analog("M_HEAD", terminal=b1.mrid, measurement_type="ThreePhaseActivePower", unit="W", unit_multiplier="M", point="S1/F1/P"))
    model.add(Analog("M_L1P", terminal=l1.mrid, measurement_type="ThreePhaseActivePower", unit="W", unit_multiplier="k", point="L1/P"))
    model.add(Analog("M_L1Q", terminal=l1.mrid, measurement_type="ThreePhaseReactivePower", unit="VAr", unit_multiplier="k", point="L1/Q"))
    model.add(Discrete("M_TAP", power_system_resource="TR", measurement_type="TapPosition", point="S1/TR/Tap"))
    model.add(Analog("M_U", power_system_resource="SRC", measurement_type="PhaseVoltage", unit="V", unit_multiplier="k", point="S1/U"))
    model.add(Analog("M_X", power_system_resource="SRC", measurement_type="PhaseVoltage", point="not/in/scada"))
    model.validate()
    return model


def scada(values, quality=None):
    db = PointDatabase()
    for name in values:
        db.add(PointSpec(name), "rtu")
    names = list(values)
    points = np.arange(len(names))
    bits = np.array([quality.get(n, 0) if quality else 0 for n in names], dtype=np.uint16)
    db.update(points, np.array([values[n] for n in names], float), bits, np.zeros(len(names)), 0.0)
    return db


VALUES = {"S1/CB1/Pos": 1, "S1/F1/P": 6.0, "L1/P": 2000.0, "L1/Q": 300.0, "S1/TR/Tap": 3, "S1/U": 64.0}


def test_bindings_and_unbound():
    model = feeder()
    live = LiveModel(model, scada(VALUES).names)
    assert len(live.bindings) == 6
    assert [m.mrid for m in live.unbound] == ["M_X"]


def test_apply_copies_values_into_model():
    model = feeder()
    db = scada(VALUES)
    update = LiveModel(model, db.names).apply(db.snapshot())
    assert update.switches == ("CB1",)
    assert model.get("CB1").open is True  # DPS 1 = open
    assert model.get("L1").p_mw == pytest.approx(2.0) and model.get("L1").q_mvar == pytest.approx(0.3)
    assert model.get("TAP").step == 3
    assert model.get("SRC").voltage_kv == pytest.approx(64.0 * math.sqrt(3))
    # head 6 MW - measured L1 2 MW = 4 MW over unmeasured L2 (1) and L3 (3): scale 1.0
    assert update.pseudo_scale == pytest.approx(1.0)
    assert (model.get("L2").p_mw, model.get("L3").p_mw) == (pytest.approx(1.0), pytest.approx(3.0))


def test_pseudo_loads_follow_the_head_measurement_from_their_profile_values():
    model = feeder()
    live = LiveModel(model, scada(VALUES).names)
    db = scada({**VALUES, "S1/F1/P": 10.0})
    update = live.apply(db.snapshot())
    assert update.pseudo_scale == pytest.approx(2.0)
    assert (model.get("L2").p_mw, model.get("L3").q_mvar) == (pytest.approx(2.0), pytest.approx(1.2))
    live.apply(scada({**VALUES, "S1/F1/P": 4.0}).snapshot())  # scaled from nominal, not compounding
    assert model.get("L3").p_mw == pytest.approx(1.5)


def test_invalid_values_keep_the_last_good_state():
    model = feeder()
    names = scada(VALUES).names
    live = LiveModel(model, names)
    live.apply(scada(VALUES).snapshot())
    bad = scada({**VALUES, "S1/CB1/Pos": 2, "L1/P": 9999.0}, quality={"S1/CB1/Pos": INVALID.to_bits(), "L1/P": INVALID.to_bits()})
    update = live.apply(bad.snapshot())
    assert update.switches == ()
    assert model.get("CB1").open is True
    assert model.get("L1").p_mw == pytest.approx(2.0)


def test_intermediate_switch_position_is_ignored():
    model = feeder()
    live = LiveModel(model, scada(VALUES).names)
    assert live.apply(scada({**VALUES, "S1/CB1/Pos": 0}).snapshot()).switches == ()
    assert model.get("CB1").open is False


@pytest.mark.parametrize(("position", "is_open"), [(0, True), (1, False), (2, False)])
def test_single_point_switch_position(position, is_open):
    """A binary (single-point) position: 0 open, anything else closed; only real changes are reported."""
    model = feeder()
    model.get("M_CB1").unit = "binary"
    live = LiveModel(model, scada(VALUES).names)
    update = live.apply(scada({**VALUES, "S1/CB1/Pos": position}).snapshot())
    assert model.get("CB1").open is is_open
    assert update.switches == (("CB1",) if is_open else ())
    assert live.apply(scada({**VALUES, "S1/CB1/Pos": position}).snapshot()).switches == ()


def test_wrong_unit_is_named():
    model = feeder()
    model.get("M_L1P").unit = "A"
    with pytest.raises(ValueError, match="measurement 'M_L1P' .*unit 'A' is not a MW unit"):
        LiveModel(model, scada(VALUES).names)


def test_scada_points_from_model_measurements():
    from dms_hookspecs import PointKind
    from dms_kernel.model.scada import add_scada_measurements, measurement_points

    model = feeder()
    specs = {spec.id.name: spec for spec in measurement_points(model)}
    assert specs["S1/CB1/Pos"].kind is PointKind.DOUBLE and specs["S1/CB1/Pos"].controllable
    assert specs["S1/CB1/Pos"].select_before_operate
    assert specs["S1/TR/Tap"].kind is PointKind.STEP and specs["S1/TR/Tap"].controllable
    assert specs["L1/P"].kind is PointKind.ANALOG and specs["L1/P"].unit == "kW" and not specs["L1/P"].controllable

    bare = feeder()
    for measurement in list(bare.of_type(Discrete)) + list(bare.of_type(Analog)):
        del bare.objects[measurement.mrid]
    bare.invalidate()
    added = add_scada_measurements(bare)
    assert sorted(m.point_name for m in added) == ["SRC/U", "TR/P", "TR/Q", "TR/Tap", "cb1/Pos"]
    bare.validate()
    # the added measurements drive the model like any others
    db = scada({"SRC/U": 112.0, "TR/P": 5.0, "TR/Q": 1.0, "TR/Tap": -2, "cb1/Pos": 2})
    LiveModel(bare, db.names).apply(db.snapshot())
    assert bare.get("SRC").voltage_kv == pytest.approx(112.0)
    assert bare.get("TAP").step == -2
    assert bare.get("L3").p_mw == pytest.approx(3.0)  # 5 MW head over 1+1+3 MW nominal
