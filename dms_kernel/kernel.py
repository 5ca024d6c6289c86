"""The kernel: wires plugins, point database, bus, scheduler and command path together.

Lifecycle::

    kernel = Kernel(load_deployment("deployment.toml"))
    await kernel.prepare()   # validate settings, register types, create sources/sinks, declare points
    await kernel.start()     # dms_startup, sinks, sources, jobs
    ...
    await kernel.stop()      # sources, jobs, dms_shutdown, flush sinks

``async with kernel:`` does prepare/start and stop.
"""

from __future__ import annotations

import asyncio
import threading
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    AuditEntry,
    Command,
    CommandResult,
    ControlAction,
    Event,
    MeasurementBatch,
    PointId,
    SettingsSchema,
    Sink,
    Source,
    StudyResult,
)

from .bus import Bus, InProcessBus
from .commands import CommandPath
from .config import Deployment, InstanceConfig, parse_deployment, validate_table
from .errors import ConfigError, LeitstandError, PluginError, StudyError
from .host import PluginHost
from .points import PointDatabase, PointSnapshot
from .registry import TypeRegistry
from .scheduler import Scheduler
from .tuning import tune_allocator

__all__ = ["Kernel", "SourceContext"]

_EMPTY_DEPLOYMENT = {"deployment": {"name": "unnamed"}}


class SourceContext:
    """What a running source uses to publish (implements ``dms_hookspecs.SourceContext``).

    Checks that the source publishes only points it owns and that a batch is well formed;
    a bad batch is dropped with an error naming the source, and the source keeps running.
    """

    def __init__(self, kernel: Kernel, source: str, own_mask: np.ndarray) -> None:
        self._kernel = kernel
        self._points = kernel.points
        self._source = source
        self._own = own_mask
        self.log = logging.getLogger(f"leitstand.source.{source}")

    def point_numbers(self, points: Sequence[PointId | str]) -> np.ndarray:
        return self._points.numbers(points)

    def publish(self, batch: MeasurementBatch) -> None:
        points = np.asarray(batch.points, dtype=np.int64)
        size = points.size
        if not (len(batch.values) == len(batch.quality) == len(batch.source_time) == size):
            self.log.error(
                "source %r published a malformed batch (points %d, values %d, quality %d, source_time %d); dropped",
                self._source, size, len(batch.values), len(batch.quality), len(batch.source_time),
            )
            self._kernel.counters["malformed_batches"] += 1
            return
        if size == 0:
            return
        if points.min() < 0 or points.max() >= self._own.size or not self._own[points].all():
            self.log.error("source %r published points it does not own; batch dropped", self._source)
            self._kernel.counters["malformed_batches"] += 1
            return
        changed = self._points.update(points, batch.values, batch.quality, batch.source_time, batch.receive_time)
        self._kernel.counters["updates"] += size
        if changed.size and self._kernel.wants_measurements:
            self._kernel.emit_changes(self._source, changed, batch.receive_time)

    def publish_one(self, point: int, value: float, quality: int = 0, source_time: float | None = None) -> None:
        if not 0 <= point < self._own.size or not self._own[point]:
            self.log.error("source %r published point number %r it does not own; dropped", self._source, point)
            self._kernel.counters["malformed_batches"] += 1
            return
        now = time.time()
        changed = self._points.update_one(point, value, quality, now if source_time is None else source_time, now)
        self._kernel.counters["updates"] += 1
        if changed and self._kernel.wants_measurements:
            self._kernel.emit_changes(self._source, np.array((point,), dtype=np.int64), now)

    def raise_alarm(self, alarm: Alarm) -> None:
        self._kernel.emit(alarm)


CANCEL_ATTEMPTS = 10
"""How often :meth:`Kernel.stop` cancels a source task that keeps running."""
CANCEL_WAIT_S = 1.0
"""How long it waits for the source tasks after each cancel."""


def _task_names(tasks: Iterable[asyncio.Task[Any]]) -> str:
    return ", ".join(sorted(task.get_name() for task in tasks))


