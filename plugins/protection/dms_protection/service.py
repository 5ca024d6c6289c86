"""The protection service of one running kernel: settings store, coordination check (on demand and
after every topology change), plots, interlocks, intertrips and distribution to IEDs."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from dms_hookspecs import Alarm, AlarmPriority, AuditEntry, Command, Event, StudyResult, TopologyChanged

from dms_kernel.model import ConnectivityNode

from .coordination import CoordinationOptions, CoordinationReport, check_coordination
from .interlocks import OPEN, CrewWork, InterlockRules, Interlocks
from .plot import chain_for, plot_chain
from .settings import DeviceSettings
from .store import SettingsStore

__all__ = ["ProtectionService", "report_alarms", "options_from"]

log = logging.getLogger("leitstand.protection")

PLUGIN = "protection"
STUDY = "protection_check"


def options_from(raw: Mapping[str, Any]) -> CoordinationOptions:
    return CoordinationOptions(
        cti_s=float(raw.get("cti_s", 0.3)),
        sensitivity_margin=float(raw.get("sensitivity_margin", 1.5)),
        fuse_ratio=float(raw.get("fuse_ratio", 0.75)),
        recloser_fuse_margin_s=float(raw.get("recloser_fuse_margin_s", 0.0)),
    )


def report_alarms(report: CoordinationReport | Mapping[str, Any]) -> list[Alarm]:
    """One alarm per violation (category ``protection-coordination``)."""
    violations = report.violations if isinstance(report, CoordinationReport) else report.get("violations", ())
    alarms = []
    for v in violations:
        message = v.message if not isinstance(v, Mapping) else v["message"]
        alarms.append(Alarm(message, AlarmPriority.MEDIUM, source=PLUGIN, category="protection-coordination"))
    return alarms


async def _once_more(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an MMS exchange in a worker thread; a lost connection is retried once on a new one
    (the whole exchange: SGCB edit sessions do not survive a reconnect)."""
    from .mms import MmsError

    try:
        return await asyncio.to_thread(function, *args, **kwargs)
    except MmsError as exc:
        if "IedClientError 3" not in str(exc):  # IED_ERROR_CONNECTION_LOST
            raise
        log.warning("IEC 61850 connection lost (%s); retrying once", exc)
        await asyncio.sleep(0.2)
        return await asyncio.to_thread(function, *args, **kwargs)


