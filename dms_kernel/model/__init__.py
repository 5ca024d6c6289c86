"""CIM-based network model (IEC 61970 / IEC 61968 distribution subset)."""

from .elements import *  # noqa: F403
from .elements import __all__ as _element_names
from .network import ModelError, NetworkModel

__all__ = ["NetworkModel", "ModelError", *_element_names]
