"""Entry point of the ``replay`` plugin: registers the ``random_walk`` and ``replay`` source types."""

from dms_hookspecs import hookimpl

from .random_walk import RandomWalkSource
from .replay import ReplaySource


@hookimpl
def dms_add_source_types(registry):
    registry.add("random_walk", RandomWalkSource)
    registry.add("replay", ReplaySource)
