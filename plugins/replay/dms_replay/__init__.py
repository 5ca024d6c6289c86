"""Leitstand sources that need no field device: random walk, CSV replay, simulated RTUs (``rtu_sim``)."""

from .random_walk import RandomWalkSource
from .replay import ReplaySource
from .rtu_sim import RtuSimSource

__all__ = ["RandomWalkSource", "ReplaySource", "RtuSimSource"]
