"""Leitstand sources that need no field device: random walk and CSV replay."""

from .random_walk import RandomWalkSource
from .replay import ReplaySource

__all__ = ["RandomWalkSource", "ReplaySource"]
