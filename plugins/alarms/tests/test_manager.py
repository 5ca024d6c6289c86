"""The alarm manager on its own, with a clock the test drives: lifecycle, operator actions,
delays, chattering, flood and escalation timing."""

from __future__ import annotations

import pytest

from dms_alarms import AlarmError, AlarmManager, AlarmSettings, IsaState, UnknownAlarmError
from dms_hookspecs import Alarm, AlarmPriority, AlarmState, AuditEntry


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def manager(settings=None, **kwargs):
    events, escalations, clock = [], [], Clock()
    parsed = AlarmSettings.from_settings(settings or {})
    m = AlarmManager(parsed, events.append, clock=clock, on_escalate=lambda step, alarm: escalations.append((step.index, alarm.id, clock())), **kwargs)
    return m, events, escalations, clock


def alarm_events(events):
    return [(e.state, e.message) for e in events if isinstance(e, Alarm)]


def audits(events):
    return [(e.actor, e.action, e.subject) for e in events if isinstance(e, AuditEntry)]


def test_isa_lifecycle_ack_then_return_to_normal():
    m, events, _, clock = manager()
    raw = Alarm("voltage 1.120 pu at node 'n2' all phases above 1.100 pu", AlarmPriority.HIGH, source="limits", category="limit")
    alarm = m.process(raw)
    assert alarm.state is IsaState.UNACK_ACTIVE and m.active() == [alarm]
    assert alarm.id != raw.id  # the managed alarm has its own id
    clock.advance(5)
    m.acknowledge(alarm.id, "alice", "looking at it")
    assert alarm.state is IsaState.ACK_ACTIVE and alarm.acked_by == "alice"
    m.process(Alarm(f"cleared: {raw.message}", source="limits", category="limit", state=AlarmState.CLEARED, id=raw.id))
    assert alarm.state is IsaState.NORMAL
    assert m.active() == [] and len(m) == 0  # acknowledged and back to normal: off the list
    assert [s for s, _ in alarm_events(events)] == [AlarmState.RAISED, AlarmState.ACKNOWLEDGED, AlarmState.CLEARED]
    assert all(e.id == alarm.id for e in events if isinstance(e, Alarm))
    assert audits(events) == [("alice", "alarm.acknowledge", alarm.id)]
    with pytest.raises(UnknownAlarmError):
        m.acknowledge(alarm.id, "bob")


def test_return_to_normal_before_acknowledge_keeps_it_until_acknowledged():
    m, events, _, _ = manager()
    alarm = m.raise_condition(source="rtu1", category="comms", message="IEC 104 link to 10.0.0.1:2404 lost: timeout")
    m.process(Alarm("IEC 104 link to 10.0.0.1:2404 restored", source="rtu1", category="comms", state=AlarmState.CLEARED))
    assert alarm.state is IsaState.UNACK_RTN and m.active() == [alarm]
    again = m.raise_condition(source="rtu1", category="comms", message="IEC 104 link to 10.0.0.1:2404 lost: refused")
    assert again is alarm and alarm.state is IsaState.UNACK_ACTIVE  # same condition, in alarm again
    m.process(Alarm("restored", source="rtu1", category="comms", state=AlarmState.CLEARED))
    m.acknowledge(alarm.id, "alice")
    assert len(m) == 0
    with pytest.raises(AlarmError, match="already acknowledged"):
        m2, *_ = manager()
        a = m2.raise_condition(source="s", category="c", message="x")
        m2.acknowledge(a.id, "alice")
        m2.acknowledge(a.id, "bob")


def test_repeated_raises_are_one_alarm_and_numbers_do_not_make_new_conditions():
    m, events, _, _ = manager()
    first = m.process(Alarm("voltage 1.120 pu at node 'n2' above", source="limits", category="limit"))
    second = m.process(Alarm("voltage 1.130 pu at node 'n2' above", source="limits", category="limit"))
    other = m.process(Alarm("voltage 1.130 pu at node 'n3' above", source="limits", category="limit"))
    assert first is second and first is not other
    assert first.message == "voltage 1.130 pu at node 'n2' above"  # the latest text
    assert len([e for e in events if isinstance(e, Alarm) and e.state is AlarmState.RAISED]) == 2


