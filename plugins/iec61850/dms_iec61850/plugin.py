"""Entry point of the ``iec61850`` plugin: the ``iec61850`` source and simulator server types."""

from dms_hookspecs import hookimpl


@hookimpl
def dms_add_source_types(registry):
    from .source import Iec61850Source

    registry.add("iec61850", Iec61850Source)

    from .sv_source import SvSource

    registry.add("iec61850-sv", SvSource)


@hookimpl
def dms_add_simulator_types(registry):
    from .server import Iec61850Server

    registry.add("iec61850", Iec61850Server)

    from .sv_server import SvMergingUnit

    registry.add("iec61850-sv", SvMergingUnit)
