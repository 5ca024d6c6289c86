"""Leitstand console and JSON-lines sinks."""
