"""Entry point of the ``iec104`` plugin: the ``iec104`` source type and the ``iec104`` simulator type."""

from dms_hookspecs import hookimpl

from .server import Iec104Server
from .source import Iec104Source


@hookimpl
def dms_add_source_types(registry):
    registry.add("iec104", Iec104Source)


@hookimpl
def dms_add_simulator_types(registry):
    registry.add("iec104", Iec104Server)
