"""The workflow service: incidents, work orders, crews, notes, outages and reliability indices.

:class:`Workorders` is the Python API the HMI and other plugins call. Every method is
synchronous and does its database work in one transaction; call it from a worker thread
(``asyncio.to_thread``) on the event loop. Every change is persisted first, then emitted as
an :class:`~dms_hookspecs.AuditEntry` (actor = the user given, time = the service clock).
"""

from __future__ import annotations

import json
import logging
import threading
import time as _time
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

import attrs
from sqlalchemy import Connection, Engine, and_, select
from sqlalchemy.exc import IntegrityError

from dms_hookspecs import Alarm, AlarmPriority, AlarmState, AuditEntry, Event, TopologyChanged

from . import rows, schema
from .geo import element_location, haversine_km, on_shift, parse_clock
from .indices import MOMENTARY_LIMIT_S
from .outages import OutageRecords
from .records import Crew, Incident, Note, Transition, WorkOrder
from .states import (
    ACTIVE_STATES,
    FINAL_STATES,
    TRANSITIONS,
    InvalidTransition,
    NoCrewAvailable,
    OrderState,
    UnknownRecord,
    WorkflowError,
    parse_state,
)

__all__ = ["Workorders", "AlarmRules", "AUTO"]

log = logging.getLogger("leitstand.workorders")

AUTO = "auto"
"""Pass as ``crew`` to :meth:`Workorders.assign` for the nearest qualified crew on shift."""

@attrs.frozen
class AlarmRules:
    """Which alarms become incidents, and what happens then.

    An alarm event in state ``raised`` becomes an incident if its category is in
    ``categories`` or its priority is at least as urgent as ``priority``.

    :param categories: alarm categories that always create an incident (e.g. ``protection``).
    :param priority: alarms this urgent or more create an incident; ``None``: by category only.
    :param create_orders: also create a work order (state ``new``) for each such incident.
    :param auto_assign: assign that order to the nearest qualified crew on shift at once.
    :param skills_by_category: skills the order needs, per alarm category.
    """

    categories: frozenset[str] = attrs.field(default=frozenset({"protection"}), converter=rows.skill_set)
    priority: AlarmPriority | None = AlarmPriority.CRITICAL
    create_orders: bool = True
    auto_assign: bool = False
    skills_by_category: Mapping[str, frozenset[str]] = attrs.field(factory=dict)

    def wants(self, alarm: Alarm) -> bool:
        if alarm.state is not AlarmState.RAISED:
            return False
        return alarm.category in self.categories or (self.priority is not None and alarm.priority <= self.priority)

