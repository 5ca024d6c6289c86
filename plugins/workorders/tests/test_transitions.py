"""The work-order state machine: every valid path, invalid transitions with clear errors, audit."""

from __future__ import annotations

import pytest

from dms_hookspecs import AuditEntry
from dms_workorders import TRANSITIONS, Crew, InvalidTransition, OrderState, UnknownRecord, WorkflowError

S = OrderState


@pytest.fixture
def order(service):
    service.add_crew(Crew("north", {"mv"}, "06:00", "18:00", 52.52, 13.40))
    incident = service.create_incident("Breaker Q1 tripped", element="Q1", lat=52.5, lon=13.4, priority=1, user="anna")
    return service.create_order(incident, description="inspect feeder 3", skills=["mv"], user="anna")


def test_full_lifecycle_is_persisted_and_audited(service, order, clock, audit):
    assert order.state is S.NEW and order.crew is None
    clock.advance(60)
    order = service.assign(order, "north", user="anna", note="closest crew")
    assert (order.state, order.crew) == (S.ASSIGNED, "north")
    for state in (S.DISPATCHED, S.EN_ROUTE, S.ON_SITE, S.RESOLVED, S.CLOSED):
        clock.advance(600)
        order = service.transition(order, state, user="ben", note=f"now {state.value}")
        assert order.state is state
    assert service.order(order.id) == order
    history = service.history(order)
    assert [(t.from_state, t.to_state) for t in history] == [
        (None, S.NEW),
        (S.NEW, S.ASSIGNED),
        (S.ASSIGNED, S.DISPATCHED),
        (S.DISPATCHED, S.EN_ROUTE),
        (S.EN_ROUTE, S.ON_SITE),
        (S.ON_SITE, S.RESOLVED),
        (S.RESOLVED, S.CLOSED),
    ]
    assert [t.actor for t in history] == ["anna", "anna"] + ["ben"] * 5
    assert history[1].note == "closest crew" and history[1].crew == "north"
    assert [t.time - history[0].time for t in history] == [0, 60, 660, 1260, 1860, 2460, 3060]

    transitions = [e for e in audit if e.action == "workorders.order.transition"]
    assert all(isinstance(e, AuditEntry) for e in audit)
    assert [e.detail.split(";")[0] for e in transitions] == [
        "new -> assigned", "assigned -> dispatched", "dispatched -> en_route", "en_route -> on_site", "on_site -> resolved", "resolved -> closed"
    ]
    assert {e.subject for e in transitions} == {f"work order {order.id}"}
    assert [e.actor for e in transitions] == ["anna"] + ["ben"] * 5
    assert [e.time for e in transitions] == [t.time for t in history[1:]]
    assert [e.action for e in audit[:3]] == ["workorders.crew.add", "workorders.incident.create", "workorders.order.create"]


@pytest.mark.parametrize(
    ("path", "requested"),
    [
        ([], S.DISPATCHED),  # new -> dispatched skips the assignment
        ([], S.CLOSED),
        ([S.DISPATCHED], S.ON_SITE),  # not en route yet
        ([S.DISPATCHED, S.EN_ROUTE, S.ON_SITE], S.CLOSED),  # must be resolved first
        ([S.DISPATCHED, S.EN_ROUTE, S.ON_SITE, S.RESOLVED, S.CLOSED], S.NEW),  # closed is final
        ([S.CANCELLED], S.ASSIGNED),
    ],
)
def test_invalid_transitions_are_rejected_naming_order_and_states(service, order, path, requested, audit):
    if path and path[0] is not S.CANCELLED:
        service.assign(order, "north")
    for state in path:
        service.transition(order, state)
    current = service.order(order).state
    before = len(service.history(order))
    audited = len(audit)
    with pytest.raises(InvalidTransition) as raised:
        service.transition(order, requested.value, user="ben")
    error = raised.value
    assert (error.order, error.current, error.requested) == (order.id, current, requested)
    assert str(error).startswith(f"work order {order.id}: cannot go from {current.value} to {requested.value}: ")
    assert service.order(order).state is current  # nothing changed, nothing recorded
    assert len(service.history(order)) == before
    assert len(audit) == audited


def test_error_lists_the_allowed_next_states(service, order):
    with pytest.raises(InvalidTransition, match=r"work order \d+: cannot go from new to on_site: allowed from new: assigned, cancelled"):
        service.transition(order, "on_site")
    service.transition(order, S.CANCELLED)
    with pytest.raises(InvalidTransition, match="cannot go from cancelled to new: allowed from cancelled: none, it is final"):
        service.transition(order, S.NEW)


