"""The pluggy markers of project ``dms``."""

import pluggy

__all__ = ["PROJECT", "hookspec", "hookimpl"]

PROJECT = "dms"
"""pluggy project name; every hook's name starts with ``dms_``."""

hookspec = pluggy.HookspecMarker(PROJECT)
"""Marks a hook specification (used by this package only)."""

hookimpl = pluggy.HookimplMarker(PROJECT)
"""Marks a hook implementation in a plugin: ``@hookimpl`` or ``@hookimpl(trylast=True)``."""
