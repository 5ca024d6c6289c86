"""Deployment file (TOML): parsing and validation.

A deployment declares the network model, the plugins to load, plugin-level settings, the
source and sink instances and the cyclic jobs::

    [deployment]
    name = "Minimal demo"
    model = "grid.xml"                # optional, relative to this file

    [plugins]
    disable = ["console"]             # or: enable = [...] to load only these

    [settings.my_plugin]              # checked against the plugin's dms_settings_schema
    threshold = 3

    [kernel]
    bus = "inprocess"                 # or a bus type a plugin registers, e.g. "nats"

    [[sources]]
    name = "rtu1"
    type = "random_walk"              # a type registered through dms_add_source_types
    settings = { points = 100, period_s = 0.5 }
    group = "north"                   # optional: run by `leitstand frontend --group north`

    [[sinks]]
    name = "historian"
    type = "sql"
    queue_size = 10000

    [[jobs]]
    study = "power_flow"
    period_s = 1.0

Validation happens in two passes: :func:`load_deployment` checks the structure; then, with
the plugins loaded, the kernel checks each settings table against the schema its plugin or
type declares (:func:`validate_table`) and passes the result to ``dms_configure``. Every error is a :class:`ConfigError` naming file, table and key.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from dms_hookspecs import REQUIRED, Setting, SettingsSchema

from .errors import ConfigError

__all__ = [
    "Deployment",
    "InstanceConfig",
    "JobConfig",
    "load_deployment",
    "parse_deployment",
    "validate_table",
]

_TOP_LEVEL = SettingsSchema(
    (
        Setting("deployment", dict, REQUIRED, "name and model of the deployment"),
        Setting("plugins", dict, {}, "which plugins to load"),
        Setting("settings", dict, {}, "plugin-level settings, one table per plugin"),
        Setting("kernel", dict, {}, "kernel tuning"),
        Setting("sources", list, [], "source instances"),
        Setting("sinks", list, [], "sink instances"),
        Setting("jobs", list, [], "cyclic studies"),
    )
)
_DEPLOYMENT = SettingsSchema(
    (
        Setting("name", str, REQUIRED, "name shown to operators"),
        Setting("model", str, None, "network model: file relative to the deployment file, or an example name"),
        Setting("description", str, "", "free text"),
        Setting("standard_measurements", bool, False, "add the usual DSO measurements (and smart meters) to a model that has none"),
    )
)
_PLUGINS = SettingsSchema(
    (
        Setting("enable", list, None, "load only these entry-point plugins"),
        Setting("disable", list, [], "do not load these plugins"),
    )
)
_KERNEL = SettingsSchema(
    (
        Setting("point_capacity", int, 1024, "initial point database size (grows as needed)"),
        Setting("default_queue_size", int, 10000, "events a sink may have queued before drops"),
        Setting("bus", str, "inprocess", "event bus: 'inprocess', or a bus type registered by a plugin (dms_add_bus_types), e.g. 'nats'"),
    )
)
_INSTANCE = SettingsSchema(
    (
        Setting("name", str, REQUIRED, "instance name, unique per kind"),
        Setting("type", str, REQUIRED, "registered type name"),
        Setting("settings", dict, {}, "settings for the type"),
        Setting("queue_size", int, None, "sinks only: bounded queue length"),
        Setting("enabled", bool, True, "false to keep the table but not start it"),
        Setting("group", str, None, "sources only: the front-end group that runs this source (scale-out, docs/scale-out.md)"),
    )
)
_JOB = SettingsSchema(
    (
        Setting("study", str, REQUIRED, "study name, provided by a solver plugin"),
        Setting("period_s", float, REQUIRED, "period in seconds"),
        Setting("name", str, None, "job name (default: the study)"),
        Setting("options", dict, {}, "passed to dms_run_study"),
        Setting("enabled", bool, True, "false to keep the table but not schedule it"),
    )
)


@attrs.frozen
class InstanceConfig:
    """One ``[[sources]]`` or ``[[sinks]]`` table."""

    name: str
    type: str
    settings: Mapping[str, Any]
    table: str
    queue_size: int | None = None
    group: str | None = None
    """Sources only: the front-end group that runs this source when the bus is networked."""


@attrs.frozen
class JobConfig:
    """One ``[[jobs]]`` table: a study run every ``period_s`` seconds."""

    name: str
    study: str
    period_s: float
    options: Mapping[str, Any]
    table: str


@attrs.frozen
class Deployment:
    """A structurally valid deployment file.

    :param path: the file (``"<string>"`` when parsed from text).
    :param name: deployment name.
    :param model: the ``model`` key: a file path or a name a model plugin knows (``cigre_mv``).
    :param base_dir: directory of the deployment file; relative model paths start here.
    :param standard_measurements: equip a model without measurements with the usual DSO set
        (:func:`dms_kernel.model.scada.add_scada_measurements`).
    :param plugin_settings: settings per plugin: raw after parsing; validated, with defaults,
        in the deployment the kernel passes to ``dms_configure``.
    """

    path: str
    name: str
    description: str
    model: str | None
    base_dir: Path
    standard_measurements: bool
    enable: tuple[str, ...] | None
    disable: tuple[str, ...]
    kernel: Mapping[str, Any]
    plugin_settings: Mapping[str, Mapping[str, Any]]
    sources: tuple[InstanceConfig, ...]
    sinks: tuple[InstanceConfig, ...]
    jobs: tuple[JobConfig, ...]


def _type_name(expected: type) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", list: "array", dict: "table"}[expected]


def _matches(value: Any, expected: type) -> bool:
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def validate_table(data: Any, schema: SettingsSchema, file: str, table: str) -> dict[str, Any]:
    """Check one TOML table against a schema and fill defaults.

    :raises ConfigError: unknown key, wrong type, value not among choices, missing required key.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(file, table, None, f"must be a table, not {type(data).__name__}")
    declared = {setting.name: setting for setting in schema}
    result: dict[str, Any] = {}
    for key, value in data.items():
        setting = declared.get(key)
        if setting is None:
            if schema.allow_extra:
                result[key] = value
                continue
            allowed = ", ".join(sorted(declared)) or "none"
            raise ConfigError(file, table, key, f"unknown key (allowed: {allowed})")
        if not _matches(value, setting.type):
            raise ConfigError(
                file, table, key, f"expected {_type_name(setting.type)}, got {type(value).__name__} {value!r}"
            )
        if setting.choices is not None and value not in setting.choices:
            raise ConfigError(file, table, key, f"must be one of {list(setting.choices)}, got {value!r}")
        result[key] = float(value) if setting.type is float else value
    for setting in schema:
        if setting.name not in result:
            if setting.required:
                raise ConfigError(file, table, setting.name, "missing required key")
            result[setting.name] = setting.default
    return result


