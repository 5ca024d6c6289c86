"""Leitstand field simulator: twins of the grid behind real protocol servers."""

from .pointmap import PointMapEntry, read_point_map, write_point_map
from .twin import StaticTwin

__all__ = ["PointMapEntry", "read_point_map", "write_point_map", "StaticTwin"]
