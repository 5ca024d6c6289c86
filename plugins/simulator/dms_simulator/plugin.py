"""Entry point of the ``simulator`` plugin: ``[settings.simulator]``, start inside ``leitstand run``
when enabled, and the ``leitstand sim`` command."""

from __future__ import annotations

import weakref

from dms_hookspecs import hookimpl

from .runner import SETTINGS, Simulator

_running: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@hookimpl
def dms_settings_schema():
    return SETTINGS


@hookimpl
async def dms_startup(kernel):
    settings = kernel.settings_for("simulator")
    if settings.get("enabled"):
        simulator = Simulator(kernel, settings)
        await simulator.start()
        _running[kernel] = simulator


@hookimpl
async def dms_shutdown(kernel):
    simulator = _running.pop(kernel, None)
    if simulator is not None:
        await simulator.stop()


def simulator_of(kernel) -> Simulator | None:  # noqa: ANN001
    """The simulator started inside ``kernel`` (for tests and the control API)."""
    return _running.get(kernel)


@hookimpl
def dms_add_cli_commands(commands):
    parser = commands.add_parser("sim", help="run the field simulator of a deployment")
    parser.add_argument("deployment", help="deployment file (TOML) with [settings.simulator]")
    parser.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds")
    parser.set_defaults(handler=run_simulator)


async def run_simulator(args) -> int:  # noqa: ANN001
    """``leitstand sim``: the twin and its servers alone, until Ctrl-C."""
    import asyncio
    import logging
    import signal

    from dms_kernel import Kernel, load_deployment

    kernel = Kernel(load_deployment(args.deployment))
    await kernel.prepare()
    simulator = Simulator(kernel, kernel.settings_for("simulator"))
    await simulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logging.getLogger("leitstand").info("simulator ready: %d servers — press Ctrl-C to stop", len(simulator.servers))
    try:
        await asyncio.wait_for(stop.wait(), timeout=args.duration)
    except TimeoutError:
        pass
    finally:
        await simulator.stop()
    return 0
