"""Leitstand protection: settings store, IEC 61850 setting groups, selectivity check, plots, interlocks."""

__version__ = "0.1.0"
