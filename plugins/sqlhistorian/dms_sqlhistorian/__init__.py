"""Leitstand SQL historian: stores events in SQLite or PostgreSQL through SQLAlchemy Core."""

from .sink import SqlSink

__all__ = ["SqlSink"]
