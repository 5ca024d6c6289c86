"""Entry point of the ``pmu`` plugin: the ``c37118`` source type and the ``c37118`` simulator type."""

from dms_hookspecs import hookimpl

from .server import C37118Server
from .source import C37118Source


@hookimpl
def dms_add_source_types(registry):
    registry.add("c37118", C37118Source)


@hookimpl
def dms_add_simulator_types(registry):
    registry.add("c37118", C37118Server)
