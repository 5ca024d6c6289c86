"""Inserting :data:`~.rows.Rows` into the database inside the caller's transaction.

Measurements take the driver's bulk path: ``executemany`` on the raw sqlite3 cursor, or
``COPY ... FROM STDIN`` with psycopg 3 (``cursor.copy``) on PostgreSQL. Other tables go
through SQLAlchemy's ``executemany``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from .rows import MEASUREMENT_COLUMNS, Rows, row_count, row_dicts
from .schema import TABLES

__all__ = ["store"]

_COLUMNS = ", ".join(MEASUREMENT_COLUMNS)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _measurements(connection: Connection, columns: dict[str, list[Any]], schema: str | None) -> None:
    raw = connection.connection.driver_connection
    ordered = [columns[name] for name in MEASUREMENT_COLUMNS]
    dialect = connection.dialect.name
    if dialect == "postgresql" and hasattr(raw, "pgconn"):  # psycopg 3
        table = f"{_quoted(schema)}.measurements" if schema else "measurements"
        with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_COLUMNS}) FROM STDIN") as copy:
            write_row = copy.write_row
            for row in zip(*ordered):
                write_row(row)
        return
    if dialect == "sqlite":
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO measurements ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", zip(*ordered))
        finally:
            cursor.close()
        return
    connection.execute(TABLES["measurements"].insert(), row_dicts(columns))


def store(connection: Connection, rows: Rows, schema: str | None = None) -> int:
    """Insert ``rows`` (in the connection's current transaction); returns the number of rows.

    :param schema: the database schema of the tables (needed for the raw COPY statement;
        SQLAlchemy statements take it from the connection's ``schema_translate_map``).
    """
    for table, columns in rows.items():
        if table == "measurements":
            _measurements(connection, columns, schema)
        else:
            connection.execute(TABLES[table].insert(), row_dicts(columns))
    return row_count(rows)
