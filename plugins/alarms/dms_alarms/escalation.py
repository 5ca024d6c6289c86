"""Escalation: notifier instances, delivery with retries and exponential backoff, audited.

The :class:`Dispatcher` owns the notifier instances created from
``[settings.alarms.notifiers.<name>]`` with the types plugins registered through
``dms_add_notifier_types``. For each due escalation step it sends one
:class:`~dms_hookspecs.Notification` per named notifier in a task of its own: attempt, wait
``backoff_s`` (doubling, at most ``backoff_max_s``), attempt again, up to ``retries`` more
times. The outcome is an :class:`~dms_hookspecs.AuditEntry` ``notify.sent`` or
``notify.failed``; a final failure also raises a ``notification`` alarm.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from dms_hookspecs import Alarm, AlarmPriority, AuditEntry, Notification, Notifier
from dms_kernel.config import validate_table
from dms_kernel.errors import ConfigError, PluginError
from dms_kernel.registry import TypeRegistry

from .config import PLUGIN_NAME, EscalationStep, NotifierConfig
from .records import ManagedAlarm

__all__ = ["Dispatcher", "notification_for"]

log = logging.getLogger("leitstand.alarms.notify")


def notification_for(step: EscalationStep, alarm: ManagedAlarm, now: float, deployment: str = "") -> Notification:
    """The message an escalation step sends about an alarm."""
    priority = alarm.priority.name
    waited = now - alarm.unacked_since
    subject = f"[{priority}] {alarm.message}"
    lines = [
        f"{priority.lower()} alarm, unacknowledged for {waited / 60:.1f} min (escalation step {step.index + 1})",
        "",
        f"message:  {alarm.message}",
        f"state:    {alarm.state.value}",
        f"raised:   {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(alarm.raised_at))}",
        f"source:   {alarm.source}",
        f"category: {alarm.category}",
    ]
    if alarm.point:
        lines.append(f"point:    {alarm.point}")
    lines += [f"position: {alarm.position}", f"alarm id: {alarm.id}"]
    if deployment:
        lines.insert(0, f"Leitstand deployment {deployment!r}")
    data = alarm.as_dict() | {"step": step.index, "unacknowledged_s": waited, "deployment": deployment}
    return Notification(subject, "\n".join(lines) + "\n", alarm.id, alarm.priority, step.index, data, now)


class Dispatcher:
    """Creates the notifier instances and delivers notifications with retries.

    :param configs: checked notifier tables by name.
    :param emit: receives audit entries and ``notification`` alarms.
    :param file: the deployment file, for error messages.
    :param sleep: ``asyncio.sleep`` (replaceable in tests).
    """

    def __init__(
        self,
        configs: Mapping[str, NotifierConfig],
        emit: Callable[[Any], None],
        *,
        file: str = "<settings>",
        deployment: str = "",
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self.configs = configs
        self.emit = emit
        self.file = file
        self.deployment = deployment
        self.sleep = sleep
        self.types = TypeRegistry("notifier")
        self.notifiers: dict[str, Notifier] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.on_failure: Callable[[Alarm], None] | None = None

    async def register_types(self, host: Any) -> None:
        """Ask every plugin for its notifier types (hook ``dms_add_notifier_types``)."""
        await host.call(
            "dms_add_notifier_types",
            registry=self.types,
            before_each=lambda plugin: setattr(self.types, "current_plugin", plugin),
        )

    def create(self, host: Any = None) -> None:
        """Create one instance per notifier table.

        :raises ConfigError: unknown type or invalid settings, naming the table.
        :raises PluginError: the type's constructor failed.
        """
        for name, config in self.configs.items():
            if config.type not in self.types:
                known = ", ".join(self.types) or "none (is dms-notify installed?)"
                raise ConfigError(self.file, config.table, "type", f"unknown notifier type {config.type!r} (registered: {known})")
            settings = validate_table(config.settings, self.types.schema(config.type), self.file, f"{config.table}.settings")
            try:
                self.notifiers[name] = self.types.get(config.type)(name, settings)
            except Exception as exc:  # noqa: BLE001
                owner = self.types.owner(config.type)
                distribution = host.distribution_of(owner) if host is not None else None
                raise PluginError(owner, f"notifier type {config.type!r}", f"cannot create notifier {name!r}: {type(exc).__name__}: {exc}", distribution) from exc

    def escalate(self, step: EscalationStep, alarm: ManagedAlarm, now: float) -> None:
        """Start delivering ``step``'s notifications about ``alarm`` (returns at once)."""
        notification = notification_for(step, alarm, now, self.deployment)
        log.info("escalation step %d for alarm %r (%s): notifying %s", step.index + 1, alarm.message, alarm.id, ", ".join(step.notify))
        for name in step.notify:
            task = asyncio.get_running_loop().create_task(self.deliver(name, notification), name=f"notify:{name}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def deliver(self, name: str, notification: Notification) -> bool:
        """Send one notification through notifier ``name`` with retries; audit the outcome."""
        config = self.configs[name]
        notifier = self.notifiers[name]
        attempts = config.retries + 1
        delay = config.backoff_s
        errors: list[str] = []
        for attempt in range(1, attempts + 1):
            try:
                detail = await notifier.send(notification)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then audited
                errors.append(f"{type(exc).__name__}: {exc}")
                log.warning("notifier %r attempt %d/%d failed: %s", name, attempt, attempts, errors[-1])
                if attempt < attempts:
                    await self.sleep(delay)
                    delay = min(delay * 2, config.backoff_max_s)
                continue
            self.emit(
                AuditEntry(
                    actor=PLUGIN_NAME, action="notify.sent", subject=notification.alarm_id,
                    detail=f"notifier {name!r} ({config.type}), step {notification.step + 1}, attempt {attempt}/{attempts}: {detail or 'sent'}; {notification.subject}",
                )
            )
            return True
        self.emit(
            AuditEntry(
                actor=PLUGIN_NAME, action="notify.failed", subject=notification.alarm_id,
                detail=f"notifier {name!r} ({config.type}), step {notification.step + 1}, {attempts} attempts failed, last: {errors[-1]}; {notification.subject}",
            )
        )
        alarm = Alarm(
            f"notification {name!r} failed after {attempts} attempts: {errors[-1]}",
            AlarmPriority.HIGH, source=PLUGIN_NAME, category="notification",
        )
        if self.on_failure is not None:
            self.on_failure(alarm)
        return False

    async def close(self) -> None:
        """Wait briefly for deliveries in flight, then close every notifier."""
        if self.tasks:
            _, pending = await asyncio.wait(set(self.tasks), timeout=2.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for name, notifier in self.notifiers.items():
            try:
                await notifier.close()
            except Exception as exc:  # noqa: BLE001
                log.error("notifier %r failed to close: %s", name, exc)
        self.notifiers.clear()
