"""CIM RDF/XML import and export for Leitstand (CGMES 2.4.15 and the CIM100 distribution profile)."""

from .errors import CimError
from .reader import read_cim
from .writer import write_cim

__all__ = ["read_cim", "write_cim", "CimError"]
