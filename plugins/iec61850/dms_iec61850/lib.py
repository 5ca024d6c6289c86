"""The SWIG binding of libiec61850 (pyiec61850-ng), imported in one place."""

import pyiec61850.pyiec61850 as iec  # noqa: F401

__all__ = ["iec"]
