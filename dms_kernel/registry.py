"""Registries of source and sink types: plugins hand over classes, the kernel owns instances."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from dms_hookspecs import SettingsSchema

from .errors import PluginError

__all__ = ["TypeRegistry"]


class TypeRegistry:
    """Maps a type name (``"iec104"``, ``"sql"``) to the factory a plugin registered.

    :param kind: ``"source"`` or ``"sink"``, for messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., Any]] = {}
        self._owners: dict[str, str] = {}
        self.current_plugin = "unknown plugin"

    def add(self, type_name: str, factory: Callable[..., Any]) -> None:
        """Register ``factory`` under ``type_name`` for the plugin currently registering.

        :raises PluginError: the name is taken by another plugin.
        """
        if not type_name or not isinstance(type_name, str):
            raise PluginError(self.current_plugin, f"dms_add_{self.kind}_types", f"invalid type name {type_name!r}")
        if type_name in self._factories:
            raise PluginError(
                self.current_plugin,
                f"dms_add_{self.kind}_types",
                f"{self.kind} type {type_name!r} is already registered by plugin {self._owners[type_name]!r}",
            )
        self._factories[type_name] = factory
        self._owners[type_name] = self.current_plugin

    def get(self, type_name: str) -> Callable[..., Any]:
        """The factory for ``type_name``; :class:`KeyError` if none."""
        return self._factories[type_name]

    def owner(self, type_name: str) -> str:
        """Name of the plugin that registered ``type_name``."""
        return self._owners[type_name]

    def schema(self, type_name: str) -> SettingsSchema:
        """The settings schema the type declares (empty if none)."""
        return getattr(self._factories[type_name], "settings_schema", SettingsSchema())

    def __contains__(self, type_name: object) -> bool:
        return type_name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._factories))
