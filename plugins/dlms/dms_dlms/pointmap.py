"""Point maps live in the plugin API (:mod:`dms_hookspecs.pointmap`); re-exported here."""

from dms_hookspecs.pointmap import PointMapEntry, PointMapError, read_point_map, write_point_map

__all__ = ["PointMapEntry", "PointMapError", "read_point_map", "write_point_map"]
