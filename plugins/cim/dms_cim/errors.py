"""Errors of the CIM plugin."""

from dms_kernel.model import ModelError


class CimError(ModelError):
    """A CIM file cannot be read: not a file, not XML, not RDF, a bad value (the message names the file)."""
