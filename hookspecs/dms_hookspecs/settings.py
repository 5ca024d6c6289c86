"""Declarative settings schemas: what a plugin or a source/sink type accepts in the deployment file.

The kernel validates the deployment file against these schemas before anything starts; an
unknown key, a wrong type or a missing required key is reported with file, table and key.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["Setting", "SettingsSchema", "REQUIRED"]


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Default marker for a setting that must be given."""

_TYPES = (str, int, float, bool, list, dict)


def _check_type(instance: Any, attribute: Any, value: type) -> None:
    if value not in _TYPES:
        raise TypeError(f"setting type must be one of {[t.__name__ for t in _TYPES]}, not {value!r}")


@attrs.frozen
class Setting:
    """One key of a settings table.

    :param name: the TOML key.
    :param type: one of ``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``
        (an ``int`` is accepted where ``float`` is declared).
    :param default: value when absent, or :data:`REQUIRED`.
    :param doc: one line for ``leitstand plugins`` and the docs.
    :param choices: allowed values, if restricted.
    """

    name: str
    type: type = attrs.field(validator=_check_type)
    default: Any = None
    doc: str = ""
    choices: tuple[Any, ...] | None = None

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@attrs.frozen
class SettingsSchema:
    """The settings a plugin or a source/sink type accepts.

    :param settings: the keys.
    :param allow_extra: accept keys not declared (passed through unchecked).
    """

    settings: tuple[Setting, ...] = ()
    allow_extra: bool = False

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.settings)

    def names(self) -> list[str]:
        return [setting.name for setting in self.settings]
