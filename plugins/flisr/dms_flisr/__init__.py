"""Leitstand FLISR: fault location, isolation and service restoration (see ``docs/flisr.md``)."""

from .locate import Candidate, locate
from .restore import Plan, Step, plan_restoration
from .sections import SectionGraph

__all__ = ["Candidate", "Plan", "SectionGraph", "Step", "locate", "plan_restoration"]
