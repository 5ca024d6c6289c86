"""Lifecycle hooks: settings schema, configuration, startup and shutdown.

Order at ``leitstand run``: plugins are registered → ``dms_settings_schema`` (all plugins) →
the deployment file is validated → ``dms_configure`` → source/sink types registered →
``dms_startup`` → sources and jobs run → ``dms_shutdown``.

Every hook may be implemented as a plain function or as ``async def``; the kernel awaits
coroutines. Synchronous implementations of ``dms_run_study`` run in a worker thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .markers import hookspec

if TYPE_CHECKING:
    from .api import KernelAPI
    from .settings import SettingsSchema

# -------------------------------------------------------------------------
# Configuration
# -------------------------------------------------------------------------


@hookspec
def dms_settings_schema() -> SettingsSchema | None:
    """Declare the plugin-level settings this plugin accepts.

    Called once per plugin, before the deployment file is validated. The settings are
    given in the deployment file under ``[settings.<plugin name>]``; the kernel rejects
    unknown keys, wrong types and missing required keys before anything starts.

    :return: the schema, or ``None`` if the plugin takes no plugin-level settings.
    """


@hookspec(historic=True)
def dms_configure(config: Any) -> None:
    """Receive the validated deployment configuration.

    Historic: a plugin registered after configuration still receives the call at
    registration.

    :param config: the :class:`dms_kernel.config.Deployment` (name, model path, validated
        settings per plugin under ``config.plugin_settings[name]``).
    """


# -------------------------------------------------------------------------
# Startup and shutdown
# -------------------------------------------------------------------------


@hookspec
def dms_startup(kernel: KernelAPI) -> None:
    """The kernel has created its sources and sinks and is about to start them.

    An exception here aborts startup with a message naming the plugin; then every plugin
    gets ``dms_shutdown`` (also those whose ``dms_startup`` had not run yet), so shutdown
    implementations must tolerate a startup that never happened.

    :param kernel: the running kernel; keep it to emit events or execute commands later.
    """


@hookspec
def dms_shutdown(kernel: KernelAPI) -> None:
    """The kernel is stopping: sources are cancelled, sinks are flushed after this hook.

    Exceptions are logged with the plugin's name and do not stop other plugins' shutdown.

    :param kernel: the kernel that is stopping.
    """


# -------------------------------------------------------------------------
# Command line
# -------------------------------------------------------------------------


@hookspec
def dms_add_cli_commands(commands: Any) -> None:
    """Add subcommands to the ``leitstand`` command line.

    Called once when the CLI starts, before arguments are parsed. Add a parser with
    ``commands.add_parser("sim", help=...)`` and ``parser.set_defaults(handler=fn)``, where
    ``fn(args)`` is an ``async`` function returning the exit status.

    :param commands: the ``argparse`` subparsers object of ``leitstand``.
    """