def _instances(items: list[Any], kind: str, file: str) -> tuple[InstanceConfig, ...]:
    instances = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        table = f"{kind}[{index}]"
        raw = validate_table(item, _INSTANCE, file, table)
        if raw["name"] in seen:
            raise ConfigError(file, table, "name", f"duplicate {kind[:-1]} name {raw['name']!r}")
        seen.add(raw["name"])
        if kind == "sources" and raw["queue_size"] is not None:
            raise ConfigError(file, table, "queue_size", "only sinks have a queue")
        if kind != "sources" and raw["group"] is not None:
            raise ConfigError(file, table, "group", "only sources run in front-end groups")
        if raw["group"] is not None and not raw["group"]:
            raise ConfigError(file, table, "group", "must not be empty")
        if not raw["enabled"]:
            continue
        instances.append(
            InstanceConfig(raw["name"], raw["type"], raw["settings"], f"{table}.settings", raw["queue_size"], raw["group"])
        )
    return tuple(instances)


def _jobs(items: list[Any], file: str) -> tuple[JobConfig, ...]:
    jobs = []
    for index, item in enumerate(items):
        table = f"jobs[{index}]"
        raw = validate_table(item, _JOB, file, table)
        if raw["period_s"] <= 0:
            raise ConfigError(file, table, "period_s", f"must be positive, got {raw['period_s']}")
        if raw["enabled"]:
            jobs.append(JobConfig(raw["name"] or raw["study"], raw["study"], raw["period_s"], raw["options"], table))
    return tuple(jobs)


def _string_list(value: Any, file: str, key: str) -> tuple[str, ...]:
    if not all(isinstance(item, str) for item in value):
        raise ConfigError(file, "plugins", key, "must be an array of plugin names")
    return tuple(value)


def parse_deployment(data: Mapping[str, Any], file: str = "<string>", base: Path | None = None) -> Deployment:
    """Check the structure of a parsed deployment file."""
    top = validate_table(data, _TOP_LEVEL, file, "")
    deployment = validate_table(top["deployment"], _DEPLOYMENT, file, "deployment")
    plugins = validate_table(top["plugins"], _PLUGINS, file, "plugins")
    kernel = validate_table(top["kernel"], _KERNEL, file, "kernel")
    for plugin, settings in top["settings"].items():
        if not isinstance(settings, Mapping):
            raise ConfigError(file, f"settings.{plugin}", None, "must be a table")
    return Deployment(
        path=file,
        name=deployment["name"],
        description=deployment["description"],
        model=deployment["model"] or None,
        base_dir=(base or Path.cwd()).resolve(),
        standard_measurements=deployment["standard_measurements"],
        enable=_string_list(plugins["enable"], file, "enable") if plugins["enable"] is not None else None,
        disable=_string_list(plugins["disable"], file, "disable"),
        kernel=kernel,
        plugin_settings=dict(top["settings"]),
        sources=_instances(top["sources"], "sources", file),
        sinks=_instances(top["sinks"], "sinks", file),
        jobs=_jobs(top["jobs"], file),
    )


def load_deployment(path: str | Path) -> Deployment:
    """Read and structurally validate a deployment file.

    :raises ConfigError: file missing, TOML syntax error (with line and column), or
        invalid structure.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), "", None, f"cannot read: {exc.strerror or exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", None, f"invalid TOML: {exc}") from exc
    return parse_deployment(data, str(path), path.parent)
