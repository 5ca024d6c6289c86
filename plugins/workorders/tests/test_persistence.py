"""Everything survives a restart: close the service, reopen the database, read it back."""

from __future__ import annotations

from sqlalchemy import create_engine, inspect

from dms_workorders import Crew, OrderState, Workorders
from dms_workorders.schema import metadata


def test_state_survives_reopening_the_database(database, clock):
    url, schema = database
    first = Workorders.open(url, schema, clock=clock)
    first.add_crew(Crew("north", {"mv", "cable"}, "22:00", "06:00", 52.5, 13.4))
    incident = first.create_incident("Breaker Q1 tripped", element="Q1", lat=52.52, lon=13.41, priority=1, user="anna")
    order = first.create_order(incident, description="patrol feeder 3", skills=["mv"], user="anna")
    clock.advance(120)
    first.assign(order, "north", user="anna", note="night crew")
    clock.advance(300)
    first.transition(order, "dispatched", user="anna")
    first.add_note("crew reports a damaged pole", order=order, user="ben")
    outage = first.record_outage(started=clock.now - 600, customers=321, incident=incident, cause="pole", user="anna")
    cancelled = first.create_order(incident, description="duplicate", user="anna")
    first.transition(cancelled, "cancelled", user="anna", note="duplicate")

    before = (
        first.crews(), first.incidents(), first.orders(), first.history(order), first.history(cancelled),
        first.notes(incident=incident), first.outages(),
    )
    first.close()
    first.engine.dispose()

    second = Workorders.open(url, schema, clock=clock)  # tables exist: opened, not recreated
    try:
        after = (
            second.crews(), second.incidents(), second.orders(), second.history(order), second.history(cancelled),
            second.notes(incident=incident), second.outages(),
        )
        assert after == before
        assert second.order(order.id).state is OrderState.DISPATCHED and second.order(order.id).crew == "north"
        assert [t.to_state.value for t in second.history(order)] == ["new", "assigned", "dispatched"]
        assert second.outage(outage.id).customers == 321
        assert second.busy_crews() == {"north": order.id}
        # and the workflow continues where it stopped
        clock.advance(60)
        assert second.transition(order, "en_route", user="ben").state is OrderState.EN_ROUTE
    finally:
        second.close()

    if schema:  # PostgreSQL: the tables are in the test's own schema
        engine = create_engine(url)
        try:
            assert set(inspect(engine).get_table_names(schema=schema)) == set(metadata.tables)
        finally:
            engine.dispose()


def test_concurrent_transitions_from_two_services_only_one_wins(database, clock):
    """Two processes (e.g. the kernel and the HMI) on one database: the state is checked in the
    UPDATE itself, so of many simultaneous cancellations exactly one is stored."""
    import threading

    from dms_workorders import InvalidTransition

    url, schema = database
    services = [Workorders.open(url, schema, clock=clock) for _ in range(2)]
    try:
        order = services[0].create_order(services[0].create_incident("x"))
        barrier = threading.Barrier(8)
        outcomes: list[str] = []

        def cancel(service):
            barrier.wait()
            try:
                service.transition(order.id, "cancelled", user=threading.current_thread().name)
                outcomes.append("ok")
            except InvalidTransition as exc:
                outcomes.append(str(exc))

        threads = [threading.Thread(target=cancel, args=(services[i % 2],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert outcomes.count("ok") == 1, outcomes
        assert all("cannot go from cancelled to cancelled" in o for o in outcomes if o != "ok")
        assert [t.to_state.value for t in services[1].history(order.id)] == ["new", "cancelled"]
    finally:
        for service in services:
            service.close()