class ProtectionService:
    """Created by the plugin at ``dms_startup``; get it with :func:`dms_protection.plugin.service_for`."""

    def __init__(self, kernel: Any, raw: Mapping[str, Any], loop: asyncio.AbstractEventLoop) -> None:
        self.kernel = kernel
        self.raw = raw
        self.loop = loop
        self.emit = kernel.emit  # thread-safe
        self.model = getattr(kernel, "model", None)
        self.options = options_from(raw)
        url = raw.get("url")
        if not url:
            folder = Path(kernel.deployment.base_dir) / "var"
            folder.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{folder / 'protection.db'}"
        self.store = SettingsStore(url, raw.get("schema"), emit=self.emit, groups=int(raw.get("groups", 2)))
        self.last_report: CoordinationReport | None = None
        self._branch_currents: dict[str, float] = {}
        self._check_task: asyncio.Task | None = None
        self._tasks: set[asyncio.Task] = set()
        self._intertrip_last: dict[str, float] = {}
        self.intertrips = _intertrips(raw.get("intertrips", []))
        self.interlocks: Interlocks | None = None
        if self.model is not None and raw.get("interlocks", True):
            self.interlocks = Interlocks(self.model, InterlockRules.from_settings(raw), crew_work=self._crew_work,
                                         branch_currents=lambda: self._branch_currents)

    # -- settings from the deployment file --------------------------------------------------

    def load_deployment_devices(self) -> int:
        """Save the ``devices`` of ``[settings.protection]`` where they differ from the stored ones."""
        saved = 0
        for table in self.raw.get("devices", []):
            group = int(table.get("group", 1))
            data = {k: v for k, v in table.items() if k != "group"}
            settings = DeviceSettings.from_dict(data)
            try:
                current = self.store.get(settings.device, group).settings
            except LookupError:
                current = None
            if current != settings:
                self.store.save(settings, group=group, user="deployment", reason="settings from the deployment file")
                saved += 1
        return saved

    # -- coordination -------------------------------------------------------------------------

    def check_now(self) -> CoordinationReport:
        """Run the selectivity check on the model as it is now (blocking; call in a thread)."""
        if self.model is None:
            raise LookupError("the deployment has no network model: no coordination check")
        report = check_coordination(self.model, self.store.active(), self.options)
        self.last_report = report
        return report

    async def check(self, *, publish: bool = True) -> CoordinationReport:
        started = time.time()
        report = await asyncio.to_thread(self.check_now)
        if publish:
            self.kernel.emit(StudyResult(STUDY, PLUGIN, True, report.to_dict(), _summary(report), started=started))
            for alarm in report_alarms(report):
                self.kernel.emit(alarm)
        return report

    def _schedule_check(self) -> None:
        if self._check_task is not None and not self._check_task.done():
            return  # a check is running; it reads the model after this change anyway
        self._check_task = self.loop.create_task(self._checked())

    async def _checked(self) -> None:
        try:
            await asyncio.sleep(0)  # let the switching burst settle
            report = await self.check()
            log.info("protection check after topology change: %s", _summary(report))
        except Exception:  # noqa: BLE001 - a failing automatic check must not stop the kernel
            log.exception("protection check after a topology change failed")
            self.kernel.emit(Alarm("protection coordination check after a topology change failed (see log)", AlarmPriority.MEDIUM,
                                   source=PLUGIN, category="study-failure"))

    async def on_events(self, events: Sequence[Event]) -> None:
        for event in events:
            if isinstance(event, TopologyChanged) and self.raw.get("check_on_topology_change", True) and self.model is not None:
                self._schedule_check()
            elif isinstance(event, StudyResult) and event.study == "power_flow" and event.converged:
                self._branch_currents = _branch_currents(event.data)

    # -- plots ---------------------------------------------------------------------------------

    def plot(self, *, node: str | None = None, devices: Sequence[str] | None = None, path: str | Path | None = None,
             fmt: str | None = None) -> bytes:
        """Time-current plot of the devices protecting ``node`` (or of ``devices``); PNG or SVG bytes (for the HMI)."""
        return plot_devices(self.model, self.store.active(), node=node, devices=devices, path=path, fmt=fmt,
                            report=self.last_report, options=self.options)

    # -- distribution to IEDs ---------------------------------------------------------------------

    def _address(self, ld: str, host: str | None, port: int | None) -> tuple[str, int]:
        if host is not None and port is not None:
            return host, port
        configured = self.raw.get("ieds", {}).get(ld)
        if not configured:
            raise LookupError(f"no address for IED logical device {ld!r} (add it to [settings.protection] ieds)")
        address, _, number = str(configured).rpartition(":")
        return address, int(number)

    async def distribute(self, device: str, *, group: int | None = None, activate: bool = True,
                         host: str | None = None, port: int | None = None, user: str = "protection"):
        """Write the stored settings of ``device`` (``group``: default its active group) to its IED over MMS,
        confirm, activate, read back; a mismatch raises an ``Alarm`` (category ``protection-settings``)."""
        from .mms import distribute

        group = self.store.active_group(device) if group is None else group
        settings = self.store.get(device, group).settings
        address = self._address(settings.ied or "", host, port)
        result = await _once_more(distribute, settings, *address, group=group, activate=activate)
        self.kernel.emit(AuditEntry(actor=user, action="protection.settings.distribute", subject=device,
                                    detail=f"group {group} to {settings.ied} at {address[0]}:{address[1]}"
                                           f"{' (activated)' if activate else ''}: {'verified' if result.ok else 'MISMATCH'}"))
        self._alarm_mismatch(device, result.mismatches)
        return result

    async def verify(self, device: str, *, group: int | None = None, host: str | None = None, port: int | None = None) -> tuple[str, ...]:
        """Read one group back from the IED and compare it with the store; mismatches are alarmed and returned."""
        import math as _math

        from .mms import read_group, setting_values

        group = self.store.active_group(device) if group is None else group
        settings = self.store.get(device, group).settings
        values = setting_values(settings)
        address = self._address(settings.ied or "", host, port)
        read = await _once_more(read_group, *address, settings.ied, group, {r: k for r, (k, _) in values.items()})
        mismatches = tuple(f"{settings.ied}/{ref}: stored {value:g}, IED has {read[ref]:g}"
                           for ref, (_, value) in values.items() if not _math.isclose(value, read[ref], rel_tol=1e-3, abs_tol=1e-3))
        self._alarm_mismatch(device, mismatches)
        return mismatches

    def _alarm_mismatch(self, device: str, mismatches: Sequence[str]) -> None:
        if mismatches:
            self.kernel.emit(Alarm(f"protection settings of {device} on the IED differ from the settings store: " + "; ".join(mismatches),
                                   AlarmPriority.HIGH, source=PLUGIN, category="protection-settings"))

    # -- work orders ---------------------------------------------------------------------------

    def _crew_work(self) -> list[CrewWork]:
        try:
            from dms_workorders import OrderState
            from dms_workorders.plugin import service_for
        except ImportError:
            return []
        try:
            service = service_for(self.kernel)
        except LookupError:
            return []
        work = []
        for order in service.orders(state=OrderState.ON_SITE):
            incident = service.incident(order.incident_id)
            if not incident.element:
                continue
            released = any(n.text.strip().lower().startswith("released") for n in service.notes(order=order.id))
            work.append(CrewWork(order.id, order.crew, incident.element, released))
        return work

    # -- intertrips ----------------------------------------------------------------------------

    def arm_intertrips(self) -> None:
        points = self.kernel.points
        known = set(points.names)
        for trigger, _partner, _value in self.intertrips:
            if trigger not in known:
                raise ValueError(f"[settings.protection] intertrips: trigger point {trigger!r} is not declared by any source")
        if self.intertrips:
            numbers = points.numbers([t for t, _, _ in self.intertrips])
            points.subscribe(numbers, self._on_trigger)

    def _on_trigger(self, changed) -> None:  # noqa: ANN001
        points = self.kernel.points
        for number in changed:
            measurement = points.read(int(number))
            name = measurement.point.name
            previous = self._intertrip_last.get(name)
            self._intertrip_last[name] = measurement.value
            for trigger, partner, value in self.intertrips:
                if trigger == name and measurement.value == value and previous != value:
                    task = self.loop.create_task(self._intertrip(trigger, partner))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)

    async def _intertrip(self, trigger: str, partner: str) -> None:
        command = Command(partner, OPEN, originator=f"controller:{PLUGIN}", reason=f"intertrip from {trigger}")
        result = await self.kernel.execute(command)
        if not result.ok:
            self.kernel.emit(Alarm(f"intertrip from {trigger} to {partner} failed: {result.status.value}: {result.reason}",
                                   AlarmPriority.HIGH, source=PLUGIN, category="protection"))

    def close(self) -> None:
        for task in (*self._tasks, self._check_task):
            if task is not None:
                task.cancel()
        self.store.close()


