"""Errors the kernel reports to operators: each names its culprit (plugin, hook, file, key, point)."""

from __future__ import annotations

__all__ = [
    "LeitstandError",
    "PluginError",
    "ConfigError",
    "UnknownPointError",
    "DuplicatePointError",
    "StudyError",
]


class LeitstandError(Exception):
    """Base of all errors the CLI prints as one message instead of a traceback."""


class PluginError(LeitstandError):
    """A plugin failed to load, register or run a hook.

    :param plugin: plugin name (entry-point name or module).
    :param hook: hook name, or the loading step (``import``, ``register``).
    :param cause: what went wrong.
    :param distribution: ``name version`` of the distribution that provides it, if known.
    """

    def __init__(self, plugin: str, hook: str, cause: str, distribution: str | None = None) -> None:
        self.plugin = plugin
        self.hook = hook
        self.cause = cause
        self.distribution = distribution
        where = f"plugin {plugin!r}"
        if distribution:
            where += f" (distribution {distribution})"
        super().__init__(f"{where} failed in {hook}: {cause}")


class ConfigError(LeitstandError):
    """The deployment file is invalid.

    :param file: path of the deployment file.
    :param table: dotted TOML table, e.g. ``sources[0].settings``.
    :param key: the offending key, if one.
    :param problem: what is wrong.
    """

    def __init__(self, file: str, table: str, key: str | None, problem: str) -> None:
        self.file = file
        self.table = table
        self.key = key
        self.problem = problem
        where = f"{file}: [{table}]" if table else f"{file}:"
        if key:
            where += f" key {key!r}"
        super().__init__(f"{where}: {problem}")


class UnknownPointError(LeitstandError, KeyError):
    """A point name or number that the point database does not know."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else "unknown point"


class DuplicatePointError(LeitstandError):
    """Two sources declare the same point."""


class StudyError(LeitstandError):
    """A study could not be run (no solver for it, or the solver failed)."""
