"""Source hooks: the types that acquire telemetry and execute commands.

A source type is a subclass of :class:`dms_hookspecs.Source`. The deployment file creates
instances (``[[sources]]`` with ``type = "<type name>"``); each instance owns its points,
publishes :class:`~dms_hookspecs.MeasurementBatch` es and executes commands on them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .markers import hookspec

if TYPE_CHECKING:
    from .api import TypeRegistry


@hookspec
def dms_add_source_types(registry: TypeRegistry) -> None:
    """Register source types.

    Called once at startup, after ``dms_configure``. Register classes, not instances:
    ``registry.add("iec104", Iec104Source)``. A type name registered twice is an error
    naming both plugins.

    :param registry: the source type registry.
    """


@hookspec
def dms_add_simulator_types(registry: TypeRegistry) -> None:
    """Register field-device simulator types: protocol servers that expose a digital twin.

    Called by the field simulator (``leitstand sim``) once at its start. A protocol plugin
    registers the server side of its protocol next to its source type, e.g.
    ``registry.add("iec104", Iec104Server)``; the class subclasses
    :class:`dms_hookspecs.SimulatorServer` and serves the points of a
    :class:`dms_hookspecs.TwinAPI`.

    :param registry: the simulator type registry.
    """
