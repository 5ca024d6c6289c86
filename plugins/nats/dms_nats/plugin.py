"""Entry point of the ``nats`` plugin: the ``nats`` bus type, its settings and ``leitstand frontend``."""

from __future__ import annotations

from dms_hookspecs import hookimpl

from .bus import NatsBus
from .connection import SETTINGS


@hookimpl
def dms_settings_schema():
    return SETTINGS


@hookimpl
def dms_add_bus_types(registry):
    registry.add("nats", NatsBus)


@hookimpl
def dms_add_cli_commands(commands):
    from .frontend import run_cli

    parser = commands.add_parser(
        "frontend", help="run the sources of one front-end group and publish them to NATS (active/standby)"
    )
    parser.add_argument("deployment", help="deployment file (TOML), the same as the core's")
    parser.add_argument("--group", required=True, help="run the [[sources]] with this group")
    parser.add_argument("--instance", default=None, help="unique name of this process (default: group-host-pid-random)")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.set_defaults(handler=run_cli)
