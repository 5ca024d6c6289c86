"""Inserting :data:`~.rows.Rows` into the database inside the caller's transaction.

Measurements take the driver's bulk path: ``executemany`` on the raw sqlite3 cursor, or
``COPY ... FROM STDIN (FORMAT BINARY)`` with psycopg 3 (``cursor.copy``) on PostgreSQL, the
COPY data built in one piece (:func:`copy_binary`: numpy for the numbers, cached encoded
names) instead of a Python call per row. Other tables go through SQLAlchemy's ``executemany``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection

from .rows import MEASUREMENT_COLUMNS, Rows, row_count, row_dicts
from .schema import TABLES

__all__ = ["store"]

_COLUMNS = ", ".join(MEASUREMENT_COLUMNS)


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# binary COPY: per row the field count and the four fixed-size fields, then point and source
_BINARY_COLUMNS = "value, quality, source_time, receive_time, point, source"
_FIXED = np.dtype([
    ("fields", ">i2"),
    ("value_size", ">i4"), ("value", ">f8"),
    ("quality_size", ">i4"), ("quality", ">i4"),
    ("source_time_size", ">i4"), ("source_time", ">f8"),
    ("receive_time_size", ">i4"), ("receive_time", ">f8"),
])
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_COPY_TRAILER = struct.pack(">h", -1)
_TEXT_CACHE_MAX = 1_000_000
_text_fields: dict[str, bytes] = {}


def _text_field(text: str) -> bytes:
    """``text`` as a binary COPY field (length + UTF-8), cached: point names repeat."""
    field = _text_fields.get(text)
    if field is None:
        if not isinstance(text, str):
            raise TypeError(f"text column value {text!r} is not a str")
        encoded = text.encode()
        field = struct.pack(">i", len(encoded)) + encoded
        if len(_text_fields) >= _TEXT_CACHE_MAX:
            _text_fields.clear()
        _text_fields[text] = field
    return field


def _text_fields_of(texts: Sequence[str]) -> list[bytes]:
    try:
        return list(map(_text_fields.__getitem__, texts))  # the common case: every name seen before
    except KeyError:
        field = _text_fields.get
        return [field(text) or _text_field(text) for text in texts]


def copy_binary(columns: dict[str, Sequence[Any]]) -> bytes | None:
    """The measurement rows as PostgreSQL binary COPY data (columns in :data:`_BINARY_COLUMNS`
    order); ``None`` if a value is NULL (``None``), which this fast path does not cover."""
    values = columns["value"]
    if any(value is None for value in values):  # noqa: E711 - NULL values take the row-by-row path
        return None
    size = len(values)
    fixed = np.empty(size, _FIXED)
    fixed["fields"] = 6
    fixed["value_size"] = 8
    fixed["value"] = np.asarray(values, dtype=np.float64)
    fixed["quality_size"] = 4
    fixed["quality"] = np.asarray(columns["quality"], dtype=np.int64)
    fixed["source_time_size"] = 8
    fixed["source_time"] = np.asarray(columns["source_time"], dtype=np.float64)
    fixed["receive_time_size"] = 8
    fixed["receive_time"] = np.asarray(columns["receive_time"], dtype=np.float64)
    data = fixed.tobytes()
    width = _FIXED.itemsize
    parts: list[bytes | None] = [None] * (3 * size)
    parts[0::3] = [data[start:start + width] for start in range(0, size * width, width)]
    parts[1::3] = _text_fields_of(columns["point"])
    parts[2::3] = _text_fields_of(columns["source"])
    return b"".join((_COPY_HEADER, b"".join(parts), _COPY_TRAILER))  # type: ignore[arg-type]


def _measurements(connection: Connection, columns: dict[str, list[Any]], schema: str | None) -> None:
    raw = connection.connection.driver_connection
    ordered = [columns[name] for name in MEASUREMENT_COLUMNS]
    dialect = connection.dialect.name
    if dialect == "postgresql" and hasattr(raw, "pgconn"):  # psycopg 3
        table = f"{_quoted(schema)}.measurements" if schema else "measurements"
        data = copy_binary(columns)
        if data is not None:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_BINARY_COLUMNS}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.write(data)
            return
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
