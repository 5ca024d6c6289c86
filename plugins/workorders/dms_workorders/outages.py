"""Outage records and reliability indices: the outage part of the workflow service."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs
from sqlalchemy import Engine, select

from dms_hookspecs import AlarmPriority, TopologyChanged

from . import rows, schema
from .indices import reliability_indices
from .records import Incident, Indices, Outage
from .states import UnknownRecord, WorkflowError

__all__ = ["OutageRecords"]


class OutageRecords:
    """Outages (customers interrupted, start, restoration), from the API or from topology
    changes, and IEEE 1366 indices over them. Mixed into :class:`~dms_workorders.Workorders`."""

    engine: Engine
    model: Any
    clock: Callable[[], float]
    customers_per_load: int
    customers_served: int
    momentary_limit_s: float
    _lock: threading.RLock
    _consumers_at: dict[str, list[str]] | None

    if TYPE_CHECKING:  # provided by Workorders

        def _audit(self, actor: str, action: str, subject: str, detail: str, when: float) -> None: ...
        def incident(self, incident: Incident | int) -> Incident: ...
        def create_incident(self, title: str, **options: Any) -> Incident: ...

    # -- outages and indices -------------------------------------------------------------

    def customers_of(self, elements: Iterable[str]) -> int:
        """Customers behind energy consumers: their ``customer_count``, else ``customers_per_load``."""
        total = 0
        for mrid in elements:
            count = getattr(self.model.objects.get(mrid), "customer_count", 0) if self.model is not None else 0
            total += count if count and count > 0 else self.customers_per_load
        return total

    def total_customers(self) -> int:
        """N_T: the ``customers_served`` setting, else every energy consumer's customers in the model."""
        if self.customers_served > 0:
            return self.customers_served
        if self.model is None:
            return 0
        from dms_kernel.model.elements import EnergyConsumer

        return self.customers_of(c.mrid for c in self.model.of_type(EnergyConsumer))

    def record_outage(
        self,
        *,
        started: float,
        customers: int | None = None,
        elements: Iterable[str] = (),
        restored: float | None = None,
        incident: Incident | int | None = None,
        cause: str = "",
        user: str = "operator",
        open_incident: bool = True,
        element: str | None = None,
    ) -> Outage:
        """Record an interruption of supply.

        :param customers: customers interrupted; default: counted from ``elements``
            (energy consumers) with :meth:`customers_of`.
        :param incident: the incident it belongs to; without one (and ``open_incident``) an
            incident of source ``outage`` is opened, located at ``element`` (e.g. the tripped
            breaker), else at the first of ``elements``.
        :raises ValueError: no customers and no elements, or restoration before the start.
        """
        elements = tuple(elements)
        if customers is None:
            if not elements:
                raise ValueError("an outage needs a customer count or the interrupted energy consumers")
            customers = self.customers_of(elements)
        if customers < 0:
            raise ValueError(f"customers interrupted must not be negative, got {customers}")
        if restored is not None and restored < started:
            raise ValueError(f"restoration ({restored}) before the start of the outage ({started})")
        incident_id = None if incident is None else self.incident(incident).id
        if incident_id is None and open_incident:
            title = f"outage: {customers} customers interrupted" + (f" ({cause})" if cause else "")
            incident_id = self.create_incident(
                title, element=element or (elements[0] if elements else None), priority=AlarmPriority.HIGH, user=user, source="outage", time=started
            ).id
        with self.engine.begin() as connection:
            outage_id = connection.execute(
                schema.outages.insert().values(
                    incident_id=incident_id, started=started, restored=restored, customers=customers, elements=json.dumps(list(elements)), cause=cause
                )
            ).inserted_primary_key[0]
        outage = Outage(id=int(outage_id), incident_id=incident_id, started=started, customers=customers, restored=restored, elements=elements, cause=cause)
        state = "ongoing" if restored is None else f"restored after {(restored - started) / 60:.1f} min"
        self._audit(user, "outage.record", f"outage {outage.id}", f"{customers} customers from {started}; {state}; incident {incident_id}", self.clock())
        return outage

    def restore_outage(self, outage: Outage | int, *, time: float | None = None, user: str = "operator") -> Outage:
        """Record the restoration of an ongoing outage (default: now).

        :raises WorkflowError: already restored, or restoration before the start.
        """
        current = self.outage(outage)
        when = self.clock() if time is None else time
        if current.restored is not None:
            raise WorkflowError(f"outage {current.id} was already restored at {current.restored}")
        if when < current.started:
            raise WorkflowError(f"outage {current.id}: restoration ({when}) before its start ({current.started})")
        with self.engine.begin() as connection:
            connection.execute(schema.outages.update().where(schema.outages.c.id == current.id).values(restored=when))
        self._audit(user, "outage.restore", f"outage {current.id}", f"{current.customers} customers restored after {(when - current.started) / 60:.1f} min", self.clock())
        return attrs.evolve(current, restored=when)

    def outage(self, outage: Outage | int) -> Outage:
        outage_id = rows.ref(outage, Outage)
        with self.engine.connect() as connection:
            row = connection.execute(select(schema.outages).where(schema.outages.c.id == outage_id)).first()
        if row is None:
            raise UnknownRecord(f"no outage {outage_id}")
        return rows.outage(row)

    def outages(self, *, start: float | None = None, end: float | None = None, ongoing: bool | None = None) -> list[Outage]:
        """Outages that began in ``[start, end)``, oldest first; ``ongoing`` filters by restoration."""
        query = select(schema.outages).order_by(schema.outages.c.started, schema.outages.c.id)
        if start is not None:
            query = query.where(schema.outages.c.started >= start)
        if end is not None:
            query = query.where(schema.outages.c.started < end)
        if ongoing is not None:
            column = schema.outages.c.restored
            query = query.where(column.is_(None) if ongoing else column.is_not(None))
        with self.engine.connect() as connection:
            return [rows.outage(row) for row in connection.execute(query)]

    def indices(self, start: float, end: float, *, customers_served: int | None = None) -> Indices:
        """SAIFI, SAIDI, CAIDI (and MAIFI) over ``[start, end)`` from the recorded outages.

        See :func:`dms_workorders.indices.reliability_indices`.

        :param customers_served: N_T; default :meth:`total_customers`.
        """
        served = self.total_customers() if customers_served is None else customers_served
        return reliability_indices(
            self.outages(start=start, end=end), start, end, served, momentary_limit_s=self.momentary_limit_s, now=self.clock()
        )

    # -- outages from the topology processor ---------------------------------------------

    def _consumer_index(self) -> dict[str, list[str]]:
        if self._consumers_at is None:
            from dms_kernel.model.elements import EnergyConsumer

            index: dict[str, list[str]] = {}
            for consumer in self.model.of_type(EnergyConsumer):
                for node in self.model.nodes_of(consumer):
                    if node is not None:
                        index.setdefault(node, []).append(consumer.mrid)
            self._consumers_at = index
        return self._consumers_at

    def outages_from_topology(self, change: TopologyChanged) -> list[Outage]:
        """Record outages from a topology change: de-energised consumers start an outage (and an
        incident), re-energised ones end theirs.

        Consumers restored in steps split the outage: the restored part becomes a restored
        outage record of its own (same start, same incident), so customer minutes stay exact.
        Returns the outage records created or restored.
        """
        if self.model is None or not hasattr(self.model, "of_type"):
            return []
        index = self._consumer_index()
        lost = {c for node in change.deenergised for c in index.get(node, ())}
        back = {c for node in change.energised for c in index.get(node, ())}
        touched: list[Outage] = []
        with self._lock:
            ongoing = self.outages(ongoing=True)
            if back:
                for outage in ongoing:
                    restored = back & set(outage.elements)
                    if not restored:
                        continue
                    if restored == set(outage.elements):
                        touched.append(self.restore_outage(outage, time=change.time, user="topology"))
                        continue
                    remaining = tuple(e for e in outage.elements if e not in restored)
                    with self.engine.begin() as connection:
                        connection.execute(
                            schema.outages.update()
                            .where(schema.outages.c.id == outage.id)
                            .values(elements=json.dumps(list(remaining)), customers=self.customers_of(remaining))
                        )
                    touched.append(
                        self.record_outage(
                            started=outage.started, elements=sorted(restored), restored=change.time, incident=outage.incident_id,
                            cause=f"{outage.cause}; restored in steps (from outage {outage.id})", user="topology", open_incident=False,
                        )
                    )
            already = {e for o in ongoing for e in o.elements}
            new = sorted(lost - already - back)
            if new:
                switched = ", ".join(change.switches)
                cause = f"de-energised (switching {switched})" if switched else "de-energised (topology)"
                element = change.switches[0] if change.switches else None
                touched.append(self.record_outage(started=change.time, elements=new, cause=cause, user="topology", element=element))
        return touched
