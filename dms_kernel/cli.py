"""The ``leitstand`` command line.

    leitstand run DEPLOYMENT.toml [--duration S]   run a deployment until Ctrl-C (or S seconds)
    leitstand check DEPLOYMENT.toml                validate without starting
    leitstand plugins [--json]                     list installed plugins and their hooks
    leitstand points DEPLOYMENT.toml [--json]      list the points the deployment declares
    leitstand study powerflow MODEL [--solver NAME] [--unbalanced] [--output FILE.csv]
                                                   run a study offline on a model file or example name

Errors a user can fix (configuration, plugins) print one line and exit with status 2;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
from typing import Any
import asyncio
import json
import logging
import signal
import sys
import time
import traceback
from collections.abc import Sequence

from . import __version__
from dms_hookspecs import Alarm

from .config import load_deployment
from .errors import LeitstandError
from .host import PluginHost
from .kernel import Kernel

__all__ = ["main"]

BUILTIN_COMMANDS = ("run", "check", "plugins", "points", "study")

STUDIES = {"powerflow": "power_flow", "se": "state_estimation"}
"""CLI study names → kernel study names."""

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _parser(host: PluginHost | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leitstand", description="Leitstand distribution management system")
    parser.add_argument("--version", action="version", version=f"leitstand {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run a deployment")
    run.add_argument("deployment", help="deployment file (TOML)")
    run.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")

    check = commands.add_parser("check", help="validate a deployment without starting it")
    check.add_argument("deployment", help="deployment file (TOML)")

    plugins = commands.add_parser("plugins", help="list installed plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")

    study = commands.add_parser("study", help="run a study offline on a network model")
    study.add_argument("study", choices=sorted(STUDIES), help="the study")
    study.add_argument("model", help="CIM file (.xml/.zip) or example network name (e.g. cigre_mv)")
    study.add_argument("--solver", default=None, help="solver plugin (pandapower, power-grid-model, opendss)")
    study.add_argument("--unbalanced", action="store_true", help="three-phase unbalanced calculation")
    study.add_argument("--output", default=None, metavar="FILE.csv", help="write node,phase,vm_pu,va_deg")

    points = commands.add_parser("points", help="list the points of a deployment")
    points.add_argument("deployment", help="deployment file (TOML)")
    points.add_argument("--json", action="store_true", help="machine-readable output")
    if host is not None:
        for impl in reversed(host.pm.hook.dms_add_cli_commands.get_hookimpls()):
            try:
                impl.function(commands)
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
                logging.getLogger("leitstand").error(
                    "plugin %r failed in dms_add_cli_commands: %s: %s", impl.plugin_name, type(exc).__name__, exc
                )
    return parser


def _kernel(path: str) -> Kernel:
    return Kernel(load_deployment(path))


async def _check(path: str) -> int:
    kernel = _kernel(path)
    await kernel.prepare()
    print(
        f"{path}: OK — deployment {kernel.name!r}: {len(kernel.host.plugin_names())} plugins, "
        f"{len(kernel.sources)} sources, {len(kernel.points)} points, {len(kernel.sinks)} sinks, "
        f"{len(kernel.deployment.jobs)} jobs"
    )
    return 0


async def _points(path: str, as_json: bool) -> int:
    kernel = _kernel(path)
    await kernel.prepare()
    rows = []
    for number, name in enumerate(kernel.points.names):
        spec = kernel.points.spec(number)
        rows.append(
            {
                "number": number,
                "name": name,
                "source": kernel.points.owner(number),
                "kind": spec.kind.value,
                "unit": spec.unit,
                "deadband": spec.deadband,
                "controllable": spec.controllable,
            }
        )
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        print(f"{'#':>6}  {'point':<32} {'source':<16} {'kind':<8} {'unit':<6} {'deadband':>8}  control")
        for row in rows:
            print(
                f"{row['number']:>6}  {row['name']:<32} {row['source']:<16} {row['kind']:<8} {row['unit']:<6} "
                f"{row['deadband']:>8g}  {'yes' if row['controllable'] else ''}"
            )
    return 0


async def _study(args: argparse.Namespace) -> int:
    from pathlib import Path

    kernel = Kernel()
    kernel.model = await kernel.load_model(args.model, Path.cwd())
    await kernel.prepare()
    options: dict[str, object] = {"unbalanced": args.unbalanced}
    if args.solver:
        options["solver"] = args.solver
    alarms: list[object] = []
    kernel.bus.subscribe("study-cli", _collect(alarms), (Alarm,), 100_000)
    await kernel.bus.start()
    result = await kernel.run_study(STUDIES[args.study], options)
    await kernel.bus.stop()
    data = result.data
    if args.output and "nodes" in data:
        from .model.results import write_node_csv

        write_node_csv(data, Path(args.output))
        print(f"wrote {len(data['nodes']['node'])} node-phase rows to {args.output}")
    if not result.converged:
        print(f"{args.study}: NOT converged (solver {result.solver}): {result.message}")
        return 1
    iterations = f" in {data['iterations']} iterations" if data.get("iterations") else ""
    print(f"{args.study}: converged{iterations} (solver {result.solver}, {'unbalanced' if data.get('unbalanced') else 'balanced'})")
    if "losses_mw" in data:
        print(f"total losses: {data['losses_mw']:.6f} MW, {data['losses_mvar']:.6f} Mvar")
    if "residuals" in data:
        print(result.message)
        _print_residuals(data["residuals"])
    for alarm in alarms:
        print(f"limit: {alarm.message}")  # type: ignore[attr-defined]
    return 0


def _print_residuals(table: dict[str, Any], limit: int = 10) -> None:
    """The ``limit`` largest residuals of a state-estimation result (normalised where computed, else weighted)."""
    import math

    rows = []
    for k, point in enumerate(table.get("point", ())):
        rn, rw = float(table["normalised_residual"][k]), float(table["weighted_residual"][k])
        key = rn if math.isfinite(rn) else rw
        if math.isfinite(key):
            rows.append((abs(key), k, point))
    rows.sort(reverse=True)
    if not rows:
        return
    print(f"largest residuals ({min(limit, len(rows))} of {len(rows)}):")
    print(f"  {'measurement':<32} {'measured':>12} {'estimated':>12} {'sigma':>10} {'r/sigma':>8} {'rN':>8}")
    for _, k, point in rows[:limit]:
        print(f"  {str(point)[:32]:<32} {float(table['measured'][k]):>12.5g} {float(table['estimated'][k]):>12.5g} "
              f"{float(table['sigma'][k]):>10.3g} {float(table['weighted_residual'][k]):>8.2f} {float(table['normalised_residual'][k]):>8.2f}")


def _collect(into: list[object]):  # noqa: ANN202
    async def handler(events):  # noqa: ANN001, ANN202
        into.extend(events)

    return handler


def _plugins(as_json: bool) -> int:
    host = PluginHost()
    infos = host.plugins()
    if as_json:
        print(json.dumps([{"name": i.name, "distribution": i.distribution, "version": i.version, "module": i.module, "hooks": list(i.hooks)} for i in infos], indent=2))
        return 0
    if not infos:
        print("no plugins installed (entry-point group 'dms.plugins')")
    for info in infos:
        distribution = f"{info.distribution} {info.version}" if info.distribution else "(not from a distribution)"
        print(f"{info.name:<20} {distribution:<32} {', '.join(info.hooks)}")
    return 0


async def _run(path: str, duration: float | None) -> int:
    log = logging.getLogger("leitstand")
    kernel = _kernel(path)
    started = time.monotonic()
    await kernel.prepare()
    log.info(
        "deployment %r: %d plugins (%s), %d sources, %d points, %d sinks, %d jobs",
        kernel.name, len(kernel.host.plugin_names()), ", ".join(kernel.host.plugin_names()),
        len(kernel.sources), len(kernel.points), len(kernel.sinks), len(kernel.deployment.jobs),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with kernel:
        log.info("ready in %.1f s — press Ctrl-C to stop", time.monotonic() - started)
        try:
            await asyncio.wait_for(stop.wait(), timeout=duration)
        except TimeoutError:
            pass
        log.info("stopping")
    stats = kernel.bus.stats()
    dropped = sum(s.dropped for s in stats.values())
    log.info("stopped: %d point updates received, %d events dropped", kernel.counters["updates"], dropped)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        host: PluginHost | None = PluginHost()
    except LeitstandError as exc:
        host = None  # built-in commands still work; `leitstand plugins` reports the error
        command = next((a for a in arguments if not a.startswith("-")), None)
        if command is not None and command not in BUILTIN_COMMANDS:
            print(f"leitstand: error: {exc}", file=sys.stderr)  # the plugin that would add this command is broken
            return EXIT_USER_ERROR
    args = _parser(host).parse_args(arguments)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("pandapower", "numba", "asyncua"):  # library chatter (e.g. "Failed to import plotly")
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        if args.command == "plugins":
            return _plugins(args.json)
        if args.command == "check":
            return asyncio.run(_check(args.deployment))
        if args.command == "points":
            return asyncio.run(_points(args.deployment, args.json))
        if args.command == "study":
            return asyncio.run(_study(args))
        if hasattr(args, "handler"):
            return asyncio.run(args.handler(args))
        return asyncio.run(_run(args.deployment, args.duration))
    except LeitstandError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"leitstand: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - an internal error still gets one line
        if args.debug:
            traceback.print_exc()
        print(f"leitstand: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR


if __name__ == "__main__":
    sys.exit(main())
