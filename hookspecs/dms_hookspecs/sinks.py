"""Sink hooks: the types that receive events (historians, consoles, bus bridges).

A sink type is a subclass of :class:`dms_hookspecs.Sink`; the deployment file creates
instances with ``[[sinks]]``. Each instance is fed from a bounded queue by the kernel and
receives measurement batches (changes only), study results, alarms, commands, command
results, control actions and audit entries — the types in its ``accepts``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from .api import TypeRegistry


@hookspec
def dms_add_sink_types(registry: TypeRegistry) -> None:
    """Register sink types.

    Called once at startup, after ``dms_configure``: ``registry.add("sql", SqlSink)``.

    :param registry: the sink type registry.
    """
