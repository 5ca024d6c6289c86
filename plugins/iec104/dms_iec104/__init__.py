"""Leitstand IEC 60870-5-104 plugin: a source (controlling station) and a simulator server, built on c104."""

from .mapping import Iec104Point, load_point_map, quality_to_bits
from .server import Iec104Server
from .source import Iec104Source

__all__ = ["Iec104Point", "Iec104Server", "Iec104Source", "load_point_map", "quality_to_bits"]
