"""Entry point of the ``alarms`` plugin: one :class:`AlarmService` per started kernel.

At ``dms_startup`` the plugin checks ``[settings.alarms]``, asks every plugin for notifier
types (``dms_add_notifier_types``), creates the notifier instances, subscribes to the bus and
the point database and starts a ticker task; ``dms_shutdown`` undoes it. The HMI finds the
manager with :func:`manager_for`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from dms_hookspecs import hookimpl

from .config import PLUGIN_NAME, SCHEMA, AlarmSettings
from .escalation import Dispatcher
from .feeds import KernelFeed
from .manager import AlarmManager
from .state import StateSuppression

__all__ = ["AlarmService", "manager_for", "service_for"]

log = logging.getLogger("leitstand.alarms")

_services: weakref.WeakKeyDictionary[Any, AlarmService] = weakref.WeakKeyDictionary()


class AlarmService:
    """The alarm manager wired into one kernel: feed, notifiers and ticker.

    :param kernel: the kernel (started, or starting: called from ``dms_startup``).
    :param settings: checked settings.
    """

    def __init__(self, kernel: Any, settings: AlarmSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.state = StateSuppression(kernel)
        self.manager = AlarmManager(
            settings,
            emit=self._emit,
            on_escalate=self._escalate,
            state_check=self.state.reason if self.state.enabled else None,
            elements_of=self.state.elements if self.state.enabled else None,
        )
        self.feed = KernelFeed(kernel, self.manager, settings)
        self.dispatcher = Dispatcher(settings.notifiers, self._emit, file=kernel.deployment.path, deployment=kernel.name)
        self.dispatcher.on_failure = self.manager.process
        self._ticker: asyncio.Task[None] | None = None

    def _emit(self, event: Any) -> None:
        self.feed.emit(event)

    def _escalate(self, step: Any, alarm: Any) -> None:
        self.dispatcher.escalate(step, alarm, self.manager.clock())

    async def start(self) -> None:
        await self.dispatcher.register_types(self.kernel.host)
        self.dispatcher.create(self.kernel.host)
        self.feed.start()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_forever(), name="alarms:tick")
        log.info(
            "alarm manager for %r: %d classes, %d point limits, %d notifiers, %d escalation steps, state suppression %s",
            self.kernel.name, len(self.settings.classes), len(self.settings.point_limits), len(self.dispatcher.notifiers),
            len(self.settings.escalation), "on" if self.state.enabled and self.settings.state_suppression else "off",
        )

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.tick_s)
            try:
                self.feed.tick()
                self.manager.tick()
            except Exception:  # noqa: BLE001 - the alarm manager must keep running
                log.exception("alarm manager tick failed")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        self.feed.stop()
        await self.dispatcher.close()


def service_for(kernel: Any) -> AlarmService:
    """The alarm service of a started kernel. :raises LookupError: the plugin is not running there."""
    try:
        return _services[kernel]
    except KeyError:
        raise LookupError(f"the alarms plugin is not running in kernel {getattr(kernel, 'name', kernel)!r}") from None


def manager_for(kernel: Any) -> AlarmManager:
    """The :class:`AlarmManager` of a started kernel — the HMI's entry point.

    :raises LookupError: the ``alarms`` plugin is not loaded or not started in that kernel.
    """
    return service_for(kernel).manager


@hookimpl
def dms_settings_schema():
    return SCHEMA


@hookimpl
async def dms_startup(kernel):
    settings = AlarmSettings.from_settings(kernel.settings_for(PLUGIN_NAME), kernel.deployment.path)
    service = AlarmService(kernel, settings)
    await service.start()
    _services[kernel] = service


@hookimpl
async def dms_shutdown(kernel):
    service = _services.pop(kernel, None)
    if service is not None:
        await service.stop()
