"""Leitstand pandapower plugin: model <-> pandapower converters, power-flow solver, example networks."""

from .convert import ConversionError, PandapowerNetwork, from_pandapower, to_pandapower

__all__ = ["ConversionError", "PandapowerNetwork", "from_pandapower", "to_pandapower"]
