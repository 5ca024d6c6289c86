"""Entry point of the ``dlms`` plugin: the ``dlms`` source type and the ``dlms`` simulator type."""

from dms_hookspecs import hookimpl


@hookimpl
def dms_add_source_types(registry):
    from .source import DlmsSource

    registry.add("dlms", DlmsSource)


@hookimpl
def dms_add_simulator_types(registry):
    from .server import DlmsMeterServer

    registry.add("dlms", DlmsMeterServer)
