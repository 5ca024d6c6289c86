"""Plugin host: loads plugins, verifies them and calls their hooks with errors that name the culprit.

Every :class:`PluginHost` has its own pluggy ``PluginManager`` (no module-global state), so a
test or a second kernel in the same process starts from a clean slate.
"""

from __future__ import annotations

import asyncio
import difflib
import importlib.metadata
import inspect
import logging
import os
import re
import types
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

import attrs
import pluggy

import dms_hookspecs

from .errors import ConfigError, PluginError

__all__ = ["PluginHost", "PluginInfo", "ENTRY_POINT_GROUP", "BLOCK_ENV"]

ENTRY_POINT_GROUP = "dms.plugins"
"""Entry-point group that external and first-party plugins are published under."""

BLOCK_ENV = "LEITSTAND_BLOCK_PLUGINS"
"""Environment variable: comma-separated plugin names that must not be loaded."""

_HOOK_PREFIX = "dms_"

log = logging.getLogger("leitstand.plugins")


@attrs.frozen
class PluginInfo:
    """What ``leitstand plugins`` shows about one plugin."""

    name: str
    distribution: str | None
    version: str | None
    hooks: tuple[str, ...]
    module: str


class _DmsPluginManager(pluggy.PluginManager):
    """Treats every ``dms_*`` function as a hook implementation, marked or not.

    As pytest does for ``pytest_*``: a misspelled hook (``dms_startp``) is then an
    implementation without a specification, caught at startup instead of silently ignored.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> Any:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(_HOOK_PREFIX):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return {}
        return opts


def blocked_from_env(environ: os._Environ[str] | dict[str, str] | None = None) -> set[str]:
    """Plugin names listed in :data:`BLOCK_ENV`."""
    value = (environ if environ is not None else os.environ).get(BLOCK_ENV, "")
    return {name.strip() for name in value.split(",") if name.strip()}


class PluginHost:
    """Loads plugins into a fresh plugin manager and calls their hooks.

    :param builtin: ``(name, module_or_object)`` pairs registered first, like pytest's
        ``default_plugins``; they go through the same checks as external plugins.
    :param load_entry_points: also load the ``dms.plugins`` entry-point group.
    :param blocked: plugin names not to load (in addition to :data:`BLOCK_ENV`).
    :param enabled: if given, only these entry-point plugins are loaded.
    """

    def __init__(
        self,
        builtin: Sequence[tuple[str, object]] = (),
        *,
        load_entry_points: bool = True,
        blocked: Iterable[str] = (),
        enabled: Iterable[str] | None = None,
    ) -> None:
        self.pm = _DmsPluginManager(dms_hookspecs.PROJECT)
        for module in dms_hookspecs.HOOK_MODULES:
            self.pm.add_hookspecs(module)
        self.blocked = set(blocked) | blocked_from_env()
        self.enabled = set(enabled) if enabled is not None else None
        self._distributions: dict[str, tuple[str, str] | None] = {}
        self._pending: list[tuple[str, Any]] = []
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        for name, plugin in builtin:
            self.register(plugin, name)
        if load_entry_points:
            self.load_entry_points()

    # -- loading -------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Import and register every plugin of the ``dms.plugins`` group not blocked."""
        for entry_point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if entry_point.name in self.blocked:
                continue
            if self.enabled is not None and entry_point.name not in self.enabled:
                continue
            dist = entry_point.dist
            distribution = (dist.name, dist.version) if dist is not None else None
            if self.pm.get_plugin(entry_point.name) is not None:
                log.warning(
                    "plugin name %r is provided twice (%s and %s); the second is ignored",
                    entry_point.name, self.distribution_of(entry_point.name) or "built in", _format_dist(distribution),
                )
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:  # noqa: BLE001 - any import failure is the plugin's
                raise PluginError(
                    entry_point.name,
                    "import",
                    f"cannot import {entry_point.value!r}: {type(exc).__name__}: {exc}",
                    _format_dist(distribution),
                ) from exc
            self.register(plugin, entry_point.name, distribution)

    def register(self, plugin: object, name: str | None = None, distribution: tuple[str, str] | None = None) -> str:
        """Register one plugin object (usually a module) and verify its hooks.

        :return: the plugin's name.
        :raises PluginError: blocked-by-name is silently skipped; a wrong hook signature,
            a hook wrapper or an unknown (misspelled) hook raises, naming plugin and hook.
        """
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if name in self.blocked:
            return name
        self._distributions[name] = distribution
        dist_text = _format_dist(distribution)
        try:
            self.pm.register(plugin, name)
        except pluggy.PluginValidationError as exc:
            self._distributions.pop(name, None)
            hook = _hook_in_message(str(exc))
            cause = str(exc).splitlines()[-1] if hook else str(exc)
            raise PluginError(name, hook or "register", f"wrong hook signature: {cause}", dist_text) from exc
        except ValueError as exc:
            self._distributions.pop(name, None)
            raise PluginError(name, "register", str(exc), dist_text) from exc
        for hook_caller in self.pm.get_hookcallers(plugin) or []:
            for impl in hook_caller.get_hookimpls():
                if impl.plugin is plugin and (impl.hookwrapper or impl.wrapper):
                    self.pm.unregister(plugin)
                    raise PluginError(name, hook_caller.name, "hook wrappers are not supported", dist_text)
        self.check_pending(only=plugin)
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin by name (no-op if absent)."""
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self._distributions.pop(name, None)

    def check_pending(self, only: object | None = None) -> None:
        """Fail on hook implementations for which no hook specification exists.

        :raises PluginError: naming plugin, hook, and the closest known hook name.
        """
        known = sorted(self.hook_names())
        for hook_name in dir(self.pm.hook):
            if not hook_name.startswith(_HOOK_PREFIX):
                continue
            hook_caller = getattr(self.pm.hook, hook_name)
            if hook_caller.spec is not None:
                continue
            for impl in hook_caller.get_hookimpls():
                if impl.optionalhook or (only is not None and impl.plugin is not only):
                    continue
                suggestion = difflib.get_close_matches(hook_name, known, n=1)
                hint = f"; did you mean {suggestion[0]!r}?" if suggestion else ""
                self.pm.unregister(impl.plugin)
                raise PluginError(
                    impl.plugin_name,
                    hook_name,
                    f"unknown hook {hook_name!r} (no such hook specification){hint}",
                    _format_dist(self._distributions.pop(impl.plugin_name, None)),
                )

    # -- introspection -------------------------------------------------------------------

    def hook_names(self) -> list[str]:
        """Names of all hook specifications."""
        return [
            name
            for module in dms_hookspecs.HOOK_MODULES
            for name, _ in inspect.getmembers(module, inspect.isfunction)
            if name.startswith(_HOOK_PREFIX)
        ]

    def plugin_names(self) -> list[str]:
        return [name for name, _ in self.pm.list_name_plugin()]

    def plugins(self) -> list[PluginInfo]:
        """Every registered plugin with its distribution and implemented hooks."""
        infos = []
        for name, plugin in self.pm.list_name_plugin():
            hooks = tuple(sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or []))
            distribution = self._distributions.get(name)
            infos.append(
                PluginInfo(
                    name=name,
                    distribution=distribution[0] if distribution else None,
                    version=distribution[1] if distribution else None,
                    hooks=hooks,
                    module=getattr(plugin, "__name__", type(plugin).__name__),
                )
            )
        return sorted(infos, key=lambda info: info.name)

    def distribution_of(self, plugin_name: str) -> str | None:
        """``"name version"`` of the distribution providing a plugin, if known."""
        return _format_dist(self._distributions.get(plugin_name))

    # -- calling hooks -------------------------------------------------------------------

    def add_listener(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        """Call ``listener(hook_name, kwargs)`` whenever a hook is called (for recorders)."""
        self._listeners.append(listener)

    def _record(self, hook_name: str, kwargs: dict[str, Any]) -> None:
        for listener in self._listeners:
            listener(hook_name, kwargs)

    def _impls(self, hook_name: str) -> list[Any]:
        # pluggy calls implementations in reverse registration order, honouring
        # tryfirst/trylast; get_hookimpls() returns them in the opposite order.
        return list(reversed(getattr(self.pm.hook, hook_name).get_hookimpls()))

    async def _invoke(self, impl: Any, hook_name: str, kwargs: dict[str, Any], in_thread: bool) -> Any:
        try:
            args = [kwargs[argname] for argname in impl.argnames]
            if in_thread and not inspect.iscoroutinefunction(impl.function):
                result = await asyncio.to_thread(impl.function, *args)
            else:
                result = impl.function(*args)
                if inspect.isawaitable(result):
                    result = await result
        except (PluginError, ConfigError):
            raise  # already names its culprit (a registry refusing a duplicate type, a settings key)
        except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
            raise PluginError(
                impl.plugin_name, hook_name, f"{type(exc).__name__}: {exc}", self.distribution_of(impl.plugin_name)
            ) from exc
        return result

    async def call(
        self,
        hook_name: str,
        *,
        in_thread: bool = False,
        before_each: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> list[tuple[str, Any]]:
        """Call every implementation (sync or async) and collect ``(plugin, result)`` pairs.

        ``None`` results are left out. The first exception stops the call and is raised
        as :class:`PluginError` naming plugin, distribution, hook and cause.

        :param before_each: called with each plugin's name before its implementation runs
            (registries use it to know who registers).
        """
        self._record(hook_name, kwargs)
        results = []
        for impl in self._impls(hook_name):
            if before_each is not None:
                before_each(impl.plugin_name)
            result = await self._invoke(impl, hook_name, kwargs, in_thread)
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    async def call_each(self, hook_name: str, **kwargs: Any) -> list[PluginError]:
        """Call every implementation; collect errors instead of stopping (for shutdown)."""
        self._record(hook_name, kwargs)
        errors = []
        for impl in self._impls(hook_name):
            try:
                await self._invoke(impl, hook_name, kwargs, False)
            except PluginError as exc:
                errors.append(exc)
        return errors

    async def call_first(
        self, hook_name: str, *, in_thread: bool = False, skip: Collection[str] = (), **kwargs: Any
    ) -> tuple[str, Any] | None:
        """``firstresult`` call: ``(plugin, result)`` of the first non-``None`` result, or ``None``.

        :param skip: plugins not to ask (e.g. those that said they cannot answer).
        """
        self._record(hook_name, kwargs)
        for impl in self._impls(hook_name):
            if impl.plugin_name in skip:
                continue
            result = await self._invoke(impl, hook_name, kwargs, in_thread)
            if result is not None:
                return impl.plugin_name, result
        return None

    async def call_historic(self, hook_name: str, **kwargs: Any) -> None:
        """Call a historic hook: plugins registered later receive the call at registration.

        Coroutines returned by async implementations are awaited here, or (for late
        registrants) by :meth:`drain`.
        """
        self._record(hook_name, kwargs)
        hook_caller = getattr(self.pm.hook, hook_name)
        impls = self._impls(hook_name)
        try:
            hook_caller.call_historic(kwargs=kwargs, result_callback=self._keep_pending)
        except Exception as exc:  # noqa: BLE001
            culprit = _culprit(exc, impls)
            raise PluginError(
                culprit, hook_name, f"{type(exc).__name__}: {exc}", self.distribution_of(culprit)
            ) from exc
        await self.drain(hook_name)

    def _keep_pending(self, result: Any) -> None:
        if inspect.isawaitable(result):
            self._pending.append(("", result))

    async def drain(self, hook_name: str = "dms_configure") -> None:
        """Await coroutines left by historic calls of async implementations."""
        pending, self._pending = self._pending, []
        for _, awaitable in pending:
            try:
                await awaitable
            except Exception as exc:  # noqa: BLE001
                culprit = _culprit(exc, self._impls(hook_name))
                raise PluginError(
                    culprit, hook_name, f"{type(exc).__name__}: {exc}", self.distribution_of(culprit)
                ) from exc


def _format_dist(distribution: tuple[str, str] | None) -> str | None:
    return f"{distribution[0]} {distribution[1]}" if distribution else None


def _hook_in_message(message: str) -> str | None:
    match = re.search(r"for hook '(\w+)'", message)
    return match.group(1) if match else None


def _culprit(exc: BaseException, impls: Sequence[Any]) -> str:
    """Name of the plugin whose hook function appears in the exception's traceback."""
    codes = {impl.function.__code__: impl.plugin_name for impl in impls if hasattr(impl.function, "__code__")}
    traceback: types.TracebackType | None = exc.__traceback__
    culprit = "unknown plugin"
    while traceback is not None:
        name = codes.get(traceback.tb_frame.f_code)
        if name is not None:
            culprit = name
        traceback = traceback.tb_next
    return culprit