def test_assigned_only_through_assign_and_only_from_new(service, order):
    with pytest.raises(InvalidTransition, match="cannot go from new to assigned: use assign"):
        service.transition(order, S.ASSIGNED)
    service.assign(order, "north")
    with pytest.raises(InvalidTransition, match="cannot go from assigned to assigned: only a new order can be assigned"):
        service.assign(order, "north")


def test_back_to_new_releases_the_crew_and_cancel_is_final(service, order):
    service.assign(order, "north")
    released = service.transition(order, "new", note="crew needed elsewhere")
    assert (released.state, released.crew) == (S.NEW, None)
    assert service.busy_crews() == {}
    service.assign(order, "north")
    service.transition(order, S.DISPATCHED)
    cancelled = service.transition(order, "cancelled", note="fault cleared by recloser")
    assert cancelled.state is S.CANCELLED
    assert service.busy_crews() == {}  # a cancelled order does not keep the crew busy
    assert TRANSITIONS[S.CANCELLED] == frozenset() and TRANSITIONS[S.CLOSED] == frozenset()


def test_resolved_order_can_be_reopened_on_site(service, order):
    service.assign(order, "north")
    for state in ("dispatched", "en route", "on_site", "resolved", "on_site", "resolved", "closed"):
        order = service.transition(order, state)
    assert order.state is S.CLOSED


def test_unknown_state_order_and_crew(service, order):
    with pytest.raises(ValueError, match="unknown work-order state 'parked' \\(valid: new, assigned, dispatched"):
        service.transition(order, "parked")
    with pytest.raises(UnknownRecord, match="no work order 999"):
        service.transition(999, "cancelled")
    with pytest.raises(UnknownRecord, match="no crew named 'south'"):
        service.assign(order, "south")


def test_crew_must_have_the_skills_of_the_order(service, order):
    service.add_crew(Crew("lv-team", {"lv"}, "00:00", "00:00", 52.5, 13.4))
    with pytest.raises(WorkflowError, match=f"work order {order.id}: crew 'lv-team' lacks skills mv"):
        service.assign(order, "lv-team")


def test_notes_on_incidents_and_orders(service, order, audit):
    service.add_note("customer reports smoke near the kiosk", incident=order.incident_id, user="anna")
    service.add_note("bring the cable fault locator", order=order, user="ben")
    assert [n.text for n in service.notes(incident=order.incident_id)] == [
        "customer reports smoke near the kiosk", "bring the cable fault locator"
    ]
    [order_note] = service.notes(order=order)
    assert (order_note.actor, order_note.incident_id, order_note.order_id) == ("ben", order.incident_id, order.id)
    assert audit[-1].action == "workorders.note" and audit[-1].subject == f"work order {order.id}" and audit[-1].actor == "ben"
    with pytest.raises(ValueError, match="exactly one"):
        service.add_note("to whom?")


def test_incident_closes_only_when_its_orders_are_done(service, order):
    with pytest.raises(WorkflowError, match=rf"incident {order.incident_id} cannot be closed: work orders still open: {order.id} \(new\)"):
        service.close_incident(order.incident_id)
    service.transition(order, "cancelled")
    closed = service.close_incident(order.incident_id, user="anna", note="false alarm")
    assert closed.status == "closed" and closed.closed is not None
    assert service.incidents(status="open") == []
    with pytest.raises(WorkflowError, match="is closed"):
        service.create_order(closed)


def test_events_that_fail_are_reported_after_the_others_are_handled(service, monkeypatch):
    from dms_hookspecs import Alarm, AlarmPriority

    good = Alarm("Breaker Q7 tripped", AlarmPriority.HIGH, category="protection")
    bad = Alarm("Breaker Q8 tripped", AlarmPriority.HIGH, category="protection")
    original = service.create_incident

    def failing(title, **kwargs):
        if title == bad.message:
            raise RuntimeError("database unreachable")
        return original(title, **kwargs)

    monkeypatch.setattr(service, "create_incident", failing)
    with pytest.raises(WorkflowError, match="1 events not handled; first: Alarm: RuntimeError: database unreachable"):
        service.handle([bad, good])
    assert [i.title for i in service.incidents()] == ["Breaker Q7 tripped"]
