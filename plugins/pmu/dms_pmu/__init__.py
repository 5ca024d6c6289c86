"""Leitstand synchrophasor plugin: IEEE C37.118.2 source with PDC alignment, PMU simulator server, frequency/ROCOF events."""

from .pdc import AlignedSet, Aligner
from .quality import stat_to_quality
from .server import C37118Server
from .source import C37118Source

__all__ = ["C37118Source", "C37118Server", "Aligner", "AlignedSet", "stat_to_quality"]
