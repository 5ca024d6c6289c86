"""Bringing a historian database to the newest schema with Alembic, and refusing foreign ones.

:func:`upgrade` is what :meth:`SqlSink.open` runs. It recognises four cases:

* **empty** (no historian table): every migration runs, from nothing to head;
* **managed** (an ``alembic_version`` table with a revision of this package): the missing
  migrations run;
* **legacy** (the seven tables dms-sqlhistorian 0.1 created, with their columns, and no
  ``alembic_version``): stamped as revision ``0001`` and upgraded — its rows are kept;
* anything else (some historian table names with other columns, an unknown revision, a
  file that is not a SQLite database): :class:`HistorianDatabaseError` naming the database;
  nothing is changed.

After upgrading, every table is checked to have the columns of :mod:`.schema`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError
from sqlalchemy.schema import CreateSchema

from .schema import TABLES

__all__ = ["HistorianDatabaseError", "upgrade", "head_revision", "LEGACY_COLUMNS"]

log = logging.getLogger("leitstand.sqlhistorian")

LEGACY_REVISION = "0001"

LEGACY_COLUMNS: dict[str, tuple[str, ...]] = {
    "measurements": ("id", "point", "value", "quality", "source_time", "receive_time", "source"),
    "alarms": ("id", "alarm_id", "time", "priority", "state", "category", "source", "point", "message"),
    "audit": ("id", "time", "actor", "action", "subject", "detail"),
    "commands": ("id", "command_id", "target", "value", "select_before_operate", "originator", "reason", "timeout_s", "created"),
    "command_results": ("id", "command_id", "status", "reason", "step", "finished"),
    "study_results": ("id", "study", "solver", "converged", "message", "started", "finished", "data"),
    "control_actions": ("id", "controller", "rationale", "command_id", "target", "value", "originator", "created"),
}
"""Tables and columns of a database created by dms-sqlhistorian 0.1 (before migrations)."""


class HistorianDatabaseError(RuntimeError):
    """The database is not a historian database this version can use (corrupt, foreign, newer).

    The message names the database; the database has not been changed.
    """


def _config(connection: Connection | None = None, schema: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "dms_sqlhistorian:migrations")
    config.attributes["connection"] = connection
    config.attributes["schema"] = schema
    return config


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head_revision() -> str:
    """The newest revision shipped with this package."""
    return str(_script().get_current_head())


def _known_revisions() -> set[str]:
    return {script.revision for script in _script().walk_revisions()}


def _columns(connection: Connection, table: str, schema: str | None) -> tuple[str, ...]:
    return tuple(column["name"] for column in inspect(connection).get_columns(table, schema=schema))


def _mismatch(connection: Connection, expected: dict[str, Iterable[str]], schema: str | None) -> str | None:
    """A description of the first table whose columns differ from ``expected``, or ``None``."""
    for table, columns in expected.items():
        found = _columns(connection, table, schema)
        if set(found) != set(columns):
            return f"table {table!r} has columns ({', '.join(found)}), the historian expects ({', '.join(columns)})"
    return None


def _is_not_a_database(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.DatabaseError) and not isinstance(orig, sqlite3.OperationalError)


def upgrade(engine: Engine, schema: str | None, where: str) -> str:
    """Create or upgrade the historian tables in ``engine`` (and ``schema``); returns what was done.

    :param where: the database as named in errors (file path or URL without password).
    :raises HistorianDatabaseError: corrupt or foreign database, or one written by a newer
        version; it is left untouched.
    """
    try:
        return _upgrade(engine, schema, where)
    except DatabaseError as exc:
        if _is_not_a_database(exc):
            raise HistorianDatabaseError(
                f"historian database {where} is not a SQLite database or is corrupt ({getattr(exc, 'orig', exc)}); "
                "it was left untouched: move it away, restore it, or set 'url' to another file"
            ) from exc
        raise


def _upgrade(engine: Engine, schema: str | None, where: str) -> str:
    with engine.connect() as connection:
        if schema:
            connection.execute(CreateSchema(schema, if_not_exists=True))
            connection.commit()
        names = set(inspect(connection).get_table_names(schema=schema))
        ours = names & set(TABLES)
        if "alembic_version" in names:
            table = f'"{schema}".alembic_version' if schema else "alembic_version"
            revisions = [row[0] for row in connection.execute(text(f"SELECT version_num FROM {table}"))]
            connection.rollback()
            unknown = [revision for revision in revisions if revision not in _known_revisions()]
            if unknown or len(revisions) != 1:
                raise HistorianDatabaseError(
                    f"historian database {where} is at schema revision {', '.join(revisions) or '(none)'}, "
                    f"which this dms-sqlhistorian does not know (newest it knows: {head_revision()}): "
                    "written by a newer version or by another application; it was left untouched"
                )
            action = "upgraded" if revisions[0] != head_revision() else "current"
            start = None
        elif not ours:
            action, start = "created", None
        elif ours == set(LEGACY_COLUMNS):
            problem = _mismatch(connection, LEGACY_COLUMNS, schema)
            connection.rollback()
            if problem:
                raise HistorianDatabaseError(
                    f"database {where} is not a Leitstand historian: {problem}; it was left untouched"
                )
            action, start = "adopted (dms-sqlhistorian 0.1 schema) and upgraded", LEGACY_REVISION
        else:
            raise HistorianDatabaseError(
                f"database {where} is not a Leitstand historian: it has the tables {', '.join(sorted(ours))} "
                f"but no migration record (alembic_version) and not the 0.1 layout; it was left untouched"
            )
        connection.rollback()
        with connection.begin():
            config = _config(connection, schema)
            if start is not None:
                command.stamp(config, start)
            command.upgrade(config, "head")
        problem = _mismatch(connection, {name: tuple(table.c.keys()) for name, table in TABLES.items()}, schema)
        connection.rollback()
        if problem:
            raise HistorianDatabaseError(f"historian database {where} does not have the expected schema: {problem}")
    if action != "current":
        log.info("historian database %s %s to schema revision %s", where, action, head_revision())
    return action