def test_priorities_order_the_list_and_filters_combine():
    m, _, _, clock = manager({"classes": {"overrun": {"priority": "critical"}}})
    low = m.raise_condition(source="a", category="x", message="low one", priority=AlarmPriority.LOW)
    clock.advance(1)
    high = m.raise_condition(source="b", category="x", message="high one", priority=AlarmPriority.HIGH)
    forced = m.raise_condition(source="scheduler", category="overrun", message="job overran", priority=AlarmPriority.LOW)
    assert forced.priority is AlarmPriority.CRITICAL  # the class overrides the raising plugin
    assert m.active() == [forced, high, low]
    assert m.active(priority=AlarmPriority.LOW) == [low]
    assert m.active(priority=[AlarmPriority.LOW, AlarmPriority.HIGH], source="b") == [high]
    m.acknowledge(high.id, "alice")
    assert m.active(unacknowledged=True) == [forced, low]
    assert m.active(state=IsaState.ACK_ACTIVE) == [high]
    assert forced.state is IsaState.UNACK_RTN  # the built-in overrun class stays momentary
    assert m.counts() == {"unacked-active": 1, "unacked-rtn": 1, "acked-active": 1, "critical": 1, "high": 1, "low": 1}


def test_shelve_needs_an_expiry_and_expires_by_itself():
    m, events, _, clock = manager({"max_shelve_s": 3600.0})
    alarm = m.raise_condition(source="rtu1", category="comms", message="link lost")
    with pytest.raises(AlarmError, match="needs an expiry"):
        m.shelve(alarm.id, "alice")
    with pytest.raises(AlarmError, match="exceeds the limit of 3600 s"):
        m.shelve(alarm.id, "alice", duration_s=7200)
    with pytest.raises(AlarmError, match="not in the future"):
        m.shelve(alarm.id, "alice", until=clock() - 1)
    m.shelve(alarm.id, "alice", duration_s=600, reason="RTU maintenance")
    assert alarm.shelved and m.active() == [] and m.shelved() == [alarm]
    assert m.active(include_shelved=True) == [alarm]
    clock.advance(599)
    m.tick()
    assert alarm.shelved
    clock.advance(2)
    m.tick()
    assert not alarm.shelved and m.active() == [alarm]
    assert [s for s, _ in alarm_events(events)] == [AlarmState.RAISED, AlarmState.SHELVED, AlarmState.RAISED]
    assert audits(events) == [("alice", "alarm.shelve", alarm.id), ("alarms", "alarm.unshelve", alarm.id)]


def test_operator_and_engineering_suppression():
    m, events, _, _ = manager({"suppress": [{"category": "overrun", "reason": "known slow job"}]})
    engineered = m.raise_condition(source="scheduler", category="overrun", message="job 'pf' overran")
    assert engineered.suppressed_by == {"engineering": "known slow job"} and m.active() == []
    alarm = m.raise_condition(source="rtu1", category="comms", message="link lost")
    m.suppress(alarm.id, "bob", "sensor replaced")
    assert m.active() == [] and set(m.suppressed()) == {alarm, engineered}
    with pytest.raises(AlarmError):
        m.suppress(alarm.id, "bob")
    m.unsuppress(alarm.id, "bob")
    assert m.active() == [alarm]
    assert audits(events) == [("bob", "alarm.suppress", alarm.id), ("bob", "alarm.unsuppress", alarm.id)]


