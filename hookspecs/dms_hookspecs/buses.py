"""Bus hooks: event bus types that replace the kernel's in-process bus (e.g. NATS JetStream).

A deployment selects a bus with ``[kernel] bus = "<type>"``; the default ``"inprocess"`` is the
kernel's own bounded asyncio fan-out and needs no plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from .api import TypeRegistry


@hookspec
def dms_add_bus_types(registry: TypeRegistry) -> None:
    """Register event bus types.

    Called once while the kernel prepares, after ``dms_configure`` and before sources and
    sinks are created: ``registry.add("nats", NatsBus)``. The kernel creates the type the
    deployment names in ``[kernel] bus`` as ``factory(kernel)``; the factory returns a
    :class:`dms_kernel.bus.Bus` and reads its settings with ``kernel.settings_for(plugin)``.
    A bus may stand in for sources that run in other processes (``[[sources]] group``) through
    :meth:`dms_kernel.bus.Bus.remote_source`.

    :param registry: the bus type registry.
    """
