"""Leitstand OPC UA plugin: a source (asyncua client) and a simulator server (asyncua server)."""

from .server import OpcUaServer
from .source import OpcUaSource

__all__ = ["OpcUaServer", "OpcUaSource"]
