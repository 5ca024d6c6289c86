"""Leitstand IEC 61850 MMS plugin: a source (client) and a simulator server, on libiec61850."""

from .address import Address, AddressError, from_iec_quality, parse_address, to_iec_quality

__all__ = ["Address", "AddressError", "parse_address", "from_iec_quality", "to_iec_quality"]
