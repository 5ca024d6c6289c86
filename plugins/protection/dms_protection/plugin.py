"""Entry point of the ``protection`` plugin.

* ``dms_startup``: opens the settings store, saves the deployment's ``devices``, arms interlocks and
  intertrips, subscribes to :class:`~dms_hookspecs.TopologyChanged` (coordination check rerun) and
  power-flow results (currents for the disconnector interlock).
* ``dms_veto_command``: the switching interlocks (:mod:`dms_protection.interlocks`).
* ``dms_studies`` / ``dms_run_study``: study ``protection_check``; ``dms_check_result`` alarms its violations.
* ``dms_add_cli_commands``: ``leitstand protection check | plot | export | import``.

Other plugins and the HMI get the running service with :func:`service_for`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from dms_hookspecs import Setting, SettingsSchema, StudyResult, TopologyChanged, hookimpl

from .service import PLUGIN, STUDY, ProtectionService, options_from, report_alarms

__all__ = ["service_for", "settings_schema"]

log = logging.getLogger("leitstand.protection")

_services: weakref.WeakKeyDictionary[Any, ProtectionService] = weakref.WeakKeyDictionary()


def service_for(kernel: Any) -> ProtectionService:
    """The running protection service of ``kernel``.

    :raises LookupError: the plugin is not loaded in that kernel, or the kernel is not running.
    """
    try:
        return _services[kernel]
    except KeyError:
        raise LookupError("the protection plugin is not running in this kernel (not loaded, blocked, or kernel not started)") from None


def settings_schema() -> SettingsSchema:
    return SettingsSchema(
        (
            Setting("url", str, None, "SQLAlchemy database URL of the settings store (default: SQLite var/protection.db next to the deployment file)"),
            Setting("schema", str, None, "database schema (PostgreSQL only), created if missing"),
            Setting("groups", int, 2, "setting groups per device (1..n)"),
            Setting("devices", list, [], "device settings saved at startup when they differ: [{ device = \"switch_0\", kind = \"relay\", overcurrent = [...] }]"),
            Setting("cti_s", float, 0.3, "coordination time interval between an upstream and a downstream device"),
            Setting("sensitivity_margin", float, 1.5, "minimum fault current in a device's zone / its pickup"),
            Setting("fuse_ratio", float, 0.75, "downstream fuse clearing time / upstream fuse melting time, at most"),
            Setting("recloser_fuse_margin_s", float, 0.0, "recloser slow curve above the fuse's clearing curve by at least"),
            Setting("check_on_topology_change", bool, True, "rerun the coordination check after every topology change"),
            Setting("interlocks", bool, True, "veto unsafe switching (needs the deployment's model)"),
            Setting("disconnector_max_current_a", float, 1.0, "a disconnector may be opened up to this current"),
            Setting("allow_parallel", list, [], "pairs of substations whose feeders may be paralleled: [[\"S1\", \"S2\"]]"),
            Setting("allow_all_parallel", bool, False, "allow paralleling any feeders"),
            Setting("ieds", dict, {}, "IED logical device -> MMS address: { IED1LD0 = \"127.0.0.1:102\" }"),
            Setting("intertrips", list, [], "intertrip pairs: [{ trigger = \"CB1/Pos\", partner = \"CB2/Pos\", value = 1 }]"),
        )
    )


@hookimpl
def dms_settings_schema() -> SettingsSchema:
    return settings_schema()


@hookimpl
async def dms_startup(kernel: Any) -> None:
    raw = kernel.settings_for(PLUGIN)
    service = await asyncio.to_thread(ProtectionService, kernel, raw, asyncio.get_running_loop())
    try:
        saved = await asyncio.to_thread(service.load_deployment_devices)
        service.arm_intertrips()
    except BaseException:
        service.close()
        raise
    _services[kernel] = service
    bus = getattr(kernel, "bus", None)
    if bus is not None:
        bus.subscribe(f"plugin:{PLUGIN}", service.on_events, (TopologyChanged, StudyResult), kernel.deployment.kernel["default_queue_size"])
    log.info("protection: %d devices in the store (%d saved from the deployment), interlocks %s, %d intertrips",
             len(service.store.devices()), saved, "armed" if service.interlocks else "off", len(service.intertrips))


@hookimpl
def dms_shutdown(kernel: Any) -> None:
    service = _services.pop(kernel, None)
    if service is not None:
        service.close()


@hookimpl
def dms_veto_command(command, point, snapshot) -> str | None:  # noqa: ANN001
    name = command.target.name
    for service in list(_services.values()):
        interlocks = service.interlocks
        if interlocks is not None and interlocks.switch_for(name) is not None:
            return interlocks.check(name, command.value, snapshot)
    return None


@hookimpl
def dms_studies() -> list[str]:
    return [STUDY]


@hookimpl
def dms_run_study(study, model, snapshot, options) -> StudyResult | None:  # noqa: ANN001
    if study != STUDY:
        return None
    service = next((s for s in list(_services.values()) if s.model is model), None)
    if service is not None and not options.get("settings_url"):
        report = service.check_now()
    else:
        from .coordination import check_coordination
        from .store import SettingsStore

        store = SettingsStore(options.get("settings_url", "sqlite:///protection.db"), options.get("schema"))
        try:
            report = check_coordination(model, store.active(), options_from(options))
        finally:
            store.close()
    from .service import _summary

    return StudyResult(STUDY, PLUGIN, True, report.to_dict(), _summary(report))


@hookimpl
def dms_check_result(result) -> list | None:  # noqa: ANN001
    if result.study != STUDY or result.solver != PLUGIN:
        return None
    return report_alarms(result.data)


@hookimpl
def dms_add_cli_commands(commands) -> None:  # noqa: ANN001
    from .cli import add_commands

    add_commands(commands)
