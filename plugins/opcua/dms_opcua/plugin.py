"""Entry point of the ``opcua`` plugin: the ``opcua`` source type and the ``opcua`` simulator type."""

from dms_hookspecs import hookimpl

from .server import OpcUaServer
from .source import OpcUaSource


@hookimpl
def dms_add_source_types(registry):
    registry.add("opcua", OpcUaSource)


@hookimpl
def dms_add_simulator_types(registry):
    registry.add("opcua", OpcUaServer)
