"""Entry point of the ``workorders`` plugin: the workflow service per kernel, fed by the bus.

At ``dms_startup`` the plugin opens the database, adds the crews of the deployment file and
subscribes to the kernel's bus for :class:`~dms_hookspecs.Alarm` and
:class:`~dms_hookspecs.TopologyChanged` events. Other plugins and the HMI get the service
with :func:`service_for`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
import logging
import weakref
from collections.abc import Mapping
from typing import Any

from dms_hookspecs import Alarm, AlarmPriority, AuditEntry, Event, Setting, SettingsSchema, TopologyChanged, hookimpl

from .geo import parse_clock
from .records import Crew
from .service import AlarmRules, Workorders

__all__ = ["service_for", "settings_schema", "rules_from", "crews_from"]

log = logging.getLogger("leitstand.workorders")

PLUGIN = "workorders"

_services: weakref.WeakKeyDictionary[Any, Workorders] = weakref.WeakKeyDictionary()

_PRIORITIES = {"critical": AlarmPriority.CRITICAL, "high": AlarmPriority.HIGH, "medium": AlarmPriority.MEDIUM, "low": AlarmPriority.LOW, "none": None}


def service_for(kernel: Any) -> Workorders:
    """The running workflow service of ``kernel`` (between ``dms_startup`` and ``dms_shutdown``).

    :raises LookupError: the plugin is not loaded in that kernel, or the kernel is not running.
    """
    try:
        return _services[kernel]
    except KeyError:
        raise LookupError("the workorders plugin is not running in this kernel (not loaded, blocked, or kernel not started)") from None


def settings_schema() -> SettingsSchema:
    return SettingsSchema(
        (
            Setting("url", str, None, "SQLAlchemy database URL (default: SQLite var/workorders.db next to the deployment file)"),
            Setting("schema", str, None, "database schema for the tables (PostgreSQL only), created if missing"),
            Setting("timezone", str, "UTC", "IANA time zone of crew shift times, e.g. Europe/Berlin"),
            Setting("alarm_categories", list, ["protection"], "alarm categories that always open an incident"),
            Setting("alarm_priority", str, "critical", "alarms this urgent or more open an incident", choices=tuple(_PRIORITIES)),
            Setting("orders_from_alarms", bool, True, "open a work order (state new) for each incident from an alarm"),
            Setting("auto_assign", bool, False, "assign those orders to the nearest qualified crew on shift at once"),
            Setting("skills_by_category", dict, {}, 'skills an order from an alarm needs, per category: { protection = ["mv"] }'),
            Setting("crews", list, [], 'crews: [{ name = "north", skills = ["mv"], shift_start = "06:00", shift_end = "14:00", lat = 52.5, lon = 13.4 }]'),
            Setting("outages_from_topology", bool, True, "record outages of de-energised consumers from topology changes (needs a model)"),
            Setting("customers_per_load", int, 1, "customers of an energy consumer whose customerCount is not set"),
            Setting("customers_served", int, 0, "total customers served (N_T) for SAIDI/SAIFI; 0: counted from the model"),
            Setting("momentary_limit_s", float, 300.0, "interruptions this long or shorter are momentary (IEEE 1366: 5 min)"),
        )
    )


@hookimpl
def dms_settings_schema() -> SettingsSchema:
    return settings_schema()


def rules_from(raw: Mapping[str, Any]) -> AlarmRules:
    """:class:`AlarmRules` from the validated ``[settings.workorders]`` table."""
    categories = raw.get("alarm_categories", ["protection"])
    if not all(isinstance(c, str) for c in categories):
        raise ValueError(f"[settings.workorders] alarm_categories: expected a list of category names, got {categories!r}")
    skills: dict[str, frozenset[str]] = {}
    for category, names in raw.get("skills_by_category", {}).items():
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"[settings.workorders] skills_by_category.{category}: expected a list of skills, got {names!r}")
        skills[category] = frozenset(names)
    return AlarmRules(
        categories=categories,
        priority=_PRIORITIES[raw.get("alarm_priority", "critical")],
        create_orders=raw.get("orders_from_alarms", True),
        auto_assign=raw.get("auto_assign", False),
        skills_by_category=skills,
    )


def crews_from(raw: Mapping[str, Any]) -> list[Crew]:
    """Crews from the ``crews`` list of ``[settings.workorders]``.

    :raises ValueError: naming the crew (by position) and the key.
    """
    crews = []
    allowed = {"name", "skills", "shift_start", "shift_end", "lat", "lon"}
    for number, table in enumerate(raw.get("crews", []), start=1):
        where = f"[settings.workorders] crews[{number}]"
        if not isinstance(table, dict):
            raise ValueError(f"{where}: expected a table, got {table!r}")
        unknown = set(table) - allowed
        if unknown:
            raise ValueError(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: {', '.join(sorted(allowed))})")
        name = table.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{where}: key 'name' is required")
        skills = table.get("skills", [])
        if isinstance(skills, str):
            skills = [skills]
        if not isinstance(skills, list) or not all(isinstance(s, str) for s in skills):
            raise ValueError(f"{where} ({name}): key 'skills': expected a list of skills, got {skills!r}")
        for key in ("shift_start", "shift_end"):
            parse_clock(table.get(key, "00:00"))
        lat, lon = table.get("lat"), table.get("lon")
        if (lat is None) != (lon is None) or not all(v is None or isinstance(v, int | float) for v in (lat, lon)):
            raise ValueError(f"{where} ({name}): give both 'lat' and 'lon' as numbers, or neither")
        if lat is not None and not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise ValueError(f"{where} ({name}): position {lat}, {lon} is not a latitude/longitude in degrees")
        crews.append(Crew(name, skills, table.get("shift_start", "00:00"), table.get("shift_end", "00:00"), lat, lon))
    names = [c.name for c in crews]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"[settings.workorders] crews: name {duplicates[0]!r} is used twice")
    return crews


def default_url(kernel: Any, file: str) -> str:
    """``sqlite:///<deployment dir>/var/<file>`` (the directory is created)."""
    folder = Path(kernel.deployment.base_dir) / "var"
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / file}"


