"""Point database: vectorised batches, deadband, quality changes, subscriptions, snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from dms_hookspecs import GOOD, Detail, PointSpec, Quality, Validity
from dms_kernel import PointDatabase, UnknownPointError
from dms_kernel.errors import DuplicatePointError

QUESTIONABLE = Quality(validity=Validity.QUESTIONABLE, detail=Detail.OLD_DATA).to_bits()


def database(count=5, deadband=0.0):
    db = PointDatabase(capacity=2)
    for n in range(count):
        db.add(PointSpec(f"P{n}", deadband=deadband), owner="rtu")
    return db


def update(db, points, values, quality=0, ts=1.0):
    points = np.asarray(points)
    return db.update(points, np.asarray(values, float), np.full(points.size, quality, np.uint16), np.full(points.size, ts), 2.0)


def test_new_points_are_invalid_until_received():
    db = database()
    measurement = db.read("P0")
    assert np.isnan(measurement.value)
    assert measurement.quality.validity is Validity.INVALID


def test_batch_update_stores_values_quality_and_times():
    db = database()
    changed = update(db, [4, 0, 2], [40.0, 0.5, 20.0], ts=7.0)
    assert sorted(changed.tolist()) == [0, 2, 4]
    assert db.read("P4").value == 40.0
    assert db.read("P0").quality == GOOD
    assert db.read("P2").source_time == 7.0 and db.read("P2").receive_time == 2.0
    assert np.isnan(db.read("P1").value)


def test_values_and_quality_of_many_points_are_copies():
    db = database()
    update(db, [0, 3], [1.5, 3.5], quality=QUESTIONABLE)
    values, quality = db.values(np.array([3, 0, 1])), db.quality(np.array([3, 0, 1]))
    assert values[:2].tolist() == [3.5, 1.5] and np.isnan(values[2])
    assert quality.tolist() == [QUESTIONABLE, QUESTIONABLE, Quality(validity=Validity.INVALID).to_bits()]
    quality[0] = 0
    assert db.read("P3").quality.validity is Validity.QUESTIONABLE


def test_capacity_grows_past_initial_size():
    db = database(count=100)
    update(db, np.arange(100), np.arange(100.0))
    assert len(db) == 100
    assert db.read("P99").value == 99.0


def test_deadband_reports_only_significant_changes_but_stores_all():
    db = database(count=1, deadband=0.5)
    assert update(db, [0], [10.0]).tolist() == [0]  # first value always reported
    assert update(db, [0], [10.3]).tolist() == []  # within deadband of last reported
    assert db.read("P0").value == 10.3  # but stored
    assert update(db, [0], [10.45]).tolist() == []  # still within 0.5 of 10.0: no creep
    assert update(db, [0], [10.6]).tolist() == [0]  # beyond deadband of 10.0
    assert update(db, [0], [10.2]).tolist() == []  # within 0.5 of the new reference 10.6
    assert update(db, [0], [10.0]).tolist() == [0]


def test_quality_change_is_reported_inside_deadband():
    db = database(count=1, deadband=1.0)
    update(db, [0], [10.0])
    assert update(db, [0], [10.0], quality=QUESTIONABLE).tolist() == [0]
    assert db.read("P0").quality.detail == Detail.OLD_DATA


def test_scalar_fast_path_matches_batch_semantics():
    db = database(count=2, deadband=0.5)
    assert db.update_one(1, 5.0, 0, 1.0, 1.0) is True
    assert db.update_one(1, 5.2, 0, 1.0, 1.0) is False
    assert db.update_one(1, 5.2, QUESTIONABLE, 1.0, 1.0) is True
    assert db.update_one(1, 6.0, QUESTIONABLE, 1.0, 1.0) is True
    assert db.read("P1").value == 6.0
    with pytest.raises(UnknownPointError):
        db.update_one(2, 1.0, 0, 1.0, 1.0)


def test_subscription_by_point_set():
    db = database(count=6)
    seen_even, seen_all = [], []
    even = db.subscribe([0, 2, 4], lambda changed: seen_even.append(changed.tolist()))
    db.subscribe(None, lambda changed: seen_all.append(changed.tolist()))
    update(db, [1, 2, 3], [1.0, 2.0, 3.0])
    update(db, [1, 3], [9.0, 9.0])  # no point of the even set
    db.update_one(4, 1.0, 0, 1.0, 1.0)
    assert seen_even == [[2], [4]]
    assert seen_all == [[1, 2, 3], [1, 3], [4]]
    even.cancel()
    update(db, [0], [1.0])
    assert seen_even == [[2], [4]]


def test_subscription_survives_growth():
    db = PointDatabase(capacity=16)
    db.add(PointSpec("A"), "rtu")
    seen = []
    db.subscribe([0], lambda changed: seen.extend(changed.tolist()))
    for n in range(40):
        db.add(PointSpec(f"B{n}"), "rtu")
    update(db, [0, 39], [1.0, 2.0])
    assert seen == [0]


def test_snapshot_is_a_consistent_copy():
    db = database(count=3)
    update(db, [0, 1, 2], [1.0, 2.0, 3.0])
    snapshot = db.snapshot()
    update(db, [0, 1, 2], [7.0, 8.0, 9.0])
    assert snapshot.values.tolist() == [1.0, 2.0, 3.0]
    assert snapshot.get("P1").value == 2.0
    assert db.snapshot().get("P1").value == 8.0
    with pytest.raises(UnknownPointError, match="unknown point 'P9'"):
        snapshot.get("P9")


def test_unknown_points_are_named():
    db = database(count=2)
    with pytest.raises(UnknownPointError, match="unknown point 'nope'"):
        db.number("nope")
    with pytest.raises(UnknownPointError, match="unknown point number 5"):
        update(db, [0, 5], [1.0, 2.0])
    assert np.isnan(db.read("P0").value)  # the rejected batch stored nothing


def test_duplicate_point_names_owner():
    db = database(count=1)
    with pytest.raises(DuplicatePointError, match="'P0' is declared by both 'rtu' and 'rtu2'"):
        db.add(PointSpec("P0"), "rtu2")


def test_ownership_mask():
    db = PointDatabase()
    db.add(PointSpec("a"), "one")
    db.add(PointSpec("b"), "two")
    db.add(PointSpec("c"), "one")
    assert db.owned_by("one").tolist() == [True, False, True]
    assert db.owned_by("nobody").tolist() == [False, False, False]


def test_one_million_points_fit():
    db = PointDatabase(capacity=1_000_000)
    for n in range(1_000_000):
        db.add(PointSpec(f"P{n}"), "rtu")
    points = np.arange(0, 1_000_000, 7)
    changed = update(db, points, points * 0.5)
    assert changed.size == points.size
    assert db.read("P999999").value == 999999 * 0.5
