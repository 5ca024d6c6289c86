"""The static twin and point maps that protocol plugins build on."""

from __future__ import annotations

import pytest

from dms_hookspecs import INVALID, PointKind, PointSpec, TwinAPI
from dms_simulator import PointMapEntry, StaticTwin, read_point_map, write_point_map
from dms_simulator.pointmap import PointMapError


def twin():
    return StaticTwin(
        [PointSpec("U"), PointSpec("CB/Pos", PointKind.DOUBLE, controllable=True), PointSpec("Tap", PointKind.STEP, controllable=True)],
        {"U": 20.1, "CB/Pos": 2},
    )


async def test_static_twin_values_subscriptions_and_controls():
    t = twin()
    assert isinstance(t, TwinAPI)
    seen = []
    stop = t.subscribe(seen.extend)
    assert t.read("U")[0] == 20.1
    t.set("U", 20.4)
    assert seen[-1][:3] == ("U", 20.4, 0)
    assert await t.operate("CB/Pos", 1) == (True, "executed")
    assert t.read("CB/Pos")[0] == 1.0 and t.commands == [("CB/Pos", 1.0)]
    assert await t.operate("U", 5) == (False, "point 'U' is not controllable")
    assert await t.operate("CB/Pos", 7) == (False, "breaker command must be 1 (open) or 2 (close), got 7")
    t.refuse["Tap"] = "tap changer blocked"
    assert await t.operate("Tap", 3) == (False, "tap changer blocked")
    t.invalidate(["U"])
    assert t.read("U")[1] == INVALID.to_bits()
    count = len(seen)
    stop()
    t.set("U", 1.0)
    assert len(seen) == count  # unsubscribed


def test_point_map_round_trip_and_errors(tmp_path):
    path = tmp_path / "map.csv"
    entries = [PointMapEntry("U", "1:1001"), PointMapEntry("CB/Pos", "1:2001", PointKind.DOUBLE)]
    write_point_map(path, entries)
    assert read_point_map(path) == entries
    path.write_text("point,address,kind\nU,1:1,analog\nV,1:1,analog\n")
    with pytest.raises(PointMapError, match=r"map.csv:3: address '1:1' used twice"):
        read_point_map(path)
    path.write_text("point,address,kind\nU,1:1,gauge\n")
    with pytest.raises(PointMapError, match=r"map.csv:2: 'gauge' is not a valid PointKind"):
        read_point_map(path)
    with pytest.raises(PointMapError, match="cannot open point map"):
        read_point_map(tmp_path / "missing.csv")
