"""The alarm manager: ISA-18.2 lifecycle, operator actions, delays, chatter, flood, escalation timing.

:class:`AlarmManager` is plain, synchronous Python with an injected clock: the kernel plugin
feeds it conditions (:meth:`~AlarmManager.raise_condition`, :meth:`~AlarmManager.clear_condition`,
:meth:`~AlarmManager.process`) and calls :meth:`~AlarmManager.tick` periodically; the HMI calls
the operator actions. Every state change is handed to ``emit`` as an :class:`~dms_hookspecs.Alarm`
event carrying the managed alarm's id, and every operator action as an
:class:`~dms_hookspecs.AuditEntry`.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from dms_hookspecs import Alarm, AlarmPriority, AlarmState, AuditEntry, PointId

from .config import PLUGIN_NAME, AlarmSettings, EscalationStep
from .records import AlarmError, AlarmKey, IsaState, ManagedAlarm, UnknownAlarmError, condition_key

__all__ = ["AlarmManager"]

log = logging.getLogger("leitstand.alarms")

Emit = Callable[[Any], None]
Escalate = Callable[[EscalationStep, ManagedAlarm], None]
StateCheck = Callable[[ManagedAlarm], "str | None"]


@attrs.define
class _Pending:
    """A condition waiting out its on-delay."""

    due: float
    kwargs: dict[str, Any]


class AlarmManager:
    """The managed alarm list.

    :param settings: checked ``[settings.alarms]``.
    :param emit: receives the manager's :class:`Alarm` and :class:`AuditEntry` events.
    :param clock: seconds since the epoch (inject a fake clock in tests).
    :param on_escalate: called when an escalation step is due for an alarm.
    :param state_check: returns why an alarm is suppressed by plant state (its equipment is
        de-energised), or ``None``.
    :param elements_of: network elements (mRIDs) an alarm concerns, resolved when it is raised.
    """

    def __init__(
        self,
        settings: AlarmSettings | None = None,
        emit: Emit | None = None,
        *,
        clock: Callable[[], float] = time.time,
        on_escalate: Escalate | None = None,
        state_check: StateCheck | None = None,
        elements_of: Callable[[ManagedAlarm], tuple[str, ...]] | None = None,
    ) -> None:
        self.settings = settings or AlarmSettings()
        self._emit = emit or (lambda event: None)
        self.clock = clock
        self.on_escalate = on_escalate
        self.state_check = state_check
        self.elements_of = elements_of
        self._alarms: dict[str, ManagedAlarm] = {}
        self._by_key: dict[AlarmKey, ManagedAlarm] = {}
        self._by_raw: dict[str, ManagedAlarm] = {}
        self._pending: dict[AlarmKey, _Pending] = {}
        self._transitions: dict[AlarmKey, collections.deque[float]] = {}
        self._annunciations: dict[str, collections.deque[float]] = {}
        self._flooding: set[str] = set()

    # ---------------------------------------------------------------------------------------
    # queries (the HMI's read API)
    # ---------------------------------------------------------------------------------------

    def get(self, alarm_id: str) -> ManagedAlarm:
        """The alarm with this id. :raises UnknownAlarmError: not on the list."""
        try:
            return self._alarms[alarm_id]
        except KeyError:
            raise UnknownAlarmError(f"no alarm {alarm_id!r} on the list (returned to normal and acknowledged, or never raised)") from None

    def __iter__(self) -> Iterator[ManagedAlarm]:
        return iter(list(self._alarms.values()))

    def __len__(self) -> int:
        return len(self._alarms)

    def active(
        self,
        *,
        priority: AlarmPriority | Iterable[AlarmPriority] | None = None,
        state: IsaState | Iterable[IsaState] | None = None,
        source: str | None = None,
        category: str | None = None,
        point: str | None = None,
        position: str | None = None,
        unacknowledged: bool = False,
        include_shelved: bool = False,
        include_suppressed: bool = False,
    ) -> list[ManagedAlarm]:
        """The alarm list as an operator sees it, most urgent first, newest first within a priority.

        By default shelved and suppressed alarms are left out (see :meth:`shelved`,
        :meth:`suppressed`). Filters combine with AND; ``priority`` and ``state`` accept one
        value or several.
        """
        priorities = _as_set(priority)
        states = _as_set(state)
        found = []
        for alarm in self._alarms.values():
            if alarm.shelved and not include_shelved:
                continue
            if alarm.suppressed and not include_suppressed:
                continue
            if priorities is not None and alarm.priority not in priorities:
                continue
            if states is not None and alarm.state not in states:
                continue
            if unacknowledged and alarm.acked:
                continue
            if (source is not None and alarm.source != source) or (category is not None and alarm.category != category):
                continue
            if (point is not None and alarm.point != point) or (position is not None and alarm.position != position):
                continue
            found.append(alarm)
        found.sort(key=lambda a: (a.priority, -a.raised_at))
        return found

    def shelved(self) -> list[ManagedAlarm]:
        """Shelved alarms, soonest expiry first."""
        return sorted((a for a in self._alarms.values() if a.shelved), key=lambda a: a.shelved_until or 0.0)

    def suppressed(self, reason: str | None = None) -> list[ManagedAlarm]:
        """Suppressed alarms (any reason, or one of ``operator``, ``engineering``, ``chattering``,
        ``state``, ``flood``)."""
        return [a for a in self._alarms.values() if a.suppressed and (reason is None or reason in a.suppressed_by)]

    def counts(self) -> dict[str, int]:
        """Alarm counts for a status bar: per ISA state, shelved, suppressed, and per priority shown."""
        counts: dict[str, int] = collections.Counter()
        for alarm in self._alarms.values():
            counts[alarm.state.value] += 1
            if alarm.shelved:
                counts["shelved"] += 1
            elif alarm.suppressed:
                counts["suppressed"] += 1
            else:
                counts[alarm.priority.name.lower()] += 1
        return dict(counts)

    def flooding(self) -> set[str]:
        """Operator positions currently in an alarm flood."""
        return set(self._flooding)

    # ---------------------------------------------------------------------------------------
    # operator actions (each audited)
    # ---------------------------------------------------------------------------------------

    def acknowledge(self, alarm_id: str, user: str, comment: str = "") -> ManagedAlarm:
        """Acknowledge an alarm; an alarm that has returned to normal leaves the list.

        :raises UnknownAlarmError: no such alarm.
        :raises AlarmError: already acknowledged.
        """
        alarm = self.get(alarm_id)
        if alarm.acked:
            raise AlarmError(f"alarm {alarm_id!r} was already acknowledged by {alarm.acked_by} at {_stamp(alarm.acked_at)}")
        now = self.clock()
        alarm.acked, alarm.acked_by, alarm.acked_at = True, user, now
        self._comment(alarm, user, comment, now)
        self._audit(user, "alarm.acknowledge", alarm, comment or alarm.message)
        self._publish(alarm, AlarmState.ACKNOWLEDGED)
        if not alarm.active:
            self._remove(alarm)
        return alarm

    def acknowledge_all(self, user: str, comment: str = "", **filters: Any) -> list[ManagedAlarm]:
        """Acknowledge every unacknowledged alarm :meth:`active` returns with ``filters``."""
        return [self.acknowledge(a.id, user, comment) for a in self.active(unacknowledged=True, **filters)]

    def shelve(self, alarm_id: str, user: str, until: float | None = None, *, duration_s: float | None = None, reason: str = "") -> ManagedAlarm:
        """Shelve an alarm until ``until`` (epoch seconds) or for ``duration_s``; it is unshelved
        automatically then. Shelving needs an expiry no later than ``max_shelve_s`` ahead.

        :raises AlarmError: no or a past expiry, or beyond ``max_shelve_s``.
        """
        alarm = self.get(alarm_id)
        now = self.clock()
        if (until is None) == (duration_s is None):
            raise AlarmError("shelving needs an expiry: give either until or duration_s")
        expiry = until if until is not None else now + float(duration_s)  # type: ignore[arg-type]
        if expiry <= now:
            raise AlarmError(f"shelve expiry {_stamp(expiry)} is not in the future")
        if expiry - now > self.settings.max_shelve_s:
            raise AlarmError(
                f"shelving for {expiry - now:.0f} s exceeds the limit of {self.settings.max_shelve_s:.0f} s ([settings.alarms] max_shelve_s)"
            )
        alarm.shelved_until, alarm.shelved_by = expiry, user
        self._comment(alarm, user, reason, now)
        self._audit(user, "alarm.shelve", alarm, f"until {_stamp(expiry)}" + (f": {reason}" if reason else ""))
        self._publish(alarm, AlarmState.SHELVED)
        return alarm

    def unshelve(self, alarm_id: str, user: str) -> ManagedAlarm:
        """End shelving now. :raises AlarmError: not shelved."""
        alarm = self.get(alarm_id)
        if not alarm.shelved:
            raise AlarmError(f"alarm {alarm_id!r} is not shelved")
        self._unshelve(alarm, user, "by operator")
        return alarm

    def suppress(self, alarm_id: str, user: str, reason: str = "") -> ManagedAlarm:
        """Suppress an alarm (out of service) until :meth:`unsuppress`. :raises AlarmError: already."""
        alarm = self.get(alarm_id)
        if "operator" in alarm.suppressed_by:
            raise AlarmError(f"alarm {alarm_id!r} is already suppressed by {alarm.suppressed_by['operator']}")
        alarm.suppressed_by["operator"] = f"{user}: {reason}" if reason else user
        self._comment(alarm, user, reason, self.clock())
        self._audit(user, "alarm.suppress", alarm, reason)
        self._publish(alarm, AlarmState.SUPPRESSED)
        return alarm

    def unsuppress(self, alarm_id: str, user: str) -> ManagedAlarm:
        """End an operator's suppression. :raises AlarmError: not suppressed by an operator."""
        alarm = self.get(alarm_id)
        if "operator" not in alarm.suppressed_by:
            raise AlarmError(f"alarm {alarm_id!r} is not suppressed by an operator")
        del alarm.suppressed_by["operator"]
        self._audit(user, "alarm.unsuppress", alarm, "")
        self._publish_current(alarm)
        return alarm

    def reset(self, alarm_id: str, user: str, comment: str = "") -> ManagedAlarm:
        """Return an active alarm to normal by hand — for conditions whose source never reports
        the return to normal (e.g. a source that failed and was restarted)."""
        alarm = self.get(alarm_id)
        if not alarm.active:
            raise AlarmError(f"alarm {alarm_id!r} has already returned to normal")
        self._audit(user, "alarm.reset", alarm, comment)
        self._comment(alarm, user, comment, self.clock())
        self._return_to_normal(alarm, self.clock())
        return alarm

    def comment(self, alarm_id: str, user: str, text: str) -> ManagedAlarm:
        """Add an operator note to an alarm (audited)."""
        alarm = self.get(alarm_id)
        self._comment(alarm, user, text, self.clock())
        self._audit(user, "alarm.comment", alarm, text)
        return alarm

    # ---------------------------------------------------------------------------------------
    # conditions
    # ---------------------------------------------------------------------------------------

    def process(self, event: Alarm) -> ManagedAlarm | None:
        """Take a raw :class:`Alarm` event from a plugin: ``RAISED`` raises (or repeats) its
        condition, ``CLEARED`` clears it; other states are ignored."""
        point = event.point.name if event.point is not None else None
        if event.state is AlarmState.RAISED:
            return self.raise_condition(
                source=event.source, category=event.category, message=event.message,
                priority=event.priority, point=point, raw_id=event.id,
            )
        if event.state is AlarmState.CLEARED:
            self.clear_condition(source=event.source, category=event.category, point=point, raw_id=event.id, message=event.message)
        return None

    def raise_condition(
        self,
        *,
        source: str,
        category: str,
        message: str,
        priority: AlarmPriority = AlarmPriority.MEDIUM,
        point: str | None = None,
        subject: str | None = None,
        raw_id: str | None = None,
        position: str | None = None,
    ) -> ManagedAlarm | None:
        """A condition is (still) in alarm. Returns the managed alarm, or ``None`` while the
        class's on-delay runs. ``subject`` names the condition where point and message do not
        (default: the point, else the message); ``position`` overrides the operator position
        found from ``[settings.alarms] positions``."""
        now = self.clock()
        key = condition_key(source, category, point, message, subject)
        klass = self.settings.class_for(category)
        alarm = self._by_key.get(key)
        if alarm is not None and alarm.active:  # repeat: keep it active, cancel a pending return to normal
            alarm.message = message
            alarm.clear_due = now + klass.auto_clear_s if klass.auto_clear_s is not None else None
            self._remember_raw(alarm, raw_id)
            return alarm
        kwargs = dict(source=source, category=category, message=message, priority=priority, point=point, raw_id=raw_id, position=position)
        if klass.on_delay_s > 0:
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = _Pending(now + klass.on_delay_s, kwargs)
            else:
                pending.kwargs = kwargs
            return None
        return self._annunciate(key, kwargs, now)

    def clear_condition(
        self,
        *,
        source: str,
        category: str,
        point: str | None = None,
        subject: str | None = None,
        raw_id: str | None = None,
        message: str = "",
    ) -> list[ManagedAlarm]:
        """A condition returned to normal. Matched by the raw alarm id if known, else by
        condition (source, category, point or subject); without point or subject every active
        alarm of that source and category is cleared (a source reporting its link restored).
        The class's off-delay applies."""
        now = self.clock()
        exact = condition_key(source, category, point, message, subject)
        waiting = [k for k, p in self._pending.items() if (raw_id and p.kwargs["raw_id"] == raw_id) or k == exact]
        targets: list[ManagedAlarm] = []
        if raw_id is not None and raw_id in self._by_raw:
            targets = [self._by_raw[raw_id]]
        elif exact in self._by_key:
            targets = [self._by_key[exact]]
        elif not waiting and point is None and subject is None:  # e.g. "link restored": the source's condition
            targets = [a for a in self._by_key.values() if a.source == source and a.category == category]
            waiting = [k for k in self._pending if k[:2] == (source, category)]
        for key in waiting:
            del self._pending[key]  # gone before its on-delay ran out: never annunciated
        cleared = []
        for alarm in targets:
            if not alarm.active:
                continue
            delay = self.settings.class_for(alarm.category).off_delay_s
            if delay > 0:
                alarm.clear_due = now + delay if alarm.clear_due is None else min(alarm.clear_due, now + delay)
            else:
                self._return_to_normal(alarm, now)
            cleared.append(alarm)
        return cleared

    def reevaluate_state(self) -> list[ManagedAlarm]:
        """Re-check state-based suppression of every alarm (after a topology change); returns the
        alarms whose suppression changed."""
        changed = []
        for alarm in list(self._alarms.values()):
            if self._apply_state(alarm):
                changed.append(alarm)
                self._publish_current(alarm)
        return changed

    # ---------------------------------------------------------------------------------------
    # time
    # ---------------------------------------------------------------------------------------

    def tick(self, now: float | None = None) -> None:
        """Run what is due: on-delays, off-delays and auto clears, shelving expiry, the end of
        chattering, the end of floods and escalation steps."""
        now = self.clock() if now is None else now
        for key, pending in list(self._pending.items()):
            if now >= pending.due:
                del self._pending[key]
                self._annunciate(key, pending.kwargs, now)
        for alarm in list(self._alarms.values()):
            if alarm.active and alarm.clear_due is not None and now >= alarm.clear_due:
                self._return_to_normal(alarm, now)
            if alarm.id not in self._alarms:
                continue
            if alarm.shelved and now >= (alarm.shelved_until or 0.0):
                self._unshelve(alarm, PLUGIN_NAME, "shelving expired")
            if "chattering" in alarm.suppressed_by:
                klass = self.settings.class_for(alarm.category)
                history = self._transitions.get(alarm.key)
                if not history or now - history[-1] >= klass.chatter_window_s:
                    del alarm.suppressed_by["chattering"]
                    self._publish_current(alarm)
        for position in list(self._flooding):
            self._check_flood(position, now)
        self._escalate(now)

    # ---------------------------------------------------------------------------------------
    # internals
    # ---------------------------------------------------------------------------------------

    def _annunciate(self, key: AlarmKey, kwargs: dict[str, Any], now: float) -> ManagedAlarm:
        klass = self.settings.class_for(kwargs["category"])
        alarm = self._by_key.get(key)
        priority = klass.priority or AlarmPriority(kwargs["priority"])
        if alarm is None:
            alarm = ManagedAlarm(
                key=key, message=kwargs["message"], priority=priority, source=kwargs["source"], category=kwargs["category"],
                point=kwargs["point"], position=kwargs.get("position") or self.settings.position_of(kwargs["source"], kwargs["point"]),
                raised_at=now, unacked_since=now,
            )
            self._alarms[alarm.id] = alarm
            self._by_key[key] = alarm
            for rule in self.settings.suppress:
                if rule.matches(alarm.source, alarm.category, alarm.point):
                    alarm.suppressed_by["engineering"] = rule.reason
                    break
            if self.elements_of is not None:
                alarm.elements = tuple(self.elements_of(alarm))
        else:  # unacknowledged and returned to normal: in alarm again
            alarm.message, alarm.priority = kwargs["message"], priority
            alarm.raised_at = now
        alarm.active, alarm.cleared_at = True, None
        alarm.clear_due = now + klass.auto_clear_s if klass.auto_clear_s else None
        self._remember_raw(alarm, kwargs["raw_id"])
        history = self._transitions.setdefault(key, collections.deque())
        history.append(now)
        while history and now - history[0] > klass.chatter_window_s:
            history.popleft()
        if klass.chatter_count and len(history) >= klass.chatter_count and "chattering" not in alarm.suppressed_by:
            alarm.suppressed_by["chattering"] = f"{len(history)} alarms within {klass.chatter_window_s:g} s"
            log.warning("alarm %r is chattering (%d transitions in %g s): suppressed", alarm.message, len(history), klass.chatter_window_s)
        self._apply_state(alarm)
        if alarm.position in self._flooding and alarm.priority in self.settings.flood.suppress_priorities and alarm.category != "flood":
            alarm.suppressed_by["flood"] = f"alarm flood at {alarm.position}"
        self._publish(alarm, AlarmState.RAISED if alarm.annunciated else (AlarmState.SHELVED if alarm.shelved else AlarmState.SUPPRESSED))
        if alarm.annunciated and alarm.category != "flood":
            self._annunciations.setdefault(alarm.position, collections.deque()).append(now)
            self._check_flood(alarm.position, now)
        if klass.auto_clear_s == 0:
            self._return_to_normal(alarm, now)
        return alarm

    def _apply_state(self, alarm: ManagedAlarm) -> bool:
        """Set or lift state-based suppression; True if it changed."""
        reason = None
        if self.state_check is not None and self.settings.state_suppression and self.settings.class_for(alarm.category).state_suppression:
            reason = self.state_check(alarm)
        before = alarm.suppressed_by.get("state")
        if reason == before:
            return False
        if reason is None:
            del alarm.suppressed_by["state"]
        else:
            alarm.suppressed_by["state"] = reason
        return True

    def _return_to_normal(self, alarm: ManagedAlarm, now: float) -> None:
        alarm.active, alarm.clear_due, alarm.cleared_at = False, None, now
        self._publish(alarm, AlarmState.CLEARED)
        if alarm.acked:
            self._remove(alarm)

    def _remove(self, alarm: ManagedAlarm) -> None:
        self._alarms.pop(alarm.id, None)
        if self._by_key.get(alarm.key) is alarm:
            del self._by_key[alarm.key]
        for raw in alarm.raw_ids:
            if self._by_raw.get(raw) is alarm:
                del self._by_raw[raw]

    def _remember_raw(self, alarm: ManagedAlarm, raw_id: str | None) -> None:
        if raw_id:
            alarm.raw_ids.add(raw_id)
            self._by_raw[raw_id] = alarm

    def _unshelve(self, alarm: ManagedAlarm, user: str, why: str) -> None:
        alarm.shelved_until, alarm.shelved_by = None, None
        self._audit(user, "alarm.unshelve", alarm, why)
        self._publish_current(alarm)

    def _check_flood(self, position: str, now: float) -> None:
        flood = self.settings.flood
        history = self._annunciations.setdefault(position, collections.deque())
        while history and now - history[0] > flood.window_s:
            history.popleft()
        count = len(history)
        subject = f"flood:{position}"
        if position not in self._flooding and count >= flood.start:
            self._flooding.add(position)
            log.warning("alarm flood at position %r: %d alarms in %g s", position, count, flood.window_s)
            self.raise_condition(
                source=PLUGIN_NAME, category="flood", subject=subject, priority=AlarmPriority.HIGH, position=position,
                message=f"alarm flood at {position}: {count} alarms in the last {flood.window_s / 60:g} min (threshold {flood.start})",
            )
        elif position in self._flooding and count < flood.end:
            self._flooding.discard(position)
            log.info("alarm flood at position %r over: %d alarms in %g s", position, count, flood.window_s)
            self.clear_condition(source=PLUGIN_NAME, category="flood", subject=subject)
            for alarm in list(self._alarms.values()):
                if alarm.position == position and alarm.suppressed_by.pop("flood", None) is not None:
                    self._publish_current(alarm)

    def _escalate(self, now: float) -> None:
        steps = self.settings.escalation
        if not steps or self.on_escalate is None:
            return
        for alarm in list(self._alarms.values()):
            if alarm.acked or not alarm.annunciated:
                continue
            waited = now - alarm.unacked_since
            for step in steps:
                if step.index in alarm.escalated or waited < step.delay_s or not step.applies_to(alarm.priority, alarm.category):
                    continue
                alarm.escalated.add(step.index)
                try:
                    self.on_escalate(step, alarm)
                except Exception:  # noqa: BLE001 - escalation of other alarms goes on
                    log.exception("escalation step %d for alarm %r failed", step.index, alarm.id)

    def _comment(self, alarm: ManagedAlarm, user: str, text: str, now: float) -> None:
        if text:
            alarm.comments.append((now, user, text))

    def _publish(self, alarm: ManagedAlarm, state: AlarmState) -> None:
        self._emit(
            Alarm(
                alarm.message, alarm.priority, source=alarm.source,
                point=PointId(alarm.point) if alarm.point else None,
                state=state, category=alarm.category, id=alarm.id, time=self.clock(),
            )
        )

    def _publish_current(self, alarm: ManagedAlarm) -> None:
        if alarm.shelved:
            state = AlarmState.SHELVED
        elif alarm.suppressed:
            state = AlarmState.SUPPRESSED
        elif not alarm.active:
            state = AlarmState.CLEARED
        else:
            state = AlarmState.ACKNOWLEDGED if alarm.acked else AlarmState.RAISED
        self._publish(alarm, state)

    def _audit(self, actor: str, action: str, alarm: ManagedAlarm, detail: str) -> None:
        text = f"{alarm.priority.name.lower()} {alarm.category} alarm: {alarm.message}"
        self._emit(AuditEntry(actor=actor, action=action, subject=alarm.id, detail=f"{text}; {detail}" if detail else text, time=self.clock()))


def _as_set(value: Any) -> set[Any] | None:
    if value is None:
        return None
    if isinstance(value, AlarmPriority | IsaState):
        return {value}
    return set(value)


def _stamp(when: float | None) -> str:
    if when is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
