"""The ``sql`` sink in a real kernel fed by the random-walk source, stored in SQLite."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import numpy as np

import dms_replay.plugin
import dms_sqlhistorian.plugin
from dms_hookspecs import Alarm, AlarmPriority, AuditEntry, Command, ControlAction, PointId, StudyResult
from dms_sqlhistorian import query

POINTS = 4
NAMES = [f"S1/U{n}" for n in range(POINTS)]


def deployment(url: str, controls: int = 0) -> str:
    return f"""
        [deployment]
        name = "historian test"

        [[sources]]
        name = "rtu"
        type = "random_walk"
        settings = {{ points = {POINTS}, period_s = 0.05, prefix = "S1/U", seed = 42, controls = {controls} }}

        [[sinks]]
        name = "historian"
        type = "sql"
        settings = {{ url = "{url}" }}
    """


def expected_walk(steps: int) -> np.ndarray:
    """The first ``steps`` values of each point, computed as the random-walk source does (defaults, seed 42)."""
    rng = np.random.default_rng(42)
    values = np.full(POINTS, 10.0)
    rows = []
    for _ in range(steps):
        values = values + (rng.normal(0.0, 0.1, POINTS) - 0.05 * (values - 10.0))
        rows.append(values.copy())
    return np.array(rows)


async def test_measurements_are_stored_as_the_point_database_holds_them(make_kernel, sqlite_db, wait_until):
    path, url = sqlite_db
    kernel = make_kernel(dms_replay.plugin, dms_sqlhistorian.plugin, deployment=deployment(url))
    async with kernel:
        # read while the kernel writes (WAL): rows appear during the run, not only at shutdown
        await wait_until(
            lambda: path.exists() and all(query.count(url, point=name) >= 5 for name in NAMES), what="5 values per point"
        )
        assert kernel.counters["updates"] > 0

    stats = kernel.bus.stats()["sink:historian"]
    assert (stats.errors, stats.dropped, stats.queued) == (0, 0, 0)
    counts = query.counts_by_point(url)
    assert set(counts) == set(NAMES)

    walk = expected_walk(5)
    for column, name in enumerate(NAMES):
        stored = query.history(url, name)
        assert len(stored) == counts[name] == query.count(url, point=name)
        assert [m.value for m in stored[:5]] == walk[:, column].tolist()
        assert [m.source_time for m in stored] == sorted(m.source_time for m in stored)
        assert all(m.quality.is_good for m in stored)
        # the newest stored value is exactly what the point database holds after shutdown
        current = kernel.points.read(name)
        assert query.latest(url, name) == stored[-1] == current
        # time window, inclusive at both ends
        window = query.history(url, name, since=stored[1].source_time, until=stored[-2].source_time)
        assert window == stored[1:-1]

    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        sources = db.execute("SELECT DISTINCT source FROM measurements").fetchall()
    assert sources == [("rtu",)]


async def test_alarms_audit_commands_and_studies_are_stored(make_kernel, sqlite_db):
    path, url = sqlite_db
    kernel = make_kernel(dms_replay.plugin, dms_sqlhistorian.plugin, deployment=deployment(url, controls=1))
    alarm = Alarm("S1/U0 above limit", AlarmPriority.HIGH, source="limits", point=PointId("S1/U0"), category="limit")
    login = AuditEntry(actor="operator1", action="login", subject="console", detail="test login")
    study = StudyResult("power_flow", "test_solver", True, data={"v_pu": np.array([1.0, 0.98]), "buses": ["B1", "B2"]}, message="ok")
    proposal = ControlAction(Command("S1/USP0", 10.5, originator="controller:test"), controller="test", rationale="voltage low")
    command = Command(target="S1/USP0", value=11.25, originator="operator1", reason="raise voltage")

    async with kernel:
        kernel.emit(alarm)
        kernel.emit(login)
        kernel.emit(study)
        kernel.emit(proposal)
        result = await kernel.execute(command)
        assert result.ok, result

    assert kernel.bus.stats()["sink:historian"].errors == 0
    assert query.records(url, "alarms") == [
        {
            "id": 1,
            "alarm_id": alarm.id,
            "time": alarm.time,
            "priority": 2,
            "state": "raised",
            "category": "limit",
            "source": "limits",
            "point": "S1/U0",
            "message": "S1/U0 above limit",
        }
    ]

    audit = [(row["actor"], row["action"], row["subject"]) for row in query.records(url, "audit")]
    assert audit[0] == ("kernel", "kernel.start", "historian test")
    assert audit[-1] == ("kernel", "kernel.stop", "historian test")  # emitted during shutdown, still stored
    assert ("operator1", "login", "console") in audit
    assert ("operator1", "command.received", "S1/USP0") in audit
    assert ("operator1", "command.result", "S1/USP0") in audit

    [stored_command] = query.records(url, "commands")
    assert stored_command | {"id": None} == {
        "id": None,
        "command_id": command.id,
        "target": "S1/USP0",
        "value": 11.25,
        "select_before_operate": False,
        "originator": "operator1",
        "reason": "raise voltage",
        "timeout_s": 10.0,
        "created": command.created,
    }
    [stored_result] = query.records(url, "command_results")
    assert (stored_result["command_id"], stored_result["status"], stored_result["step"]) == (command.id, "succeeded", "operate")
    assert stored_result["finished"] >= command.created

    [stored_study] = query.records(url, "study_results")
    assert (stored_study["study"], stored_study["solver"], stored_study["converged"], stored_study["message"]) == (
        "power_flow", "test_solver", True, "ok",
    )
    assert json.loads(stored_study["data"]) == {"v_pu": [1.0, 0.98], "buses": ["B1", "B2"]}

    [stored_action] = query.records(url, "control_actions")
    assert (stored_action["controller"], stored_action["rationale"], stored_action["command_id"]) == ("test", "voltage low", proposal.command.id)
    assert (stored_action["target"], stored_action["value"]) == ("S1/USP0", 10.5)

    # the executed set-point came back from the source as a measurement
    assert query.latest(url, "S1/USP0").value == 11.25 == kernel.points.read("S1/USP0").value