def plot_devices(model, settings: Mapping[str, DeviceSettings], *, node: str | None = None, devices: Sequence[str] | None = None,  # noqa: ANN001
                 path: str | Path | None = None, fmt: str | None = None, report: CoordinationReport | None = None,
                 options: CoordinationOptions | None = None) -> bytes:
    """Plot the chain protecting ``node`` (by mRID or name) or the given devices, currents at the first device's voltage."""
    if devices is None:
        if node is None:
            raise ValueError("give a node or devices to plot")
        if report is None:
            report = check_coordination(model, settings, options)
        node_id = node if node in model.objects else model.by_name(node, ConnectivityNode).mrid
        devices = chain_for(report, node_id)
        if not devices:
            raise LookupError(f"no protective device protects node {node!r}")
    missing = [d for d in devices if d not in settings]
    if missing:
        raise LookupError(f"no settings stored for device(s) {', '.join(missing)}")
    kv = {}
    for device in devices:
        kv[device] = model.nominal_kv(model.objects[device]) if device in model.objects else None
        if not kv[device] and device in model.objects:
            for n in model.nodes_of(device):
                obj = model.objects.get(n)
                container = model.objects.get(obj.container) if obj is not None and obj.container else None
                kv[device] = model.nominal_kv(container) if container is not None else None
                if kv[device]:
                    break
    reference = kv.get(devices[0]) or 1.0
    scale = {d: (reference / kv[d]) if kv.get(d) else 1.0 for d in devices}
    names = {d: (model.objects[d].name or d) if d in model.objects else d for d in devices}
    faults = {}
    if report is not None and node is not None:
        node_id = node if node in model.objects else model.by_name(node, ConnectivityNode).mrid
        currents = report.currents
        ratio = currents.vn_kv.get(node_id, reference) / reference
        faults = {f"Ik max {names.get(node_id, node)}": currents.maximum(node_id) * 1000 * ratio,
                  f"Ik min {names.get(node_id, node)}": currents.minimum(node_id)[0] * 1000 * ratio}
    return plot_chain([settings[d] for d in devices], path, names=names, scale=scale, fault_currents_a=faults,
                      title=f"Time-current coordination ({reference:g} kV)", fmt=fmt)


def _summary(report: CoordinationReport) -> str:
    if report.ok:
        return f"{len(report.pairs)} device pairs coordinated, {len(report.devices)} devices sensitive"
    return f"{len(report.violations)} violations in {len(report.pairs)} device pairs: " + "; ".join(v.message for v in report.violations[:3])


def _branch_currents(data: Mapping[str, Any]) -> dict[str, float]:
    branches = data.get("branches") or {}
    elements, currents = branches.get("element", ()), branches.get("i_ka", ())
    found: dict[str, float] = {}
    for element, i_ka in zip(list(elements), list(currents), strict=False):
        value = float(i_ka) * 1000.0
        if math.isfinite(value):
            found[element] = max(found.get(element, 0.0), value)
    return found


def _intertrips(raw: Sequence[Any]) -> list[tuple[str, str, float]]:
    pairs = []
    for number, table in enumerate(raw, start=1):
        if not isinstance(table, Mapping) or not {"trigger", "partner"} <= set(table):
            raise ValueError(f"[settings.protection] intertrips[{number}]: expected {{ trigger = \"point\", partner = \"point\" }}, got {table!r}")
        pairs.append((str(table["trigger"]), str(table["partner"]), float(table.get("value", OPEN))))
    return pairs