@hookimpl
async def dms_startup(kernel: Any) -> None:
    raw = kernel.settings_for(PLUGIN)
    rules = rules_from(raw)
    crews = crews_from(raw)
    emit = kernel.emit  # thread-safe: the service's database work runs in worker threads
    startup_entries: list[Event] = []
    options = {
        "emit": startup_entries.append,  # sinks subscribe after dms_startup: held until kernel.start
        "model": getattr(kernel, "model", None),
        "timezone": raw.get("timezone", "UTC"),
        "customers_per_load": raw.get("customers_per_load", 1),
        "customers_served": raw.get("customers_served", 0),
        "momentary_limit_s": raw.get("momentary_limit_s", 300.0),
        "rules": rules,
    }
    url = raw.get("url") or default_url(kernel, "workorders.db")
    service = await asyncio.to_thread(Workorders.open, url, raw.get("schema"), **options)
    try:
        for crew in crews:
            await asyncio.to_thread(service.add_crew, crew, user="deployment")
    except BaseException:
        service.close()
        raise
    service.emit = emit
    _services[kernel] = service
    wanted: tuple[type, ...] = (Alarm, TopologyChanged) if raw.get("outages_from_topology", True) else (Alarm,)

    async def deliver(events):
        if startup_entries and any(isinstance(e, AuditEntry) and e.action == "kernel.start" for e in events):
            for entry in startup_entries:
                kernel.emit(entry)
            startup_entries.clear()
        mine = [e for e in events if isinstance(e, wanted)]
        if mine:
            await asyncio.to_thread(service.handle, mine)

    bus = getattr(kernel, "bus", None)
    if bus is None:
        log.warning("kernel %r has no event bus: incidents are not opened from alarms", kernel.name)
        for entry in startup_entries:
            kernel.emit(entry)
    else:
        bus.subscribe(f"plugin:{PLUGIN}", deliver, (*wanted, AuditEntry), kernel.deployment.kernel["default_queue_size"])
    log.info("workorders: %d crews; database %s", len(crews), service.engine.url.render_as_string(hide_password=True))


@hookimpl
def dms_shutdown(kernel: Any) -> None:
    service = _services.pop(kernel, None)
    if service is not None:
        # events still queued on the bus are delivered after this hook: the engine reconnects
        # for them; dispose only releases the pooled connections
        service.close()
