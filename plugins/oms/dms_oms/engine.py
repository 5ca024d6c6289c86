"""The outage engine: notifications in, predicted outages and their restoration out — no I/O.

The engine is driven by its caller (the plugin's service, or a test with a simulated clock):

1. :meth:`OutageEngine.notify` for every last gasp / power restore (event time and receive time);
   the first one opens a window of ``window_s``;
2. when :meth:`due` says the window has closed, :meth:`plan` names the meters worth polling;
3. :meth:`commit` with the poll results infers the outage devices over every last gasp still
   standing (the window's and those of the outages already known, so late reports can move an
   outage upstream), reconciles them with the known outages and handles restorations, returning
   :class:`Change` records for the caller to persist (incidents, outage records, alarms).

Restoration is per consumer: a consumer is back when one of its meters sends a power restore or
answers a poll (and with it every consumer on the same node). A partly restored outage stays
open with the rest; :meth:`restore_candidates` lists meters to poll again later.
"""

from __future__ import annotations

import enum
import itertools
import random
from collections.abc import Iterable, Mapping

import attrs

from .inference import Hypothesis, InferenceParams, infer
from .network import MeterNetwork

__all__ = ["EventKind", "Notification", "PredictedOutage", "Change", "Plan", "OutageEngine", "EngineParams"]


class EventKind(enum.Enum):
    LAST_GASP = "last_gasp"
    POWER_RESTORE = "power_restore"

    @classmethod
    def parse(cls, value: str | EventKind) -> EventKind:
        if isinstance(value, EventKind):
            return value
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        aliases = {"last_gasp": cls.LAST_GASP, "power_fail": cls.LAST_GASP, "power_failure": cls.LAST_GASP, "power_down": cls.LAST_GASP,
                   "power_restore": cls.POWER_RESTORE, "power_restored": cls.POWER_RESTORE, "power_up": cls.POWER_RESTORE}
        try:
            return aliases[text]
        except KeyError:
            raise ValueError(f"unknown meter event type {value!r} (expected last_gasp or power_restore)") from None


@attrs.frozen
class Notification:
    """A meter's last gasp or power restore. ``time``: when it happened (meter clock), ``received``: when it arrived."""

    meter: str
    kind: EventKind
    time: float
    received: float


@attrs.define
class PredictedOutage:
    """An outage the engine believes in.

    :param consumers: consumers still out; :param restored: consumer → restoration time.
    :param records: the caller's bookkeeping (e.g. workorders outage ids, incident, alarm id).
    """

    id: int
    device: str
    started: float
    consumers: set[str]
    score: float
    reported: set[str] = attrs.field(factory=set)
    restored: dict[str, float] = attrs.field(factory=dict)
    records: dict = attrs.field(factory=dict)

    @property
    def ongoing(self) -> bool:
        return bool(self.consumers)


@attrs.frozen
class Change:
    """What the caller must persist: ``kind`` is ``new``, ``extended`` (moved upstream; ``consumers``
    are the added ones, ``previous`` the old device) or ``restored`` (``consumers`` back at ``time``;
    the outage is over when ``outage.ongoing`` is false)."""

    kind: str
    outage: PredictedOutage
    consumers: tuple[str, ...] = ()
    time: float = 0.0
    previous: str | None = None


@attrs.frozen
class Plan:
    """Preliminary hypotheses at window close and the meters to poll before :meth:`OutageEngine.commit`."""

    hypotheses: tuple[Hypothesis, ...]
    polls: tuple[str, ...]


@attrs.frozen
class EngineParams:
    """:param window_s: how long notifications are collected after the first one.
    :param min_reports: a new outage needs this many last gasps and a score of at least
        ``confirm_score``, or a poll that confirms it (a meter downstream not answering).
    :param poll_meters: meters polled per hypothesis inside its extent (non-reporting) and
        as many outside it under the next device upstream.
    :param evidence_ttl_s: how long an unexplained last gasp stays evidence for later windows.
    """

    window_s: float = 30.0
    min_reports: int = 2
    confirm_score: float = 5.0
    poll_meters: int = 3
    evidence_ttl_s: float = 900.0
    inference: InferenceParams = attrs.field(factory=InferenceParams)


