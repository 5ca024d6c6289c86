"""The managed alarm: one alarm condition on the operator's list, with its ISA-18.2 state."""

from __future__ import annotations

import enum
import re

import attrs

from dms_hookspecs import AlarmPriority, new_id

__all__ = ["IsaState", "ManagedAlarm", "AlarmKey", "condition_key", "AlarmError", "UnknownAlarmError"]

AlarmKey = tuple[str, str, str]
"""``(source, category, subject)``: one alarm condition."""


class AlarmError(ValueError):
    """An operator action that cannot be done (already acknowledged, shelve without expiry, …)."""


class UnknownAlarmError(AlarmError, KeyError):
    """No alarm with this id on the list (it may have returned to normal and been acknowledged)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown alarm"


class IsaState(enum.Enum):
    """ISA-18.2 / IEC 62682 alarm states of an annunciated alarm."""

    UNACK_ACTIVE = "unacked-active"  #: in alarm, not yet acknowledged
    ACK_ACTIVE = "acked-active"  #: in alarm, acknowledged
    UNACK_RTN = "unacked-rtn"  #: returned to normal before it was acknowledged
    NORMAL = "normal"  #: returned to normal and acknowledged: off the list


_QUOTED = re.compile(r"('[^']*'|\"[^\"]*\")")
_NUMBER = re.compile(r"[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?")


def normalised_message(message: str) -> str:
    """What identifies the condition in a message: the text before the first ``": "`` (what
    follows is the cause), with numbers outside quotes replaced by ``#``. So
    ``"voltage 1.12 pu at 'n2'"`` and ``"voltage 1.13 pu at 'n2'"`` are one condition, ``'n2'``
    and ``'n3'`` are two, and ``"link to 'rtu1' lost: timeout"`` and ``"… lost: refused"`` are one."""
    parts = _QUOTED.split(message.removeprefix("cleared: "))
    kept = []
    for index, part in enumerate(parts):
        if index % 2 == 0 and ": " in part:
            head = part.split(": ", 1)[0]
            if head.strip() or kept:
                kept.append(_NUMBER.sub("#", head))
                break
        kept.append(part if index % 2 else _NUMBER.sub("#", part))
    return "".join(kept)


def condition_key(source: str, category: str, point: str | None, message: str, subject: str | None = None) -> AlarmKey:
    """Which condition an alarm reports: its point if it has one, otherwise its normalised message."""
    if subject is None:
        subject = f"point:{point}" if point else normalised_message(message)
    return (source, category, subject)


@attrs.define(eq=False)
class ManagedAlarm:
    """One alarm on the list. Read it; change it only through :class:`~dms_alarms.AlarmManager`.

    :ivar id: managed alarm id (events and audit entries refer to it).
    :ivar active: the condition is in alarm.
    :ivar acked: acknowledged since it was last raised.
    :ivar raised_at: when it was (last) annunciated; ``unacked_since`` starts escalation.
    :ivar suppressed_by: why it is suppressed (``operator``, ``engineering``, ``chattering``,
        ``state``, ``flood``) → detail.
    :ivar elements: network equipment/node mRIDs it concerns (state-based suppression).
    """

    key: AlarmKey
    message: str
    priority: AlarmPriority
    source: str
    category: str
    point: str | None
    position: str
    raised_at: float
    id: str = attrs.field(factory=new_id)
    active: bool = True
    acked: bool = False
    unacked_since: float = 0.0
    acked_by: str | None = None
    acked_at: float | None = None
    cleared_at: float | None = None
    clear_due: float | None = None
    shelved_until: float | None = None
    shelved_by: str | None = None
    suppressed_by: dict[str, str] = attrs.field(factory=dict)
    elements: tuple[str, ...] = ()
    raw_ids: set[str] = attrs.field(factory=set)
    escalated: set[int] = attrs.field(factory=set)
    comments: list[tuple[float, str, str]] = attrs.field(factory=list)

    @property
    def state(self) -> IsaState:
        if self.active:
            return IsaState.ACK_ACTIVE if self.acked else IsaState.UNACK_ACTIVE
        return IsaState.NORMAL if self.acked else IsaState.UNACK_RTN

    @property
    def shelved(self) -> bool:
        return self.shelved_until is not None

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressed_by)

    @property
    def annunciated(self) -> bool:
        """Shown to operators (neither shelved nor suppressed)."""
        return not self.shelved and not self.suppressed_by

    def as_dict(self) -> dict[str, object]:
        """A JSON-ready view for the HMI and webhooks."""
        return {
            "id": self.id,
            "state": self.state.value,
            "priority": self.priority.name.lower(),
            "message": self.message,
            "source": self.source,
            "category": self.category,
            "point": self.point,
            "position": self.position,
            "raised_at": self.raised_at,
            "acked_by": self.acked_by,
            "acked_at": self.acked_at,
            "cleared_at": self.cleared_at,
            "shelved_until": self.shelved_until,
            "shelved_by": self.shelved_by,
            "suppressed_by": dict(self.suppressed_by),
        }