def test_on_delay_raises_only_a_persisting_condition():
    m, events, _, clock = manager({"classes": {"comms": {"on_delay_s": 10.0}}})
    assert m.raise_condition(source="rtu1", category="comms", message="link lost") is None
    clock.advance(5)
    m.clear_condition(source="rtu1", category="comms")  # back within the on-delay: never annunciated
    clock.advance(20)
    m.tick()
    assert len(m) == 0 and events == []
    m.raise_condition(source="rtu1", category="comms", message="link lost")
    clock.advance(9.5)
    m.tick()
    assert len(m) == 0
    clock.advance(1)
    m.tick()
    assert [a.message for a in m.active()] == ["link lost"]


def test_off_delay_keeps_the_alarm_through_short_returns_to_normal():
    m, events, _, clock = manager({"classes": {"limit": {"off_delay_s": 30.0}}})
    alarm = m.raise_condition(source="limits", category="limit", message="loading 'l1' 105 %")
    m.clear_condition(source="limits", category="limit", message="loading 'l1' 99 %")
    clock.advance(10)
    m.tick()
    assert alarm.active  # off-delay running
    m.raise_condition(source="limits", category="limit", message="loading 'l1' 104 %")  # back: off-delay cancelled
    clock.advance(40)
    m.tick()
    assert alarm.active
    m.clear_condition(source="limits", category="limit", message="loading 'l1' 98 %")
    clock.advance(31)
    m.tick()
    assert alarm.state is IsaState.UNACK_RTN
    assert [s for s, _ in alarm_events(events)] == [AlarmState.RAISED, AlarmState.CLEARED]


def test_momentary_and_auto_clearing_classes():
    m, _, _, clock = manager()
    failed = m.raise_condition(source="rtu1", category="command", message="command on 'CB1' failed")
    assert failed.state is IsaState.UNACK_RTN  # an event: nothing to return to normal from
    bad = m.raise_condition(source="state_estimation", category="bad-data", point="S1/P", message="bad data: S1/P")
    clock.advance(100)
    m.raise_condition(source="state_estimation", category="bad-data", point="S1/P", message="bad data: S1/P")
    clock.advance(100)
    m.tick()
    assert bad.active  # re-raised 100 s ago, auto clear after 120 s
    clock.advance(21)
    m.tick()
    assert bad.state is IsaState.UNACK_RTN


def test_chattering_alarm_is_suppressed_and_released_after_quiet_period():
    m, events, _, clock = manager({"classes": {"comms": {"chatter_count": 3, "chatter_window_s": 60.0}}})
    for _ in range(2):
        alarm = m.raise_condition(source="rtu1", category="comms", message="link lost")
        clock.advance(5)
        m.clear_condition(source="rtu1", category="comms")
        clock.advance(5)
    assert not alarm.suppressed
    m.raise_condition(source="rtu1", category="comms", message="link lost")  # third transition in 20 s
    assert "chattering" in alarm.suppressed_by and m.active() == []
    assert alarm_events(events)[-1][0] is AlarmState.SUPPRESSED
    m.clear_condition(source="rtu1", category="comms")
    clock.advance(59)
    m.tick()
    assert alarm.suppressed
    clock.advance(2)
    m.tick()
    assert not alarm.suppressed and m.active() == [alarm]  # quiet for a full window: shown again


def test_flood_raises_its_own_alarm_per_position_and_ends_below_the_lower_threshold():
    m, events, _, clock = manager(
        {"positions": {"north": ["rtu-n*"]}, "flood": {"start": 10, "end": 5, "window_s": 600.0, "suppress_priorities": ["low"]}}
    )
    for n in range(9):
        m.raise_condition(source=f"rtu-n{n}", category="comms", message="link lost", priority=AlarmPriority.MEDIUM)
        clock.advance(30)
    for n in range(5):  # another position does not count for north
        m.raise_condition(source=f"rtu-s{n}", category="comms", message="link lost")
    assert m.flooding() == set()
    m.raise_condition(source="rtu-n9", category="comms", message="link lost")
    assert m.flooding() == {"north"}
    floods = m.active(category="flood")
    assert len(floods) == 1 and floods[0].priority is AlarmPriority.HIGH and floods[0].position == "north"
    assert "alarm flood at north: 10 alarms in the last 10 min" in floods[0].message
    quiet = m.raise_condition(source="rtu-n10", category="comms", message="minor", priority=AlarmPriority.LOW)
    assert quiet.suppressed_by == {"flood": "alarm flood at north"}
    clock.advance(600 - 30 * 5)  # the first five have left the window: 6 remain (incl. n10? low is suppressed, not counted)
    m.tick()
    assert m.flooding() == {"north"}
    clock.advance(30 * 2)
    m.tick()
    assert m.flooding() == set()
    assert floods[0].state is IsaState.UNACK_RTN
    assert not quiet.suppressed


