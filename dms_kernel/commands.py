"""Command path: authorise → interlocks → route → select-before-operate → operate → result.

Every step is emitted as an :class:`~dms_hookspecs.AuditEntry`; the command and its result
are emitted as events. A plugin that raises while authorising or interlocking blocks the
command (fail safe), and the result names it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from dms_hookspecs import AuditEntry, Command, CommandResult, CommandStatus, Event, Source

from .errors import PluginError, UnknownPointError
from .host import PluginHost
from .points import PointDatabase

__all__ = ["CommandPath"]

log = logging.getLogger("leitstand.commands")


class CommandPath:
    """Executes commands on behalf of operators and controllers.

    :param host: plugin host (authorisation and interlock hooks).
    :param points: point database (target lookup, owner, snapshot for interlocks).
    :param sources: running source instances by name.
    :param emit: publishes events to sinks.
    """

    def __init__(
        self,
        host: PluginHost,
        points: PointDatabase,
        sources: Mapping[str, Source],
        emit: Callable[[Event], None],
    ) -> None:
        self._host = host
        self._points = points
        self._sources = sources
        self._emit = emit

    def _audit(self, command: Command, action: str, detail: str) -> None:
        self._emit(AuditEntry(actor=command.originator, action=f"command.{action}", subject=command.target.name, detail=f"[{command.id}] {detail}"))

    def _finish(self, command: Command, status: CommandStatus, reason: str, step: str) -> CommandResult:
        return self._deliver(command, CommandResult(command.id, status, reason, step=step))

    def _deliver(self, command: Command, result: CommandResult) -> CommandResult:
        self._audit(command, "result", f"{result.status.value} at {result.step}: {result.reason}".rstrip(": "))
        self._emit(result)
        if not result.ok:
            log.warning("command %s on %s %s at %s: %s", command.id[:8], command.target, result.status.value, result.step, result.reason)
        return result

    async def execute(self, command: Command) -> CommandResult:
        """Run ``command`` through every step; never raises for a refused or failed command."""
        self._emit(command)
        self._audit(command, "received", f"value={command.value!r} sbo={command.select_before_operate} reason={command.reason!r}")

        # 1. authorisation
        try:
            denials = await self._host.call("dms_authorize_command", command=command)
        except PluginError as exc:
            return self._finish(command, CommandStatus.DENIED, f"authorisation failed: {exc}", "authorise")
        if denials:
            plugin, reason = denials[0]
            return self._finish(command, CommandStatus.DENIED, f"{plugin}: {reason}", "authorise")
        self._audit(command, "authorise", "allowed")

        # 2. target
        try:
            spec = self._points.spec(command.target)
            owner = self._points.owner(command.target)
        except UnknownPointError as exc:
            return self._finish(command, CommandStatus.REJECTED, str(exc), "route")
        if not spec.controllable:
            return self._finish(command, CommandStatus.REJECTED, f"point {command.target.name!r} is not controllable", "route")
        source = self._sources.get(owner)
        if source is None:
            return self._finish(command, CommandStatus.REJECTED, f"owning source {owner!r} is not running", "route")

        # 3. interlocks
        try:
            vetoes = await self._host.call("dms_veto_command", command=command, point=spec, snapshot=self._points.snapshot())
        except PluginError as exc:
            return self._finish(command, CommandStatus.VETOED, f"interlock check failed (fail safe): {exc}", "interlock")
        if vetoes:
            reasons = "; ".join(f"{plugin}: {reason}" for plugin, reason in vetoes)
            return self._finish(command, CommandStatus.VETOED, reasons, "interlock")
        self._audit(command, "interlock", "no veto")

        # 4. select-before-operate
        if command.select_before_operate or spec.select_before_operate:
            selected = await self._step(source, "select", command)
            if not selected.ok:
                return self._deliver(command, selected)
            self._audit(command, "select", f"selected by {owner}")

        # 5. operate
        result = await self._step(source, "operate", command)
        return self._deliver(command, result)

    async def _step(self, source: Source, step: str, command: Command) -> CommandResult:
        method = getattr(source, step)
        try:
            result = await asyncio.wait_for(method(command), timeout=command.timeout_s)
        except TimeoutError:
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"source {source.name!r} did not answer {step} within {command.timeout_s} s", step=step)
        except Exception as exc:  # noqa: BLE001 - the source's failure becomes the result
            return CommandResult(command.id, CommandStatus.FAILED, f"source {source.name!r} raised {type(exc).__name__}: {exc}", step=step)
        if not isinstance(result, CommandResult):
            return CommandResult(command.id, CommandStatus.FAILED, f"source {source.name!r} returned {type(result).__name__}, not CommandResult", step=step)
        return result
