"""Entry point of the ``console`` plugin: registers the ``console`` and ``jsonl`` sink types."""

from dms_hookspecs import hookimpl

from .sinks import ConsoleSink, JsonLinesSink


@hookimpl
def dms_add_sink_types(registry):
    registry.add("console", ConsoleSink)
    registry.add("jsonl", JsonLinesSink)
