"""The outage manager of a running kernel: feeds the engine, polls meters, persists what it infers.

Inputs (all end in :meth:`OutageManager.notify`): the AMI head-end over MQTT (:mod:`dms_oms.mqtt`),
``outage`` alarms of DLMS meter sources (raised = last gasp, cleared = power restored), and
power-failure points (value 1 = last gasp, 0 = restored). A window of ``window_s`` after the first
notification collects the burst; then the engine plans polls, the manager polls (point database:
a meter whose point is valid and fresh answers), the engine commits, and every change becomes:

* ``new``: an outage record with the predicted consumers in the ``workorders`` plugin (which opens
  the outage incident, located at the device) and an ``outage`` alarm from ``oms``;
* ``extended``: an outage record for the consumers added (same start, same incident), a note, the
  alarm updated;
* ``restored``: the consumers' nodes reported energised to ``workorders`` (a partial restoration
  splits the outage record there, so customer minutes stay exact), a note; when nothing is left
  out the alarm clears and the incident is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from dms_hookspecs import Alarm, AlarmPriority, AlarmState, TopologyChanged, Validity
from dms_hookspecs.types import new_id

from .engine import Change, EngineParams, EventKind, OutageEngine, PredictedOutage
from .network import MeterNetwork

__all__ = ["OutageManager", "SnapshotPoller"]

log = logging.getLogger("leitstand.oms")

Poller = Callable[[Iterable[str]], "asyncio.Future[dict[str, bool | None]] | Any"]


class SnapshotPoller:
    """Polls meters through the kernel's point database: a meter answers when its point (the
    ``poll_points`` table, meter → point) is valid and was received within ``max_age_s``; it does
    not answer when the point is invalid or stale; meters without a point are not polled."""

    def __init__(self, kernel: Any, points: dict[str, str], max_age_s: float = 15.0, clock: Callable[[], float] = time.time) -> None:
        self.kernel, self.points, self.max_age_s, self.clock = kernel, dict(points), max_age_s, clock

    async def __call__(self, meters: Iterable[str]) -> dict[str, bool | None]:
        snapshot = self.kernel.snapshot()
        now = self.clock()
        answers: dict[str, bool | None] = {}
        for meter in meters:
            point = self.points.get(meter)
            number = snapshot.index.get(point) if point else None
            if number is None:
                continue
            valid = (int(snapshot.quality[number]) & 0b11) == Validity.GOOD
            answers[meter] = valid and now - float(snapshot.receive_time[number]) <= self.max_age_s
        return answers


class OutageManager:
    """AMI outage management for one kernel (see the module docs).

    :param workorders: a callable returning the workorders service (``LookupError`` if absent).
    :param poller: ``async poller(meters) -> {meter: answered}``; ``None``: no polling.
    """

    def __init__(
        self,
        network: MeterNetwork,
        params: EngineParams,
        *,
        emit: Callable[[Any], None],
        workorders: Callable[[], Any] | None = None,
        poller: Callable[..., Any] | None = None,
        clock: Callable[[], float] = time.time,
        repoll_s: float = 60.0,
        source: str = "oms",
    ) -> None:
        self.network = network
        self.engine = OutageEngine(network, params)
        self.emit = emit
        self.workorders = workorders
        self.poller = poller
        self.clock = clock
        self.repoll_s = repoll_s
        self.source = source
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._missing_workorders_logged = False
        self.received = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="oms:windows")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    # -- input ---------------------------------------------------------------------------------

    def notify(self, meter: str, kind: EventKind | str, time: float | None = None) -> bool:
        """A last gasp or power restore of ``meter`` (event time, default now). False: unknown meter."""
        now = self.clock()
        first = meter not in self.engine.unknown_meters
        known = self.engine.notify(meter, kind, now if time is None else time, now)
        if known:
            self.received += 1
            self._wake.set()
        elif first:
            log.warning("oms: notification from unknown meter %r ignored (not in [settings.oms] meters nor the model)", meter)
        return known

    def outages(self, ongoing: bool | None = None) -> list[PredictedOutage]:
        return [o for o in self.engine.outages.values() if "merged_into" not in o.records and (ongoing is None or o.ongoing == ongoing)]

    # -- the window loop -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            end = self.engine.window_end
            if end is None:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.repoll_s)
                except TimeoutError:
                    await self._repoll()
                continue
            delay = end - self.clock()
            if delay > 0:
                await asyncio.sleep(min(delay, 1.0))
                continue
            try:
                await self.close_window()
            except Exception:  # noqa: BLE001 - the next window must still be handled
                log.exception("oms: handling the notification window failed")

    async def close_window(self) -> list[Change]:
        """Plan, poll, commit, persist (normally called by the window loop)."""
        now = self.clock()
        plan = self.engine.plan(now)
        polled = await self._poll(plan.polls)
        changes = self.engine.commit(now, polled)
        await self._apply(changes)
        return changes

    async def _repoll(self) -> None:
        candidates = self.engine.restore_candidates()
        if not candidates or self.poller is None:
            return
        polled = await self._poll(candidates)
        if any(polled.values()):
            await self._apply(self.engine.commit(self.clock(), polled))

    async def _poll(self, meters: Iterable[str]) -> dict[str, bool]:
        meters = list(meters)
        if self.poller is None or not meters:
            return {}
        try:
            answers = await self.poller(meters)
        except Exception:  # noqa: BLE001 - polling is a confirmation, not a requirement
            log.exception("oms: polling %d meters failed", len(meters))
            return {}
        return {m: a for m, a in answers.items() if a is not None}

    # -- persisting ----------------------------------------------------------------------------

    def _service(self) -> Any | None:
        if self.workorders is None:
            return None
        try:
            return self.workorders()
        except LookupError:
            if not self._missing_workorders_logged:
                log.warning("oms: the workorders plugin is not running: outages are alarmed but not recorded")
                self._missing_workorders_logged = True
            return None

    def _message(self, outage: PredictedOutage) -> str:
        consumers = outage.consumers | set(outage.restored)
        meters = sum(len(self.network.consumer_meters.get(c, ())) for c in consumers)
        return (
            f"outage predicted at {self.network.describe(outage.device)}: {self.network.customers_of(consumers)} customers "
            f"({len(consumers)} consumers), {len(outage.reported)} of {meters} meters sent a last gasp"
        )

    async def _apply(self, changes: list[Change]) -> None:
        service = self._service() if changes else None
        for change in changes:
            outage = change.outage
            if change.kind == "new":
                outage.records["alarm"] = new_id()
                log.warning("oms: %s", self._message(outage))
                if service is not None:
                    record = await asyncio.to_thread(
                        service.record_outage, started=outage.started, elements=sorted(change.consumers), element=outage.device,
                        cause=f"AMI: {self.network.describe(outage.device)} predicted (score {outage.score:.1f})", user="oms",
                    )
                    outage.records["incident"] = record.incident_id
                    outage.records.setdefault("outages", []).append(record.id)
                self._alarm(outage, AlarmState.RAISED, change.time)
            elif change.kind == "extended":
                text = f"outage moved upstream from {self.network.describe(change.previous)} to {self.network.describe(outage.device)}"
                log.warning("oms: %s", text)
                if service is not None and change.consumers:
                    record = await asyncio.to_thread(
                        service.record_outage, started=outage.started, elements=list(change.consumers), element=outage.device,
                        incident=outage.records.get("incident"), open_incident=outage.records.get("incident") is None,
                        cause=f"AMI: {text}", user="oms",
                    )
                    outage.records.setdefault("outages", []).append(record.id)
                    outage.records.setdefault("incident", record.incident_id)
                    await asyncio.to_thread(service.add_note, f"{text}; {len(change.consumers)} more consumers", incident=outage.records["incident"], user="oms")
                self._alarm(outage, AlarmState.RAISED, change.time)
            elif change.kind == "restored":
                customers = self.network.customers_of(change.consumers)
                log.info("oms: %d consumers (%d customers) of outage at %s restored", len(change.consumers), customers, self.network.name_of(outage.device))
                if service is not None:
                    nodes = tuple(dict.fromkeys(self.network.consumer_node[c] for c in change.consumers if c in self.network.consumer_node))
                    await asyncio.to_thread(service.outages_from_topology, TopologyChanged(energised=nodes, time=change.time))
                    incident = outage.records.get("incident")
                    if incident is not None:
                        left = "; outage over" if not outage.ongoing else f"; {len(outage.consumers)} consumers still out"
                        await asyncio.to_thread(service.add_note, f"AMI: {len(change.consumers)} consumers ({customers} customers) restored{left}", incident=incident, user="oms")
                        if not outage.ongoing:
                            await asyncio.to_thread(self._close_incident, service, incident)
                if not outage.ongoing:
                    self._alarm(outage, AlarmState.CLEARED, change.time)

    @staticmethod
    def _close_incident(service: Any, incident: int) -> None:
        try:
            service.close_incident(incident, user="oms", note="supply restored to every consumer (AMI)")
        except Exception as exc:  # noqa: BLE001 - e.g. a work order still open: the operator closes it
            log.info("oms: incident %s left open: %s", incident, exc)

    def _alarm(self, outage: PredictedOutage, state: AlarmState, when: float) -> None:
        message = self._message(outage) if state is AlarmState.RAISED else f"outage at {self.network.describe(outage.device)}: supply restored"
        self.emit(Alarm(message, AlarmPriority.HIGH, self.source, state=state, category="outage", id=outage.records["alarm"], time=when))