def test_escalation_steps_fire_once_each_until_acknowledged():
    m, _, escalations, clock = manager(
        {
            "notifiers": {"oncall": {"type": "email"}, "lead": {"type": "email"}},
            "escalation": [
                {"priority": "critical", "unacknowledged_for_s": 300.0, "notify": ["oncall"]},
                {"priority": "critical", "unacknowledged_for_s": 900.0, "notify": ["lead"]},
                {"priority": "low", "unacknowledged_for_s": 10.0, "notify": ["oncall"]},
            ],
        }
    )
    alarm = m.raise_condition(source="alarms", category="protection", message="trip", priority=AlarmPriority.CRITICAL)
    acked = m.raise_condition(source="x", category="protection", message="other trip", priority=AlarmPriority.CRITICAL)
    m.acknowledge(acked.id, "alice")
    clock.advance(299)
    m.tick()
    assert escalations == []
    clock.advance(1)
    m.tick()
    m.tick()
    assert [(step, aid) for step, aid, _ in escalations] == [(0, alarm.id)]
    clock.advance(600)
    m.tick()
    assert [(step, aid) for step, aid, _ in escalations] == [(0, alarm.id), (1, alarm.id)]
    m.acknowledge(alarm.id, "alice")
    clock.advance(10_000)
    m.tick()
    assert len(escalations) == 2


def test_topology_state_check_suppresses_and_releases():
    dead = {"eq-7"}
    m, events, _, _ = manager(
        elements_of=lambda alarm: ("eq-7",) if alarm.point == "F7/P" else ("eq-1",),
        state_check=lambda alarm: "de-energised" if set(alarm.elements) <= dead else None,
    )
    downstream = m.raise_condition(source="rtu", category="quality", point="F7/P", message="invalid")
    upstream = m.raise_condition(source="rtu", category="quality", point="F1/P", message="invalid")
    assert downstream.suppressed_by == {"state": "de-energised"} and m.active() == [upstream]
    dead.clear()
    assert m.reevaluate_state() == [downstream]
    assert m.active() == [downstream, upstream] or set(m.active()) == {downstream, upstream}


def test_reset_comment_and_acknowledge_all_are_audited():
    m, events, _, _ = manager({"positions": {"north": ["rtu-n*"]}})
    latched = m.raise_condition(source="rtu-n1", category="comms", message="source 'rtu-n1' failed: OSError")
    other = m.raise_condition(source="rtu-n2", category="comms", message="link lost")
    south = m.raise_condition(source="rtu-s1", category="comms", message="link lost")
    m.comment(latched.id, "bob", "RTU restarted by hand")
    m.reset(latched.id, "bob", "source runs again")
    assert latched.state is IsaState.UNACK_RTN and latched.comments[0][1:] == ("bob", "RTU restarted by hand")
    with pytest.raises(AlarmError, match="already returned to normal"):
        m.reset(latched.id, "bob")
    acked = m.acknowledge_all("alice", position="north")
    assert {a.id for a in acked} == {latched.id, other.id}
    assert m.active() == [other, south] or set(m.active()) == {other, south}
    assert [a[1] for a in audits(events)] == ["alarm.comment", "alarm.reset", "alarm.acknowledge", "alarm.acknowledge"]
