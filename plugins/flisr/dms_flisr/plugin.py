"""Entry point of the ``flisr`` plugin: study ``flisr``, trip detection and switching execution.

* ``dms_studies`` -> ``["flisr"]``; ``dms_run_study("flisr", model, snapshot, options)``: fault
  location (fault passage indicators from the snapshot, option ``fault_current_ka``), isolation
  and restoration plan checked by power flow; option ``tripped`` names the tripped device (mRID
  or name), else the open protective device below which the grid is dead is taken.
* Trip detection (``dms_startup``): a ``TopologyChanged`` event with a breaker or recloser that
  opened without a command in the last ``command_window_s`` starts a FLISR run after
  ``lockout_s`` (a recloser's reclosing sequence must have ended: if it closed again meanwhile,
  nothing happens).
* ``mode = "automatic"``: the plan's steps go through the command path one after another
  (authorisation, interlocks, select-before-operate); the first step that fails stops the
  sequence and raises an alarm. ``mode = "advisory"``: the plan and its printable switching
  order are published for the operator.

Settings ``[settings.flisr]``: ``mode`` (advisory, automatic), ``v_min``/``v_max`` (pu),
``loading_max`` (%), ``lockout_s``, ``command_window_s``, ``max_splits``, ``goose`` (switch name ->
``{interface, app_id, mac, ...}``: automatic mode also publishes an IEC 61850 GOOSE trip to a switch
it opens, and a reclosing block to the tripped device while isolating, via
:class:`dms_iec61850.goose.GooseTripBlock`, before each command).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Mapping
from typing import Any

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    Command,
    CommandStatus,
    Setting,
    SettingsSchema,
    StudyResult,
    TopologyChanged,
    hookimpl,
)
from dms_kernel.model import Breaker, Measurement, Recloser, Switch

from .checks import BatchCheck
from .locate import locate, short_circuit_ka
from .restore import Plan, plan_restoration
from .sections import PROTECTIVE, SectionGraph
from .switching import switching_order

STUDY = "flisr"
MODES = ("advisory", "automatic")
log = logging.getLogger("leitstand.flisr")
_settings: dict[str, Any] = {}
_graphs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_runners: list[Any] = []


@hookimpl
def dms_settings_schema():
    return SettingsSchema(
        (
            Setting("mode", str, "advisory", "advisory: publish the plan; automatic: execute it", choices=MODES),
            Setting("v_min", float, 0.9, "lowest voltage after restoration (pu)"),
            Setting("v_max", float, 1.1, "highest voltage after restoration (pu)"),
            Setting("loading_max", float, 100.0, "thermal limit after restoration (%)"),
            Setting("lockout_s", float, 2.0, "wait after a trip for reclosing to end before planning"),
            Setting("command_window_s", float, 5.0, "an opening this soon after a command to the switch is not a trip"),
            Setting("max_splits", int, 2, "switches opened at most to split a dead part between ties"),
            Setting("trigger", bool, True, "start FLISR on detected trips"),
            Setting("goose", dict, {}, "switch name -> {interface, app_id, mac}: GOOSE trip/block fast path (automatic mode)"),
        )
    )


@hookimpl
def dms_configure(config):
    _settings.clear()
    if config is not None:
        _settings.update(config.plugin_settings.get("flisr", {}))


@hookimpl
def dms_studies():
    return [STUDY]


def graph_of(model) -> SectionGraph:
    graph = _graphs.get(model)
    if graph is None or graph.size != len(model.objects):
        graph = SectionGraph(model)
        graph.size = len(model.objects)  # type: ignore[attr-defined]
        _graphs[model] = graph
    return graph


@hookimpl
def dms_run_study(study: str, model: Any, snapshot: Any, options: Mapping[str, Any]):
    if study != STUDY:
        return None
    return run_flisr(model, snapshot, {**_settings, **options})


def run_flisr(model: Any, snapshot: Any, options: Mapping[str, Any]) -> StudyResult:
    started = time.time()
    if model is None:
        return StudyResult(STUDY, "flisr", False, {}, "flisr needs a network model: set `model` in the [deployment] table")
    graph = graph_of(model)
    state = graph.state()
    tripped = _tripped(graph, model, state, options.get("tripped"))
    if tripped is None:
        return StudyResult(STUDY, "flisr", False, {}, "no tripped breaker or recloser with a dead section below it", started, time.time())
    fpi = _indicators(model, snapshot)
    fault_ka = options.get("fault_current_ka")
    section_ka = None
    if fault_ka is not None:
        switch = model.objects[tripped]
        switch.open = False  # the short-circuit currents of the pre-fault topology
        try:
            section_ka = short_circuit_ka(graph)
        finally:
            switch.open = True
    candidates = locate(graph, tripped, state, fpi=fpi, fault_current_ka=fault_ka, section_ka=section_ka)
    if not candidates:
        return StudyResult(STUDY, "flisr", False, {"tripped": tripped}, "no section below the tripped device", started, time.time())
    faulted = candidates[0].section
    check = BatchCheck(model, v_min=float(options.get("v_min", 0.9)), v_max=float(options.get("v_max", 1.1)),
                       loading_max=float(options.get("loading_max", 100.0)))
    plan = plan_restoration(graph, faulted, tripped, state, check, max_splits=int(options.get("max_splits", 2)))
    data = plan_data(graph, model, plan, candidates, options)
    message = (f"fault below {graph.switches[tripped].name} in {graph.describe(faulted)} ({candidates[0].reason}); "
               f"{len(plan.steps)} switching steps restore {plan.restored_mw:.3f} MW ({plan.restored_customers} customers), "
               f"{plan.unrestored_mw:.3f} MW stay off; {plan.power_flows} power flows")
    return StudyResult(STUDY, "flisr", True, data, message, started, time.time())


def plan_data(graph: SectionGraph, model, plan: Plan, candidates, options: Mapping[str, Any]) -> dict[str, Any]:
    points = _switch_points(model)
    steps = [{"switch": s.switch, "name": s.name, "action": s.action, "purpose": s.purpose, "point": points.get(s.switch)} for s in plan.steps]
    return {
        "mode": options.get("mode", "advisory"),
        "tripped": plan.tripped,
        "tripped_name": graph.switches[plan.tripped].name,
        "faulted_nodes": sorted(graph.nodes[plan.faulted]),
        "faulted": graph.describe(plan.faulted),
        "candidates": [{"section": graph.describe(c.section), "score": c.score, "reason": c.reason} for c in candidates[:5]],
        "steps": steps,
        "restored_mw": plan.restored_mw,
        "unrestored_mw": plan.unrestored_mw,
        "restored_customers": plan.restored_customers,
        "unrestored_customers": plan.unrestored_customers,
        "after": {"v_min_pu": plan.final.v_min, "v_max_pu": plan.final.v_max, "loading_max_percent": plan.final.loading_max},
        "power_flows": plan.power_flows,
        "notes": list(plan.notes),
        "switching_order": switching_order(model.name, graph.switches[plan.tripped].name, graph.describe(plan.faulted), steps),
    }


def _tripped(graph: SectionGraph, model, state: Mapping[str, bool], wanted: str | None) -> str | None:
    if wanted:
        for mrid, edge in graph.switches.items():
            if wanted in (mrid, edge.name):
                return mrid
        raise ValueError(f"flisr: unknown switch {wanted!r}")
    live = graph.energised(state)
    for mrid, edge in graph.switches.items():
        if edge.protective and state[mrid] and not edge.normal_open and (edge.a in live) != (edge.b in live):
            return mrid
    return None


def _switch_points(model) -> dict[str, str]:
    return {m.power_system_resource: m.point_name for m in model.of_type(Measurement)
            if m.measurement_type == "SwitchPosition" and m.power_system_resource}


def _indicators(model, snapshot) -> dict[str, bool] | None:
    if snapshot is None:
        return None
    out = {}
    for m in model.of_type(Measurement):
        if m.measurement_type == "FaultPassageIndicator" and m.power_system_resource:
            try:
                value = snapshot.get(m.point_name).value
            except Exception:  # noqa: BLE001 - a point the database does not have
                continue
            if value == value:  # not NaN
                out[m.power_system_resource] = value >= 0.5
    return out or None


# -- trip detection and execution -------------------------------------------------------------


class Runner:
    """Watches for trips and runs (and in automatic mode executes) FLISR on the kernel."""

    def __init__(self, kernel: Any, settings: Mapping[str, Any]) -> None:
        self.kernel = kernel
        self.settings = dict(settings)
        self.commanded: dict[str, float] = {}
        self.tasks: set[asyncio.Task] = set()
        self.results: list[StudyResult] = []
        self.executions: list[dict[str, Any]] = []
        self.goose: Any = None  # dms_iec61850.goose.GooseTripBlock, with [settings.flisr] goose

    def _goose(self, name: str, action: str, on: bool = True) -> None:
        """GOOSE fast path (only for switches in ``[settings.flisr] goose``); the command path follows."""
        config = self.settings.get("goose")
        if not config or name not in config:
            return
        try:
            if self.goose is None:
                from dms_iec61850.goose import GooseTripBlock  # optional dependency, only when configured

                self.goose = GooseTripBlock(config)
            if action == "trip":
                self.goose.trip(name)
            else:
                self.goose.block(name, on)
        except Exception as exc:  # noqa: BLE001 - the command path still executes the step
            log.warning("flisr: GOOSE %s to %s failed: %s", action, name, exc)

    async def on_events(self, events) -> None:
        for event in events:
            if isinstance(event, Command):
                self.commanded[_resource_of(self.kernel.model, event.target.name)] = time.time()
            elif isinstance(event, TopologyChanged) and self.settings.get("trigger", True):
                for mrid in event.switches:
                    switch = self.kernel.model.objects.get(mrid)
                    if isinstance(switch, Breaker | Recloser) and switch.open and not switch.normal_open:
                        if time.time() - self.commanded.get(mrid, -1e9) > float(self.settings.get("command_window_s", 5.0)):
                            task = asyncio.get_running_loop().create_task(self.handle_trip(mrid))
                            self.tasks.add(task)
                            task.add_done_callback(self.tasks.discard)

    async def handle_trip(self, mrid: str) -> StudyResult | None:
        tripped_at = time.time()
        await asyncio.sleep(float(self.settings.get("lockout_s", 2.0)))
        switch = self.kernel.model.objects.get(mrid)
        if switch is None or not switch.open:
            log.info("flisr: %s reclosed within the lockout time; nothing to do", mrid)
            return None
        result = await self.kernel.run_study(STUDY, {"tripped": mrid})
        self.results.append(result)
        if result.converged and result.data.get("mode") == "automatic":
            await self.execute(result, tripped_at)
        return result

    async def execute(self, result: StudyResult, tripped_at: float) -> bool:
        done = []
        self._goose(result.data["tripped_name"], "block")  # no reclosing of the tripped device while isolating
        for step in result.data["steps"]:
            if step["action"] == "open":
                self._goose(step["name"], "trip")
            elif step["name"] == result.data["tripped_name"]:
                self._goose(step["name"], "block", False)
            if not step.get("point"):
                self._alarm(f"FLISR stopped: switch {step['name']} has no SCADA point to command", AlarmPriority.HIGH)
                return False
            command = Command(step["point"], 1.0 if step["action"] == "open" else 2.0, originator="controller:flisr",
                              reason=f"FLISR {step['purpose']}: {step['action']} {step['name']} (fault {result.data['faulted']})",
                              select_before_operate=True)
            outcome = await self.kernel.execute(command)
            done.append((step["name"], outcome.status.value))
            if outcome.status is not CommandStatus.SUCCEEDED:
                self._alarm(f"FLISR stopped at step {len(done)} ({step['action']} {step['name']}): {outcome.reason}", AlarmPriority.CRITICAL)
                self.executions.append({"ok": False, "steps": done})
                return False
        seconds = time.time() - tripped_at
        self.executions.append({"ok": True, "steps": done, "trip_to_restored_s": seconds})
        self._alarm(f"FLISR restored {result.data['restored_mw']:.3f} MW in {seconds:.1f} s after the trip of "
                    f"{result.data['tripped_name']}; fault isolated in {result.data['faulted']}", AlarmPriority.MEDIUM)
        return True

    def _alarm(self, message: str, priority: AlarmPriority) -> None:
        self.kernel.emit(Alarm(message, priority, source="flisr", category="flisr"))


def _resource_of(model, point: str) -> str:
    for m in model.of_type(Measurement):
        if m.point_name == point and m.power_system_resource:
            return m.power_system_resource
    return point


@hookimpl
def dms_startup(kernel):
    if getattr(kernel, "model", None) is None:
        return
    runner = Runner(kernel, kernel.settings_for("flisr"))
    kernel.bus.subscribe("flisr", runner.on_events, (TopologyChanged, Command), 1000)
    kernel._flisr_runner = runner  # noqa: SLF001 - for runner_for()
    _runners.append(weakref.ref(runner))


def runner_for(kernel) -> Runner:
    """The running FLISR of ``kernel`` (its results and executions)."""
    runner = getattr(kernel, "_flisr_runner", None)
    if runner is None:
        raise LookupError("the flisr plugin is not running on this kernel (no network model?)")
    return runner


@hookimpl
async def dms_shutdown(kernel):
    runner = getattr(kernel, "_flisr_runner", None)
    if runner is not None:
        for task in list(runner.tasks):
            task.cancel()
        await asyncio.gather(*runner.tasks, return_exceptions=True)
        if runner.goose is not None:
            runner.goose.close()


__all__ = ["run_flisr", "runner_for", "Runner", "PROTECTIVE", "Switch"]