class OutageEngine:
    """Stateful outage inference and restoration tracking over one :class:`MeterNetwork`."""

    def __init__(self, network: MeterNetwork, params: EngineParams | None = None, *, seed: int = 0) -> None:
        self.network = network
        self.params = params or EngineParams()
        self.rng = random.Random(seed)
        self.outages: dict[int, PredictedOutage] = {}
        self._ids = itertools.count(1)
        self.gasps: dict[str, float] = {}  # meter -> time of its standing last gasp
        self._seen: dict[str, float] = {}  # meter -> when that last gasp arrived
        self.pending: list[Notification] = []
        self.window_end: float | None = None
        self.unknown_meters: set[str] = set()
        self.false_reports = 0
        self._node_consumers: dict[str, list[str]] = {}
        for consumer, node in network.consumer_node.items():
            self._node_consumers.setdefault(node, []).append(consumer)

    # -- input ---------------------------------------------------------------------------------

    def notify(self, meter: str, kind: EventKind | str, time: float, received: float) -> bool:
        """Queue a notification; opens the window if none is open. False for an unknown meter."""
        if meter not in self.network.meter_consumer:
            self.unknown_meters.add(meter)
            return False
        self.pending.append(Notification(meter, EventKind.parse(kind), time, received))
        if self.window_end is None:
            self.window_end = received + self.params.window_s
        return True

    def due(self, now: float) -> bool:
        return self.window_end is not None and now >= self.window_end

    def active(self) -> list[PredictedOutage]:
        return [o for o in self.outages.values() if o.ongoing]

    def outage_of(self, consumer: str) -> PredictedOutage | None:
        for outage in self.outages.values():
            if consumer in outage.consumers:
                return outage
        return None

    # -- window close --------------------------------------------------------------------------

    def _absorb(self, now: float) -> list[Notification]:
        """Apply the window's notifications to the standing last gasps; returns the restores."""
        restores: list[Notification] = []
        for note in sorted(self.pending, key=lambda n: n.time):
            if note.kind is EventKind.LAST_GASP:
                self.gasps[note.meter] = note.time
                self._seen[note.meter] = note.received
            else:
                self.gasps.pop(note.meter, None)
                restores.append(note)
        self.pending.clear()
        self.window_end = None
        explained = {m for o in self.active() for c in o.consumers for m in self.network.consumer_meters.get(c, ())}
        ttl = self.params.evidence_ttl_s
        for meter in list(self.gasps):
            if meter not in explained and now - self._seen.get(meter, now) > ttl:
                del self.gasps[meter]
        return restores

    def plan(self, now: float) -> Plan:
        """Preliminary inference over the standing last gasps (the window's included) and the polls to confirm it."""
        reported = set(self.gasps) | {n.meter for n in self.pending if n.kind is EventKind.LAST_GASP}
        reported -= {n.meter for n in self.pending if n.kind is EventKind.POWER_RESTORE and n.time >= self.gasps.get(n.meter, float("-inf"))}
        hypotheses = infer(self.network, reported, params=self.params.inference)
        known = {o.device for o in self.active()}
        polls: list[str] = []
        k = self.params.poll_meters
        for hypothesis in hypotheses:
            if hypothesis.device in known:
                continue
            quiet = [m for m in hypothesis.meters if m not in reported]
            polls += self.rng.sample(quiet, min(k, len(quiet)))
            if len(hypothesis.reported) < self.params.min_reports:
                polls += list(hypothesis.reported[:k])
            path = self.network.upstream(hypothesis.meters[0]) if hypothesis.meters else ()
            parent = next((d for d in path[path.index(hypothesis.device) + 1:]), None) if hypothesis.device in path else None
            if parent is not None:
                inside = set(self.network.device_meters.get(hypothesis.device, ()))
                outside = [m for m in self.network.device_meters.get(parent, ()) if m not in inside and m not in reported]
                polls += self.rng.sample(outside, min(k, len(outside)))
        polls += self.restore_candidates(limit=k * 2, extra=self.pending)
        return Plan(tuple(hypotheses), tuple(dict.fromkeys(polls)))

    def restore_candidates(self, limit: int = 6, extra: Iterable[Notification] = ()) -> list[str]:
        """Meters of still-out consumers of outages with some restoration (or a restore message
        in ``extra``) — poll them to confirm the rest came back too."""
        restoring = {self.network.meter_consumer[n.meter] for n in extra if n.kind is EventKind.POWER_RESTORE}
        polls: list[str] = []
        for outage in self.active():
            if not outage.restored and not (restoring & outage.consumers):
                continue
            rest = sorted(outage.consumers - restoring)
            for consumer in self.rng.sample(rest, min(limit, len(rest))):
                meters = self.network.consumer_meters.get(consumer, ())
                if meters:
                    polls.append(meters[0])
        return polls

    def commit(self, now: float, polled: Mapping[str, bool] | None = None) -> list[Change]:
        """Close the window: infer, reconcile with the known outages, apply restorations."""
        polled = {m: a for m, a in (polled or {}).items() if a is not None and m in self.network.meter_consumer}
        restores = self._absorb(now)
        changes: list[Change] = []
        # a meter that answers a poll has supply: its last gasp no longer stands
        for meter, answered in polled.items():
            if answered and meter in self.gasps and self.network.meter_consumer[meter] not in {c for o in self.active() for c in o.consumers}:
                del self.gasps[meter]
                self.false_reports += 1
        changes += self._restorations(restores, polled, now)
        out_polls = {m: a for m, a in polled.items() if not (a and self._is_out_consumer(self.network.meter_consumer[m]))}
        hypotheses = infer(self.network, list(self.gasps), out_polls, self.params.inference)
        for hypothesis in hypotheses:
            changes += self._reconcile(hypothesis, now)
        return changes

    def _is_out_consumer(self, consumer: str) -> bool:
        return self.outage_of(consumer) is not None

    def _reconcile(self, hypothesis: Hypothesis, now: float) -> list[Change]:
        network = self.network
        extent = set(network.extent(hypothesis.device))
        inside = [o for o in self.active() if o.consumers | set(o.restored) <= extent]
        reported = {m for m in hypothesis.reported}
        for outage in inside:
            if outage.device == hypothesis.device:
                outage.reported |= reported
                outage.score = hypothesis.score
                return []
        if not inside:
            if any(o.device in network.paths.get(c, ()) or c in o.consumers for o in self.active() for c in extent):
                return []  # inside a bigger outage already known: nothing new
            enough = len(reported) >= self.params.min_reports and hypothesis.score >= self.params.confirm_score
            if not enough and not hypothesis.polled_dead:
                return []  # unconfirmed (e.g. one last gasp and no poll): wait for more evidence
            started = min((self.gasps[m] for m in reported if m in self.gasps), default=now)
            outage = PredictedOutage(next(self._ids), hypothesis.device, started, set(extent), hypothesis.score, reported)
            self.outages[outage.id] = outage
            return [Change("new", outage, tuple(sorted(extent)), started)]
        # moved upstream: the biggest known outage inside takes the new device; the others merge into it
        inside.sort(key=lambda o: (-len(o.consumers | set(o.restored)), o.id))
        outage, merged = inside[0], inside[1:]
        previous = outage.device
        covered = set(outage.consumers) | set(outage.restored)
        for other in merged:
            covered |= other.consumers | set(other.restored)
        added = extent - covered
        for other in merged:
            outage.consumers |= other.consumers
            outage.restored.update(other.restored)
            outage.reported |= other.reported
            outage.records.setdefault("merged", []).append(other.id)
            other.consumers = set()
            other.records["merged_into"] = outage.id
        outage.device = hypothesis.device
        outage.score = hypothesis.score
        outage.consumers |= added
        outage.reported |= reported
        return [Change("extended", outage, tuple(sorted(added)), outage.started, previous=previous)]

    def _restorations(self, restores: list[Notification], polled: Mapping[str, bool], now: float) -> list[Change]:
        back: dict[str, float] = {}
        for note in restores:
            consumer = self.network.meter_consumer[note.meter]
            back[consumer] = min(back.get(consumer, note.time), note.time)
        first = min(back.values(), default=now)
        for meter, answered in polled.items():
            consumer = self.network.meter_consumer[meter]
            if answered and consumer not in back:
                back[consumer] = first  # answered a poll: back, at the earliest restore of this window
        # supply is per node: consumers on the same node come back together
        for consumer, when in list(back.items()):
            for other in self._node_consumers.get(self.network.consumer_node.get(consumer, ""), ()):
                back.setdefault(other, when)
        changes: list[Change] = []
        for outage in self.active():
            hit = {c: t for c, t in back.items() if c in outage.consumers}
            if not hit:
                continue
            # one restoration step at the earliest restore message: the device closed once
            when = max(min(hit.values()), outage.started)
            for consumer in hit:
                outage.consumers.discard(consumer)
                outage.restored[consumer] = when
                for meter in self.network.consumer_meters.get(consumer, ()):
                    self.gasps.pop(meter, None)
            changes.append(Change("restored", outage, tuple(sorted(hit)), when))
        return changes
