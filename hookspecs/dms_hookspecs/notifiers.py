"""Notifier hooks: the types that deliver alarm notifications (e-mail, webhook, SMS gateway, …).

A notifier type is a subclass of :class:`Notifier`. The alarm manager (plugin ``alarms``)
creates one instance per ``[settings.alarms.notifiers.<name>]`` table of the deployment file
and calls :meth:`Notifier.send` when an escalation step names that instance::

    [settings.alarms.notifiers.oncall]
    type = "email"                  # a type registered through dms_add_notifier_types
    retries = 3                     # owned by the alarm manager: retries with exponential backoff
    settings = { host = "smtp.example.org", sender = "dms@example.org", to = ["oncall@example.org"] }

    [[settings.alarms.escalation]]
    priority = "critical"
    unacknowledged_for_s = 300
    notify = ["oncall"]

Types, not work: a notifier only delivers one message and raises if it could not; the alarm
manager owns the instances, retries with backoff, audits every attempt's outcome
(``notify.sent`` / ``notify.failed``) and closes the instances at shutdown.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import attrs

from .markers import hookspec
from .settings import SettingsSchema
from .types import AlarmPriority, Timestamp, _now

if TYPE_CHECKING:
    from .api import TypeRegistry

__all__ = ["dms_add_notifier_types", "Notification", "Notifier"]


# -------------------------------------------------------------------------
# Registration
# -------------------------------------------------------------------------


@hookspec
def dms_add_notifier_types(registry: TypeRegistry) -> None:
    """Register notifier types.

    Called once by the alarm manager when it starts (in its ``dms_startup``), before it
    creates the notifier instances of the deployment file. Register classes, not instances:
    ``registry.add("email", EmailNotifier)``. A type name registered twice is an error naming
    both plugins; an instance naming an unregistered type is a configuration error naming
    its table.

    :param registry: the notifier type registry.
    """


# -------------------------------------------------------------------------
# Value type and base class
# -------------------------------------------------------------------------


@attrs.frozen
class Notification:
    """One message to deliver about one alarm.

    :param subject: one line, e.g. ``"[CRITICAL] breaker 'switch_6/Pos' tripped"``.
    :param body: plain text for people.
    :param alarm_id: the managed alarm's id.
    :param priority: the alarm's priority.
    :param step: which escalation step asked for it (0 = first), for the audit trail.
    :param data: machine-readable details (alarm state, source, category, point, times) for
        notifiers that post structured data (webhooks).
    :param created: when the notification was created.
    """

    subject: str
    body: str
    alarm_id: str = ""
    priority: AlarmPriority = attrs.field(default=AlarmPriority.MEDIUM, converter=AlarmPriority)
    step: int = 0
    data: Mapping[str, Any] = attrs.field(factory=dict)
    created: Timestamp = attrs.field(factory=_now)


class Notifier(abc.ABC):
    """Base class of notifier types: delivers a :class:`Notification` to its recipients.

    The alarm manager creates one instance per notifier table of the deployment file with its
    validated ``settings`` and calls :meth:`send` on the event loop; a failure must raise (the
    manager retries with backoff and audits the final outcome).
    """

    settings_schema: ClassVar[SettingsSchema] = SettingsSchema()
    """Settings accepted in the ``settings = {...}`` of a notifier table."""

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        self.name = name
        self.settings = settings

    @abc.abstractmethod
    async def send(self, notification: Notification) -> str:
        """Deliver one notification; return a short delivery detail for the audit trail
        (``"250 accepted by smtp.example.org for oncall@example.org"``).

        :raises Exception: delivery failed (the manager retries, then audits the failure).
        """

    async def close(self) -> None:
        """Release connections; called once when the alarm manager stops."""
