"""Alembic migrations of the historian schema (run by :mod:`dms_sqlhistorian.migrate`, not the alembic CLI)."""