class Workorders(OutageRecords):
    """Incident and crew-dispatch workflow on one database.

    :param engine: SQLAlchemy engine (see :func:`dms_workorders.schema.make_engine`); the
        tables must exist (:meth:`open` creates them).
    :param emit: called with each :class:`AuditEntry` (the kernel's ``emit``); ``None``: none.
    :param model: the network model (``kernel.model``): element locations and customer counts.
    :param clock: the time source (seconds since the epoch).
    :param timezone: IANA zone of crew shift times.
    :param customers_per_load: customers of an energy consumer without ``customer_count``.
    :param customers_served: N_T for the indices; 0: the model's customers.
    :param momentary_limit_s: interruptions this long or shorter are momentary (IEEE 1366: 5 min).
    :param rules: which alarms create incidents.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        emit: Callable[[Event], None] | None = None,
        model: Any = None,
        clock: Callable[[], float] = _time.time,
        timezone: str = "UTC",
        customers_per_load: int = 1,
        customers_served: int = 0,
        momentary_limit_s: float = MOMENTARY_LIMIT_S,
        rules: AlarmRules | None = None,
    ) -> None:
        self.engine = engine
        self.emit = emit
        self.model = model
        self.clock = clock
        self.zone = ZoneInfo(timezone)
        self.customers_per_load = customers_per_load
        self.customers_served = customers_served
        self.momentary_limit_s = momentary_limit_s
        self.rules = rules or AlarmRules()
        self._lock = threading.RLock()  # serialises assignment and outage bookkeeping
        self._consumers_at: dict[str, list[str]] | None = None

    @classmethod
    def open(cls, url: str, schema_name: str | None = None, **options: Any) -> Workorders:
        """Connect to ``url`` (SQLite file, PostgreSQL, …), create missing tables, return the service.

        :param schema_name: database schema for the tables (PostgreSQL), created if missing.
        :param options: keyword arguments of :class:`Workorders`.
        """
        engine = schema.make_engine(url, schema_name)
        try:
            with engine.begin() as connection:
                schema.create_tables(connection, schema_name)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, **options)

    def close(self) -> None:
        """Release the database connections (the service reconnects if used again)."""
        self.engine.dispose()

    # -- audit ---------------------------------------------------------------------------

    def _audit(self, actor: str, action: str, subject: str, detail: str, when: float) -> None:
        if self.emit is None:
            return
        try:
            self.emit(AuditEntry(actor=actor, action=f"workorders.{action}", subject=subject, detail=detail, time=when))
        except Exception:  # noqa: BLE001 - the change is persisted; the trail is best effort
            log.exception("cannot emit audit entry for %s %s", action, subject)

    # -- crews ---------------------------------------------------------------------------

    def add_crew(self, crew: Crew, *, user: str = "system") -> Crew:
        """Add a crew, or replace the crew of that name (skills, shift, location)."""
        parse_clock(crew.shift_start)
        parse_clock(crew.shift_end)
        now = self.clock()
        row = {
            "skills": json.dumps(sorted(crew.skills)),
            "shift_start": crew.shift_start,
            "shift_end": crew.shift_end,
            "lat": crew.lat,
            "lon": crew.lon,
            "updated": now,
        }
        with self.engine.begin() as connection:
            changed = connection.execute(schema.crews.update().where(schema.crews.c.name == crew.name).values(**row)).rowcount
            if not changed:
                connection.execute(schema.crews.insert().values(name=crew.name, **row))
        self._audit(user, "crew.update" if changed else "crew.add", f"crew {crew.name}", f"skills {', '.join(sorted(crew.skills)) or 'none'}; shift {crew.shift_start}-{crew.shift_end}; at {crew.lat}, {crew.lon}", now)
        return crew

    def move_crew(self, name: str, lat: float, lon: float, *, user: str = "system") -> Crew:
        """Update a crew's position (e.g. from its vehicle's GPS)."""
        now = self.clock()
        with self.engine.begin() as connection:
            if not connection.execute(schema.crews.update().where(schema.crews.c.name == name).values(lat=lat, lon=lon, updated=now)).rowcount:
                raise UnknownRecord(f"no crew named {name!r}")
        self._audit(user, "crew.move", f"crew {name}", f"at {lat:.5f}, {lon:.5f}", now)
        return self.crew(name)

    def crew(self, name: str) -> Crew:
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.crews).where(schema.crews.c.name == name)).first()
        if row is None:
            raise UnknownRecord(f"no crew named {name!r}")
        return rows.crew(row)

    def crews(self) -> list[Crew]:
        with self.engine.connect() as connection:
            return [rows.crew(row) for row in connection.execute(select(schema.crews).order_by(schema.crews.c.name))]

    def busy_crews(self) -> dict[str, int]:
        """Crews working on an order (assigned … on site): crew name → order id."""
        query = select(schema.orders.c.crew, schema.orders.c.id).where(
            schema.orders.c.state.in_([s.value for s in ACTIVE_STATES]), schema.orders.c.crew.is_not(None)
        )
        with self.engine.connect() as connection:
            return {crew: order for crew, order in connection.execute(query)}

    def nearest_crew(self, order: WorkOrder | int, when: float | None = None) -> tuple[Crew, float]:
        """The crew automatic assignment would choose, and its distance in km.

        Candidates have every skill the order needs, are on shift at ``when`` (default now),
        are not busy with another order and have a known position; the nearest by great-circle
        (haversine) distance to the incident wins, ties by name.

        :raises NoCrewAvailable: no candidate, or the incident has no location; the message
            says how many crews failed which condition.
        """
        order = self.order(order)
        incident = self.incident(order.incident_id)
        when = self.clock() if when is None else when
        needs = ", ".join(sorted(order.skills)) or "no particular skills"
        if incident.lat is None or incident.lon is None:
            raise NoCrewAvailable(
                f"work order {order.id}: incident {incident.id} has no location (element {incident.element!r}); assign a crew by name"
            )
        crews = self.crews()
        busy = self.busy_crews()
        qualified = [c for c in crews if order.skills <= c.skills]
        working = [c for c in qualified if on_shift(c.shift_start, c.shift_end, when, self.zone)]
        free = [c for c in working if busy.get(c.name, order.id) == order.id]
        located = [c for c in free if c.lat is not None and c.lon is not None]
        if not located:
            local = rows.local_clock(when, self.zone)
            raise NoCrewAvailable(
                f"work order {order.id} (needs {needs}): no crew available — {len(crews)} crews, {len(qualified)} qualified, "
                f"{len(working)} of them on shift at {local} {self.zone.key}, {len(free)} free, {len(located)} with a known position"
            )
        ranked = sorted((haversine_km(incident.lat, incident.lon, c.lat, c.lon), c.name, c) for c in located)  # type: ignore[arg-type]
        distance, _, crew = ranked[0]
        return crew, distance

    # -- incidents -----------------------------------------------------------------------

    def create_incident(
        self,
        title: str,
        *,
        element: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
        priority: int = AlarmPriority.MEDIUM,
        user: str = "operator",
        source: str = "operator",
        alarm_id: str | None = None,
        time: float | None = None,
    ) -> Incident:
        """Open an incident.

        Without ``lat``/``lon`` the location comes from the CIM ``Location`` of ``element`` in
        the network model (an mRID, an equipment name or a SCADA point name), if any.

        :param priority: 1 (critical) … 4 (low).
        :param source: ``operator`` (manual), ``alarm`` or ``outage``.
        """
        if not title.strip():
            raise ValueError("an incident needs a title")
        priority = int(AlarmPriority(priority))
        if (lat is None) != (lon is None):
            raise ValueError("give both lat and lon, or neither")
        if lat is None and element and self.model is not None:
            found = element_location(self.model, element)
            if found is not None:
                _, lat, lon = found
        when = self.clock() if time is None else time
        row = {
            "title": title,
            "source": source,
            "created": when,
            "created_by": user,
            "priority": priority,
            "element": element,
            "lat": lat,
            "lon": lon,
            "status": "open",
            "alarm_id": alarm_id,
            "closed": None,
        }
        with self.engine.begin() as connection:
            incident_id = connection.execute(schema.incidents.insert().values(**row)).inserted_primary_key[0]
        incident = Incident(id=int(incident_id), **row)
        where = f"; at {lat:.5f}, {lon:.5f}" if lat is not None and lon is not None else ""
        self._audit(user, "incident.create", f"incident {incident.id}", f"{source}: {title} (priority {priority}, element {element}){where}", when)
        return incident

    def incident_from_alarm(self, alarm: Alarm) -> Incident | None:
        """Open an incident (and a work order, by the rules) for an alarm the rules select.

        Each alarm creates at most one incident (by alarm id). A ``cleared`` event of an
        alarm that has an incident adds a note to it. Returns the new incident, else ``None``.
        """
        existing = self._incident_of_alarm(alarm.id)
        if existing is not None:
            if alarm.state is AlarmState.CLEARED:
                self.add_note(f"alarm cleared: {alarm.message}", incident=existing, user=f"alarm:{alarm.source}")
            return None
        if not self.rules.wants(alarm):
            return None
        try:
            incident = self.create_incident(
                alarm.message,
                element=None if alarm.point is None else alarm.point.name,
                priority=alarm.priority,
                user=f"alarm:{alarm.source}",
                source="alarm",
                alarm_id=alarm.id,
                time=alarm.time,
            )
        except IntegrityError:  # the same alarm handled concurrently
            return None
        if self.rules.create_orders:
            skills = self.rules.skills_by_category.get(alarm.category, frozenset())
            order = self.create_order(incident, description=alarm.message, skills=skills, user="system")
            if self.rules.auto_assign:
                try:
                    self.assign(order, AUTO, user="system")
                except NoCrewAvailable as exc:
                    log.warning("%s", exc)
                    self.add_note(f"automatic assignment failed: {exc}", order=order, user="system")
        return incident

    def _incident_of_alarm(self, alarm_id: str) -> Incident | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.incidents).where(schema.incidents.c.alarm_id == alarm_id)).first()
        return None if row is None else rows.incident(row)

    def incident(self, incident: Incident | int) -> Incident:
        incident_id = rows.ref(incident, Incident)
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.incidents).where(schema.incidents.c.id == incident_id)).first()
        if row is None:
            raise UnknownRecord(f"no incident {incident_id}")
        return rows.incident(row)

    def incidents(self, *, status: str | None = None) -> list[Incident]:
        """Incidents, oldest first; ``status`` ``"open"`` or ``"closed"`` to filter."""
        query = select(schema.incidents).order_by(schema.incidents.c.id)
        if status is not None:
            query = query.where(schema.incidents.c.status == status)
        with self.engine.connect() as connection:
            return [rows.incident(row) for row in connection.execute(query)]

    def close_incident(self, incident: Incident | int, *, user: str = "operator", note: str = "") -> Incident:
        """Close an incident whose work orders are all closed or cancelled.

        :raises WorkflowError: an order is still open, or the incident is already closed.
        """
        current = self.incident(incident)
        if current.status == "closed":
            raise WorkflowError(f"incident {current.id} is already closed")
        pending = [o for o in self.orders(incident=current.id) if o.state not in FINAL_STATES]
        if pending:
            listed = ", ".join(f"{o.id} ({o.state.value})" for o in pending)
            raise WorkflowError(f"incident {current.id} cannot be closed: work orders still open: {listed}")
        when = self.clock()
        with self.engine.begin() as connection:
            connection.execute(schema.incidents.update().where(schema.incidents.c.id == current.id).values(status="closed", closed=when))
            if note:
                connection.execute(schema.notes.insert().values(incident_id=current.id, order_id=None, time=when, actor=user, text=note))
        self._audit(user, "incident.close", f"incident {current.id}", note, when)
        return self.incident(current.id)

    # -- work orders ---------------------------------------------------------------------

    def create_order(
        self,
        incident: Incident | int,
        *,
        description: str = "",
        skills: Iterable[str] | str = (),
        user: str = "operator",
        note: str = "",
    ) -> WorkOrder:
        """Create a work order in state ``new`` for an open incident.

        :param skills: skills the assigned crew must have.
        :raises WorkflowError: the incident is closed.
        """
        current = self.incident(incident)
        if current.status != "open":
            raise WorkflowError(f"incident {current.id} is closed; open a new incident for new work")
        skills = rows.skill_set(skills)
        when = self.clock()
        with self.engine.begin() as connection:
            order_id = connection.execute(
                schema.orders.insert().values(
                    incident_id=current.id,
                    state=OrderState.NEW.value,
                    description=description or current.title,
                    skills=json.dumps(sorted(skills)),
                    crew=None,
                    created=when,
                    created_by=user,
                    updated=when,
                )
            ).inserted_primary_key[0]
            connection.execute(
                schema.transitions.insert().values(order_id=order_id, time=when, actor=user, from_state=None, to_state=OrderState.NEW.value, crew=None, note=note)
            )
        self._audit(user, "order.create", f"work order {order_id}", f"incident {current.id}: {description or current.title}; skills {', '.join(sorted(skills)) or 'none'}", when)
        return self.order(int(order_id))

    def order(self, order: WorkOrder | int) -> WorkOrder:
        order_id = rows.ref(order, WorkOrder)
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.orders).where(schema.orders.c.id == order_id)).first()
        if row is None:
            raise UnknownRecord(f"no work order {order_id}")
        return rows.order(row)

    def orders(
        self, *, state: OrderState | str | None = None, incident: Incident | int | None = None, crew: str | None = None
    ) -> list[WorkOrder]:
        """Work orders, oldest first, filtered by state, incident and crew."""
        query = select(schema.orders).order_by(schema.orders.c.id)
        if state is not None:
            query = query.where(schema.orders.c.state == parse_state(state).value)
        if incident is not None:
            query = query.where(schema.orders.c.incident_id == rows.ref(incident, Incident))
        if crew is not None:
            query = query.where(schema.orders.c.crew == crew)
        with self.engine.connect() as connection:
            return [rows.order(row) for row in connection.execute(query)]

    def history(self, order: WorkOrder | int) -> list[Transition]:
        """Every state change of an order, oldest first (the first one is its creation)."""
        order_id = self.order(order).id
        query = select(schema.transitions).where(schema.transitions.c.order_id == order_id).order_by(schema.transitions.c.id)
        with self.engine.connect() as connection:
            return [rows.transition(row) for row in connection.execute(query)]

    def assign(self, order: WorkOrder | int, crew: Crew | str, *, user: str = "operator", note: str = "") -> WorkOrder:
        """Assign a crew to a ``new`` order (→ ``assigned``).

        :param crew: a crew or its name, or :data:`AUTO` (``"auto"``) for the nearest qualified
            crew on shift that is free (:meth:`nearest_crew`); the choice and its distance are
            written into the transition's note.
        :raises InvalidTransition: the order is not ``new``.
        :raises NoCrewAvailable: ``"auto"`` found no crew.
        :raises WorkflowError: the crew lacks a skill the order needs.
        :raises UnknownRecord: no such order or crew.
        """
        with self._lock:
            current = self.order(order)
            if current.state is not OrderState.NEW:
                raise InvalidTransition(current.id, current.state, OrderState.ASSIGNED, "only a new order can be assigned; send it back to new first")
            if isinstance(crew, str) and crew == AUTO:
                chosen, distance = self.nearest_crew(current)
                automatic = f"nearest qualified crew on shift: {chosen.name}, {distance:.2f} km"
                note = f"{automatic}; {note}" if note else automatic
            else:
                chosen = self.crew(crew.name if isinstance(crew, Crew) else crew)
                missing = current.skills - chosen.skills
                if missing:
                    raise WorkflowError(f"work order {current.id}: crew {chosen.name!r} lacks skills {', '.join(sorted(missing))}")
            return self._apply(current, OrderState.ASSIGNED, user, note, chosen.name)

    def transition(self, order: WorkOrder | int, state: OrderState | str, *, user: str = "operator", note: str = "") -> WorkOrder:
        """Move an order to ``state`` following :data:`~dms_workorders.states.TRANSITIONS`.

        Going back to ``new`` releases the crew. ``assigned`` is reached only with :meth:`assign`.

        :raises InvalidTransition: not allowed from the current state; names the order, the
            current and the requested state.
        :raises ValueError: no such state.
        """
        requested = parse_state(state)
        with self._lock:
            current = self.order(order)
            if requested is OrderState.ASSIGNED and current.state is OrderState.NEW:
                raise InvalidTransition(current.id, current.state, requested, "use assign() to choose a crew")
            if requested not in TRANSITIONS[current.state]:
                raise InvalidTransition(current.id, current.state, requested)
            crew = None if requested is OrderState.NEW else current.crew
            return self._apply(current, requested, user, note, crew)

    def _apply(self, current: WorkOrder, to: OrderState, user: str, note: str, crew: str | None) -> WorkOrder:
        when = self.clock()
        with self.engine.begin() as connection:
            updated = connection.execute(
                schema.orders.update()
                .where(and_(schema.orders.c.id == current.id, schema.orders.c.state == current.state.value))
                .values(state=to.value, crew=crew, updated=when)
            ).rowcount
            if not updated:  # changed by someone else since we read it
                raise InvalidTransition(current.id, self._state_of(connection, current.id), to, "the order was changed concurrently; reload it")
            connection.execute(
                schema.transitions.insert().values(order_id=current.id, time=when, actor=user, from_state=current.state.value, to_state=to.value, crew=crew, note=note)
            )
        detail = f"{current.state.value} -> {to.value}"
        if crew:
            detail += f"; crew {crew}"
        if note:
            detail += f"; {note}"
        self._audit(user, "order.transition", f"work order {current.id}", detail, when)
        return attrs.evolve(current, state=to, crew=crew, updated=when)

    def _state_of(self, connection: Connection, order_id: int) -> OrderState:
        return OrderState(connection.execute(select(schema.orders.c.state).where(schema.orders.c.id == order_id)).scalar_one())

    # -- notes ---------------------------------------------------------------------------

    def add_note(self, text: str, *, incident: Incident | int | None = None, order: WorkOrder | int | None = None, user: str = "operator") -> Note:
        """Add an operator note to an incident or to a work order (exactly one of them)."""
        if (incident is None) == (order is None):
            raise ValueError("a note belongs to an incident or to a work order: give exactly one")
        if not text.strip():
            raise ValueError("a note needs text")
        if order is not None:
            target = self.order(order)
            incident_id, order_id, subject = target.incident_id, target.id, f"work order {target.id}"
        else:
            incident_id, order_id = self.incident(incident).id, None  # type: ignore[arg-type]
            subject = f"incident {incident_id}"
        when = self.clock()
        with self.engine.begin() as connection:
            note_id = connection.execute(
                schema.notes.insert().values(incident_id=incident_id, order_id=order_id, time=when, actor=user, text=text)
            ).inserted_primary_key[0]
        self._audit(user, "note", subject, text, when)
        return Note(id=int(note_id), time=when, actor=user, text=text, incident_id=incident_id, order_id=order_id)

    def notes(self, *, incident: Incident | int | None = None, order: WorkOrder | int | None = None) -> list[Note]:
        """Notes, oldest first: of an order, or of an incident (its orders' notes included)."""
        query = select(schema.notes).order_by(schema.notes.c.id)
        if order is not None:
            query = query.where(schema.notes.c.order_id == rows.ref(order, WorkOrder))
        if incident is not None:
            query = query.where(schema.notes.c.incident_id == rows.ref(incident, Incident))
        with self.engine.connect() as connection:
            return [rows.note(row) for row in connection.execute(query)]
    # -- events --------------------------------------------------------------------------

    def handle(self, events: Iterable[Event]) -> None:
        """Handle bus events: alarms (incidents) and topology changes (outages).

        An event that fails is logged and the next one is handled; at the end a
        :class:`WorkflowError` names how many failed (the kernel's bus then alarms).
        """
        failures: list[tuple[Event, Exception]] = []
        for event in events:
            try:
                if isinstance(event, Alarm):
                    self.incident_from_alarm(event)
                elif isinstance(event, TopologyChanged):
                    self.outages_from_topology(event)
            except Exception as exc:  # noqa: BLE001 - one event must not stop the others
                log.exception("workorders: cannot handle %s", type(event).__name__)
                failures.append((event, exc))
        if failures:  # raised to the bus, which counts it and alarms the operators
            event, exc = failures[0]
            raise WorkflowError(f"{len(failures)} events not handled; first: {type(event).__name__}: {type(exc).__name__}: {exc}") from exc