class Kernel:
    """One Leitstand instance.

    :param deployment: the deployment (default: an empty one).
    :param host: a plugin host; default: one built from the deployment's enable/disable lists.
    :param builtin: plugins registered before entry points (ignored if ``host`` is given).
    :param load_entry_points: load the ``dms.plugins`` entry-point group.
    :param bus: event bus (default: the type named in ``[kernel] bus``, created while
        preparing; :class:`InProcessBus` for ``"inprocess"``).
    """

    def __init__(
        self,
        deployment: Deployment | None = None,
        *,
        host: PluginHost | None = None,
        builtin: Sequence[tuple[str, object]] = (),
        load_entry_points: bool = True,
        bus: Bus | None = None,
    ) -> None:
        self.deployment = deployment or parse_deployment(_EMPTY_DEPLOYMENT)
        self.name = self.deployment.name
        self.log = logging.getLogger("leitstand")
        self.host = host or PluginHost(
            builtin,
            load_entry_points=load_entry_points,
            blocked=self.deployment.disable,
            enabled=self.deployment.enable,
        )
        self.points = PointDatabase(self.deployment.kernel["point_capacity"])
        self.bus = bus or InProcessBus(on_overflow=self._on_overflow, on_error=self._on_subscriber_error)
        self._loop: asyncio.AbstractEventLoop | None = None  #: the event loop the kernel runs on (set by start)
        self._loop_thread = 0
        self._bus_given = bus is not None
        self.bus_types = TypeRegistry("bus")
        self.scheduler = Scheduler(on_overrun=self._on_overrun, on_error=self._on_job_error)
        self.source_types = TypeRegistry("source")
        self.sink_types = TypeRegistry("sink")
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, Sink] = {}
        self.studies: dict[str, list[str]] = {}
        self._study_providers: set[str] = set()  #: plugins that listed their studies (dms_studies)
        self.model: Any = None
        self.live: Any = None
        self.topology: Any = None
        self._pending_switch_points: set[int] = set()
        self._model_lock = asyncio.Lock()
        self.counters: dict[str, int] = {"updates": 0, "malformed_batches": 0, "source_restarts": 0}
        self.commands = CommandPath(self.host, self.points, self.sources, self.emit)
        self._plugin_settings: dict[str, dict[str, Any]] = {}
        self._source_tasks: list[asyncio.Task[None]] = []
        self._started_sinks: list[Sink] = []
        self._prepared = False
        self._started = False
        self._startup_called = False
        self.wants_measurements = False

    # -- preparation ---------------------------------------------------------------------

    async def prepare(self) -> None:
        """Validate everything and create instances, without starting anything.

        :raises ConfigError: invalid settings, unknown type or study, duplicate point.
        :raises PluginError: a plugin failed in a hook.
        """
        if self._prepared:
            return
        file = self.deployment.path
        await self._validate_plugin_settings(file)
        await self.host.call_historic("dms_configure", config=self.deployment)
        if self.deployment.model and self.model is None:
            self.model = await self.load_model(self.deployment.model, self.deployment.base_dir)
            if self.deployment.standard_measurements and hasattr(self.model, "of_type"):
                from .model.elements import Measurement
                from .model.scada import add_scada_measurements

                if not self.model.of_type(Measurement):
                    added = add_scada_measurements(self.model, meters=True)
                    self.log.info("model %r: added %d standard SCADA measurements", self.model.name, len(added))
        for kind, registry in (("source", self.source_types), ("sink", self.sink_types)):
            await self.host.call(
                f"dms_add_{kind}_types",
                registry=registry,
                before_each=lambda plugin, registry=registry: setattr(registry, "current_plugin", plugin),
            )
        await self._select_bus(file)
        for plugin, names in await self.host.call("dms_studies"):
            self._study_providers.add(plugin)
            for study in names:
                self.studies.setdefault(study, []).append(plugin)
        for job in self.deployment.jobs:
            if job.study not in self.studies:
                known = ", ".join(sorted(self.studies)) or "none"
                raise ConfigError(file, job.table, "study", f"no loaded plugin provides study {job.study!r} (provided: {known})")
        from .model.addresses import model_point_maps

        with model_point_maps(self.model):  # sources with point_map = "cim" read their addresses from the model
            for config in self.deployment.sources:
                self.sources[config.name] = self._instantiate(config, self.source_types, "sources", file)
        for config in self.deployment.sources:
            if config.group is not None:
                remote = self.bus.remote_source(config.name, self.sources[config.name], config.group)
                if remote is not None:
                    self.sources[config.name] = remote
        for config in self.deployment.sinks:
            self.sinks[config.name] = self._instantiate(config, self.sink_types, "sinks", file)
        for name, source in self.sources.items():
            try:
                specs = list(source.points())
            except Exception as exc:  # noqa: BLE001
                owner = self.source_types.owner(self._type_of(name))
                raise PluginError(owner, "Source.points", f"source {name!r}: {type(exc).__name__}: {exc}", self.host.distribution_of(owner)) from exc
            for spec in specs:
                try:
                    self.points.add(spec, name)
                except LeitstandError as exc:
                    raise ConfigError(file, "sources", None, str(exc)) from exc
        if self.model is not None and hasattr(self.model, "of_type"):
            from .model.live import LiveModel

            from .model.topology import TopologyProcessor

            self.live = LiveModel(self.model, self.points.names)
            self.topology = TopologyProcessor(self.model)
            self.log.info(
                "model %r: %d measurements bound to points, %d unbound",
                getattr(self.model, "name", "?"), len(self.live.bindings), len(self.live.unbound),
            )
        self._prepared = True

    async def _select_bus(self, file: str) -> None:
        """Create the bus named in ``[kernel] bus`` unless one was passed to the constructor."""
        await self.host.call(
            "dms_add_bus_types",
            registry=self.bus_types,
            before_each=lambda plugin: setattr(self.bus_types, "current_plugin", plugin),
        )
        kind = self.deployment.kernel["bus"]
        if self._bus_given or kind == "inprocess":
            return
        if kind not in self.bus_types:
            known = ", ".join(["inprocess", *self.bus_types])
            raise ConfigError(file, "kernel", "bus", f"unknown bus type {kind!r} (registered: {known})")
        try:
            bus = self.bus_types.get(kind)(self)
        except LeitstandError:
            raise
        except Exception as exc:  # noqa: BLE001
            owner = self.bus_types.owner(kind)
            raise PluginError(owner, f"bus type {kind!r}", f"cannot create the bus: {type(exc).__name__}: {exc}", self.host.distribution_of(owner)) from exc
        if not isinstance(bus, Bus):
            owner = self.bus_types.owner(kind)
            raise PluginError(owner, f"bus type {kind!r}", f"returned {type(bus).__name__}, not a dms_kernel.bus.Bus", self.host.distribution_of(owner))
        self.bus = bus
        self.log.info("event bus: %s (plugin %r)", kind, self.bus_types.owner(kind))

    async def load_model(self, location: str, base_dir: Path) -> Any:
        """Load a network model through the ``dms_load_model`` hook.

        :raises ConfigError: no plugin recognises ``location``.
        :raises PluginError: the plugin that recognised it failed to read it.
        """
        answer = await self.host.call_first("dms_load_model", location=location, base_dir=base_dir)
        if answer is None:
            problem = f"no loaded plugin can load model {location!r} (is the importer plugin installed and not blocked?)"
            if self.deployment.model != location:  # asked for directly, e.g. by `leitstand study`
                raise LeitstandError(problem)
            raise ConfigError(self.deployment.path, "deployment", "model", problem)
        plugin, model = answer
        self.log.info("network model %r loaded by plugin %r", getattr(model, "name", location), plugin)
        return model

    def _type_of(self, source_name: str) -> str:
        return next(config.type for config in self.deployment.sources if config.name == source_name)

    async def _validate_plugin_settings(self, file: str) -> None:
        schemas: dict[str, SettingsSchema] = dict(await self.host.call("dms_settings_schema"))
        loaded = set(self.host.plugin_names())
        for plugin, raw in self.deployment.plugin_settings.items():
            if plugin in self.host.blocked:
                self.log.warning("plugin %r is blocked: its [settings.%s] table is ignored", plugin, plugin)
                continue
            if plugin not in loaded:
                raise ConfigError(file, f"settings.{plugin}", None, f"no loaded plugin named {plugin!r} (loaded: {', '.join(sorted(loaded)) or 'none'})")
            if plugin not in schemas:
                raise ConfigError(file, f"settings.{plugin}", None, f"plugin {plugin!r} takes no settings")
        for plugin, schema in schemas.items():
            raw = self.deployment.plugin_settings.get(plugin, {})
            self._plugin_settings[plugin] = validate_table(raw, schema, file, f"settings.{plugin}")
        self.deployment = attrs.evolve(self.deployment, plugin_settings=dict(self._plugin_settings))

    def _instantiate(self, config: InstanceConfig, registry: TypeRegistry, kind: str, file: str) -> Any:
        table = config.table.rsplit(".", 1)[0]
        if config.type not in registry:
            known = ", ".join(registry) or "none"
            raise ConfigError(file, table, "type", f"unknown {registry.kind} type {config.type!r} (registered: {known})")
        settings = validate_table(config.settings, registry.schema(config.type), file, config.table)
        try:
            return registry.get(config.type)(config.name, settings)
        except Exception as exc:  # noqa: BLE001
            owner = registry.owner(config.type)
            raise PluginError(owner, f"{registry.kind} type {config.type!r}", f"cannot create {kind[:-1]} {config.name!r}: {type(exc).__name__}: {exc}", self.host.distribution_of(owner)) from exc

    def settings_for(self, plugin: str) -> Mapping[str, Any]:
        """Validated ``[settings.<plugin>]`` (defaults filled), empty if the plugin has none."""
        return self._plugin_settings.get(plugin, {})

    # -- running -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start plugins, sinks, sources and jobs; on failure, stop what was started and raise."""
        tune_allocator()  # keep cyclic studies' large arrays in the heap (see dms_kernel.tuning)
        self._loop, self._loop_thread = asyncio.get_running_loop(), threading.get_ident()
        await self.prepare()
        try:
            self._startup_called = True
            await self.host.call("dms_startup", kernel=self)
            for name, sink in self.sinks.items():
                try:
                    await sink.open()
                except Exception as exc:  # noqa: BLE001
                    owner = self.sink_types.owner(self._sink_type(name))
                    raise PluginError(owner, "Sink.open", f"sink {name!r}: {type(exc).__name__}: {exc}", self.host.distribution_of(owner)) from exc
                self._started_sinks.append(sink)
                queue_size = self._sink_config(name).queue_size or self.deployment.kernel["default_queue_size"]
                self.bus.subscribe(f"sink:{name}", sink.write, tuple(sink.accepts), queue_size)
            self.wants_measurements = any(issubclass(MeasurementBatch, sink.accepts) for sink in self.sinks.values())
            if self.live is not None and self.live.switch_points():
                self.points.subscribe(self.points.numbers(self.live.switch_points()), self._on_switch_points)
            await self.bus.start()
            self._started = True
            loop = asyncio.get_running_loop()
            for name, source in self.sources.items():
                context = SourceContext(self, name, self.points.owned_by(name))
                self._source_tasks.append(loop.create_task(self._supervise(name, source, context), name=f"source:{name}"))
            await self._prime_jobs()
            for job in self.deployment.jobs:
                self.scheduler.every(job.name, job.period_s, lambda job=job: self._run_job(job.name, job.study, job.options))
            await self.scheduler.start()
        except BaseException:
            await self.stop()
            raise
        self.emit(AuditEntry(actor="kernel", action="kernel.start", subject=self.name, detail=f"{len(self.sources)} sources, {len(self.points)} points, {len(self.sinks)} sinks"))

    async def _prime_jobs(self) -> None:
        """Run every job's study once at startup, so that model conversion and JIT compilation
        (e.g. numba) happen before the first cycle, never inside one. A failure is alarmed,
        not fatal: the job keeps trying at its period."""
        for job in self.deployment.jobs:
            started = time.monotonic()
            try:
                await self.run_study(job.study, job.options, publish=False)
            except LeitstandError as exc:
                self._on_job_error(job.name, exc)
            else:
                self.log.info("job %r primed in %.2f s", job.name, time.monotonic() - started)

    def _sink_config(self, name: str) -> InstanceConfig:
        return next(config for config in self.deployment.sinks if config.name == name)

    def _sink_type(self, name: str) -> str:
        return self._sink_config(name).type

    async def _supervise(self, name: str, source: Source, context: SourceContext) -> None:
        """Run a source; if it fails, alarm and restart it with backoff (1 s doubling to 30 s)."""
        backoff = 1.0
        while True:
            started = time.monotonic()
            try:
                await source.run(context)
                self.log.info("source %r finished", name)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing source must not stop the kernel
                self.counters["source_restarts"] += 1
                self.log.error("source %r failed: %s: %s; restarting in %.0f s", name, type(exc).__name__, exc, backoff)
                self.emit(Alarm(f"source {name!r} failed: {type(exc).__name__}: {exc}", AlarmPriority.HIGH, source=name, category="comms"))
            if time.monotonic() - started > 60:
                backoff = 1.0
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)

    async def _cancel_sources(self) -> None:
        """Cancel the source tasks and wait for them. A task still running a second after its
        cancel — its source swallowed the ``CancelledError`` (a plugin bug, or Python 3.11's
        ``asyncio.wait_for`` losing a cancel that races with its own timeout) — is cancelled again,
        up to :data:`CANCEL_ATTEMPTS` times, then left behind with an error naming it: a stubborn
        source must not hang the shutdown."""
        pending = {task for task in self._source_tasks if not task.done()}
        for attempt in range(1, CANCEL_ATTEMPTS + 1):
            if not pending:
                break
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
            if pending and attempt < CANCEL_ATTEMPTS:
                self.log.warning("%s still running after cancel; cancelling again", _task_names(pending))
        if pending:
            self.log.error("%s ignored %d cancels; left running", _task_names(pending), CANCEL_ATTEMPTS)
        for task in self._source_tasks:
            if task.done() and not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" at exit
        self._source_tasks.clear()

    async def stop(self) -> None:
        """Stop sources and jobs, call ``dms_shutdown``, flush and close sinks. Idempotent."""
        await self._cancel_sources()
        await self.scheduler.stop()
        for name, source in self.sources.items():
            try:
                await source.close()
            except Exception as exc:  # noqa: BLE001
                self.log.error("source %r failed to close: %s", name, exc)
        if self._startup_called:
            for error in await self.host.call_each("dms_shutdown", kernel=self):
                self.log.error("%s", error)
            self._startup_called = False
        if self._started:
            self.emit(AuditEntry(actor="kernel", action="kernel.stop", subject=self.name))
            await self.bus.stop()
            self._started = False
        for sink in self._started_sinks:
            try:
                await sink.close()
            except Exception as exc:  # noqa: BLE001
                self.log.error("sink %r failed to close: %s", sink.name, exc)
        self._started_sinks.clear()

    async def __aenter__(self) -> Kernel:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # -- events --------------------------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Publish an event to every sink that accepts its type; callable from any thread (a
        call from another thread than the kernel's event loop is handed to the loop)."""
        loop = self._loop
        if loop is not None and threading.get_ident() != self._loop_thread:
            if not loop.is_closed():
                loop.call_soon_threadsafe(self.bus.publish, event)
            return
        self.bus.publish(event)

    def emit_changes(self, source: str, changed: np.ndarray, receive_time: float) -> None:
        """Publish the reported changes of one update as a batch (read back from the database)."""
        points = self.points
        self.bus.publish(
            MeasurementBatch(
                source=source,
                points=changed,
                values=points._values[changed],
                quality=points._quality[changed],
                source_time=points._source_time[changed],
                receive_time=receive_time,
                names=points.names_of(changed),
            )
        )

    def _on_switch_points(self, changed: np.ndarray) -> None:
        """Switch positions changed: update model and topology now (or after a running study)."""
        self._pending_switch_points.update(int(n) for n in changed)
        if not self._model_lock.locked():
            self._apply_switch_points()

    def _apply_switch_points(self) -> None:
        switched = []
        for number in sorted(self._pending_switch_points):
            measurement = self.points.read(number)
            mrid = self.live.apply_switch(measurement.point.name, measurement.value, measurement.quality.validity.name == "GOOD")
            if mrid is not None:
                switched.append(mrid)
        self._pending_switch_points.clear()
        if switched:
            self._publish_topology()

    def _publish_topology(self) -> None:
        change = self.topology.sync_from_model()
        if change.switches:
            self.emit(change.to_event())

    def snapshot(self) -> PointSnapshot:
        return self.points.snapshot()

    def set_quality(self, points: Sequence[PointId | str], quality: int, source: str = "kernel") -> None:
        """Overwrite the quality of points, keeping their values (e.g. bad data found by state
        estimation → questionable); the change reaches subscribers and sinks like any update.

        :raises UnknownPointError: a point the database does not know.
        """
        numbers = self.points.numbers(points)
        if numbers.size == 0:
            return
        now = time.time()
        values = self.points.values(numbers)
        source_time = self.points._source_time[numbers]
        changed = self.points.update(numbers, values, np.full(numbers.size, quality, np.uint16), source_time, now)
        if changed.size and self.wants_measurements:
            self.emit_changes(source, changed, now)

    def _on_overflow(self, subscriber: str, dropped: int) -> None:
        alarm = Alarm(
            f"{subscriber} cannot keep up: its queue is full and events are being dropped ({dropped} so far)",
            AlarmPriority.HIGH,
            source="kernel",
            category="bus-overflow",
        )
        self.bus.publish(alarm)

    def _on_subscriber_error(self, subscriber: str, exc: BaseException) -> None:
        self.bus.publish(
            Alarm(
                f"{subscriber} is failing: {type(exc).__name__}: {exc}; its events are being lost",
                AlarmPriority.HIGH,
                source="kernel",
                category="sink-failure",
            )
        )

    def _on_overrun(self, job: str, period_s: float, running_s: float) -> None:
        self.emit(Alarm(f"job {job!r} overran its period of {period_s:g} s (running for {running_s:.2f} s); tick skipped", AlarmPriority.LOW, source="scheduler", category="overrun"))

    def _on_job_error(self, job: str, exc: BaseException) -> None:
        self.emit(Alarm(f"job {job!r} failed: {exc}", AlarmPriority.MEDIUM, source="scheduler", category="study-failure"))

    # -- studies and commands ------------------------------------------------------------

    async def run_study(self, study: str, options: Mapping[str, Any] | None = None, *, publish: bool = True) -> StudyResult:
        """Run a study on a fresh snapshot, emit its result and let controllers propose actions.

        Plugins that list their studies (``dms_studies``) are asked only for those: a synchronous
        solver of another study costs no hop to a worker thread just to answer ``None``.

        ``publish=False`` only computes (used to prime solvers at startup): no event, no
        result checks, no control actions.

        :raises StudyError: no plugin returned a result.
        :raises PluginError: the solver raised.
        """
        async with self._model_lock:  # the model is updated, then read by the solver thread
            snapshot = self.points.snapshot()
            if self.live is not None:
                self._pending_switch_points.clear()  # the snapshot has the latest positions
                if self.live.apply(snapshot).switches:
                    self._publish_topology()
            answer = await self.host.call_first(
                "dms_run_study", in_thread=True, skip=self._study_providers.difference(self.studies.get(study, ())),
                study=study, model=self.model, snapshot=snapshot, options=dict(options or {}),
            )
        if self._pending_switch_points:
            self._apply_switch_points()
        if answer is None:
            raise StudyError(f"no plugin returned a result for study {study!r}")
        _, result = answer
        if not publish:
            return result
        self.emit(result)
        for plugin, alarms in await self.host.call("dms_check_result", result=result, model=self.model, kernel=self):
            for alarm in alarms or ():
                if not isinstance(alarm, Alarm):
                    raise PluginError(plugin, "dms_check_result", f"returned {type(alarm).__name__}, not Alarm")
                self.emit(alarm)
        for plugin, actions in await self.host.call("dms_propose_actions", result=result, snapshot=snapshot):
            for action in actions or ():
                if not isinstance(action, ControlAction):
                    raise PluginError(plugin, "dms_propose_actions", f"returned {type(action).__name__}, not ControlAction")
                self.emit(action)
                await self.execute(action.command)
        return result

    async def _run_job(self, name: str, study: str, options: Mapping[str, Any]) -> None:
        await self.run_study(study, options)

    async def execute(self, command: Command) -> CommandResult:
        """Send a command through the command path."""
        return await self.commands.execute(command)
