"""The field simulator: a grid twin behind the protocol servers that plugins register.

Configured in the deployment file under ``[settings.simulator]``::

    [settings.simulator]
    enabled = true                 # also start inside `leitstand run` (the demo)
    model = "cigre_mv"             # default: the deployment's model (loaded separately: the twin is the "real" grid)
    speed = 900.0                  # simulated seconds per second
    period_s = 1.0
    start_hour = 6.0
    servers = [
      { name = "rtu1", type = "iec104", settings = { port = 2404, points_file = "iec104.csv" } },
    ]

``leitstand sim DEPLOYMENT.toml`` runs it alone (e.g. on another machine or for a test).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dms_hookspecs import REQUIRED, Setting, SettingsSchema, SimulatorServer
from dms_kernel.config import validate_table
from dms_kernel.errors import ConfigError, PluginError
from dms_kernel.registry import TypeRegistry

from .grid import GridTwin

__all__ = ["SETTINGS", "Simulator"]

log = logging.getLogger("leitstand.simulator")

SETTINGS = SettingsSchema(
    (
        Setting("enabled", bool, False, "start the simulator inside `leitstand run`"),
        Setting("model", str, None, "network model of the twin (default: the deployment's model)"),
        Setting("speed", float, 60.0, "simulated seconds per wall-clock second"),
        Setting("period_s", float, 1.0, "wall-clock seconds between power flows"),
        Setting("start_hour", float, 12.0, "simulated time of day at start"),
        Setting("noise", float, 0.02, "relative load noise"),
        Setting("seed", int, None, "random seed"),
        Setting("servers", list, [], "protocol servers: tables with name, type, settings"),
        Setting("control_port", int, 0, "HTTP control API on 127.0.0.1 (faults, outages); 0 = off"),
    )
)

_SERVER = SettingsSchema(
    (
        Setting("name", str, REQUIRED, "server name"),
        Setting("type", str, REQUIRED, "simulator type registered by a protocol plugin"),
        Setting("settings", dict, {}, "settings of that type"),
    )
)


class Simulator:
    """Builds the twin and its servers from validated settings; :meth:`start`/:meth:`stop` them.

    :param kernel: a prepared kernel (for its plugin host, model loading and file names).
    :param settings: validated ``[settings.simulator]``.
    """

    def __init__(self, kernel: Any, settings: Mapping[str, Any]) -> None:
        self.kernel = kernel
        self.settings = settings
        self.twin: GridTwin | None = None
        self.servers: list[SimulatorServer] = []
        self.types = TypeRegistry("simulator")
        self.control: Any = None

    async def start(self) -> None:
        kernel = self.kernel
        deployment = kernel.deployment
        location = self.settings["model"] or deployment.model
        if not location:
            raise ConfigError(deployment.path, "settings.simulator", "model", "the simulator needs a model (here or in [deployment])")
        model = await kernel.load_model(location, deployment.base_dir)
        self.twin = GridTwin(
            model,
            speed=self.settings["speed"],
            period_s=self.settings["period_s"],
            start_hour=self.settings["start_hour"],
            noise=self.settings["noise"],
            seed=self.settings["seed"],
        )
        await kernel.host.call(
            "dms_add_simulator_types",
            registry=self.types,
            before_each=lambda plugin: setattr(self.types, "current_plugin", plugin),
        )
        try:
            for index, raw in enumerate(self.settings["servers"]):
                table = f"settings.simulator.servers[{index}]"
                server = validate_table(raw, _SERVER, deployment.path, table)
                if server["type"] not in self.types:
                    known = ", ".join(self.types) or "none"
                    raise ConfigError(deployment.path, table, "type", f"unknown simulator type {server['type']!r} (registered: {known})")
                settings = validate_table(server["settings"], self.types.schema(server["type"]), deployment.path, f"{table}.settings")
                settings = _resolve_files(settings, deployment.base_dir)
                instance = self.types.get(server["type"])(server["name"], settings, self.twin)
                try:
                    await instance.start()
                except Exception as exc:  # noqa: BLE001
                    owner = self.types.owner(server["type"])
                    raise PluginError(owner, "SimulatorServer.start", f"server {server['name']!r}: {type(exc).__name__}: {exc}", kernel.host.distribution_of(owner)) from exc
                self.servers.append(instance)
                log.info("simulator server %r (%s) started", server["name"], server["type"])
        except BaseException:
            await self.stop()
            raise
        if self.settings["control_port"]:
            from .control import ControlServer

            self.control = ControlServer(self.twin, self.settings["control_port"])
            await self.control.start()
        self.twin.start()
        log.info("grid twin of %r running: %d points, speed %gx", model.name, len(self.twin.points()), self.settings["speed"])

    async def stop(self) -> None:
        if self.control is not None:
            await self.control.stop()
            self.control = None
        if self.twin is not None:
            await self.twin.stop()
        for server in reversed(self.servers):
            try:
                await server.stop()
            except Exception as exc:  # noqa: BLE001
                log.error("simulator server %r failed to stop: %s", server.name, exc)
        self.servers.clear()


def _resolve_files(settings: dict[str, Any], base: Path) -> dict[str, Any]:
    """Make ``*_file`` settings relative to the deployment file, as the deployment's model is."""
    resolved = dict(settings)
    for key, value in settings.items():
        if key.endswith("_file") and isinstance(value, str) and not Path(value).is_absolute():
            candidate = base / value
            if candidate.exists() or not Path(value).exists():
                resolved[key] = str(candidate)
    return resolved
