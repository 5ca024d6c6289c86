"""Entry point of the ``sqlhistorian`` plugin: registers the ``sql`` sink type."""

from dms_hookspecs import TypeRegistry, hookimpl

from .sink import SqlSink


@hookimpl
def dms_add_sink_types(registry: TypeRegistry) -> None:
    registry.add("sql", SqlSink)
