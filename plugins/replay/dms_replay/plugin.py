"""Entry point of the ``replay`` plugin: registers the ``random_walk``, ``replay`` and ``rtu_sim`` source types."""

from dms_hookspecs import hookimpl

from .random_walk import RandomWalkSource
from .replay import ReplaySource
from .rtu_sim import RtuSimSource


@hookimpl
def dms_add_source_types(registry):
    registry.add("random_walk", RandomWalkSource)
    registry.add("replay", ReplaySource)
    registry.add("rtu_sim", RtuSimSource)
