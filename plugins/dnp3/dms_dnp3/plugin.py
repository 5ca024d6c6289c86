"""Entry point of the ``dnp3`` plugin: the ``dnp3`` source type (master) and simulator type (outstation)."""

from dms_hookspecs import hookimpl

from .server import Dnp3OutstationServer
from .source import Dnp3Source


@hookimpl
def dms_add_source_types(registry):
    registry.add("dnp3", Dnp3Source)


@hookimpl
def dms_add_simulator_types(registry):
    registry.add("dnp3", Dnp3OutstationServer)
