"""Leitstand Volt-VAR optimisation (study ``vvo``): see ``docs/vvo.md``."""

from .controls import Capacitor, Control, Inverter, Tap, find_controls
from .evaluate import Evaluator, Metrics
from .optimise import OBJECTIVES, Problem, Solution, optimise

__all__ = ["Capacitor", "Control", "Evaluator", "Inverter", "Metrics", "OBJECTIVES", "Problem", "Solution", "Tap", "find_controls", "optimise"]
