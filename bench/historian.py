"""Historian benchmark: measurement rows per second through the ``sql`` sink vs the raw driver.

For SQLite and PostgreSQL, in the same run and alternating, each run into a fresh table with
the historian's index (point, source_time):

* **sink**: ``SqlSink.write`` with ``MeasurementBatch`` events as the kernel delivers them
  (1,000 changed points per batch, with names; ``--events`` batches per ``write`` call), each
  call acknowledged = committed (SQLite WAL, ``synchronous=FULL``; PostgreSQL ``COPY``);
* **raw**: the driver's own bulk insert of the same rows from the same numpy arrays, one
  transaction per the same number of rows — ``sqlite3`` ``executemany`` (WAL,
  ``synchronous=FULL``) and psycopg 3 ``cursor.copy`` with ``write_row``.

Rows/s is the median over ``--runs`` runs; which of the two goes first alternates per run. Targets: >= 100,000 rows/s on SQLite through the
sink; sink >= 0.7x raw COPY on PostgreSQL.

    .venv/bin/python bench/historian.py [--rows 1000000] [--events 50] [--runs 3]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
from sqlalchemy import create_engine, make_url
from sqlalchemy.schema import DropSchema

from dms_hookspecs import MeasurementBatch
from dms_sqlhistorian.sink import SqlSink

POINTS = 1000
COLUMNS = "point, value, quality, source_time, receive_time, source"


def make_batches(rows: int) -> list[MeasurementBatch]:
    """``rows // 1000`` batches of 1,000 points (random values, changing timestamps)."""
    rng = np.random.default_rng(1)
    names = [f"S{n // 100}/F{n % 100}/P" for n in range(POINTS)]
    numbers = np.arange(POINTS, dtype=np.int64)
    quality = np.zeros(POINTS, dtype=np.uint16)
    start = 1_700_000_000.0
    return [
        MeasurementBatch("bench", numbers, rng.normal(10.0, 1.0, POINTS), quality, np.full(POINTS, start + k), start + k + 0.01, names)
        for k in range(rows // POINTS)
    ]


def raw_tuples(batch: MeasurementBatch) -> zip:
    size = len(batch)
    return zip(
        batch.names,
        batch.values.tolist(),
        batch.quality.astype(np.int64).tolist(),
        batch.source_time.tolist(),
        [batch.receive_time] * size,
        [batch.source] * size,
    )


async def sink_rate(url: str, schema: str | None, batches: list[MeasurementBatch], events: int, spool: Path) -> float:
    sink = SqlSink("bench", {"url": url, "schema": schema, "spool_dir": str(spool), "maintenance_interval_s": 0})
    await sink.open()
    try:
        started = time.perf_counter()
        for k in range(0, len(batches), events):
            await sink.write(batches[k : k + events])
        elapsed = time.perf_counter() - started
        assert sink.rows_written == len(batches) * POINTS and not sink.status()["spooling"], sink.status()
    finally:
        await sink.close()
    return len(batches) * POINTS / elapsed


def sqlite_raw_rate(path: Path, batches: list[MeasurementBatch], events: int) -> float:
    with sqlite3.connect(path) as db:  # the historian's measurements table and index
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE measurements (id INTEGER NOT NULL PRIMARY KEY, point TEXT NOT NULL, value DOUBLE, quality INTEGER NOT NULL, "
            "source_time DOUBLE NOT NULL, receive_time DOUBLE NOT NULL, source TEXT NOT NULL)"
        )
        db.execute("CREATE INDEX ix_measurements_point_source_time ON measurements (point, source_time)")
        db.commit()
        sql = f"INSERT INTO measurements ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
        started = time.perf_counter()
        for k in range(0, len(batches), events):
            for batch in batches[k : k + events]:
                db.executemany(sql, raw_tuples(batch))
            db.commit()
        elapsed = time.perf_counter() - started
    return len(batches) * POINTS / elapsed


def postgres_raw_rate(url: str, schema: str, batches: list[MeasurementBatch], events: int) -> float:
    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(conninfo) as connection:
        connection.execute(f'CREATE SCHEMA "{schema}"')
        connection.execute(
            f'CREATE TABLE "{schema}".measurements (id BIGSERIAL PRIMARY KEY, point TEXT NOT NULL, value DOUBLE PRECISION, '
            "quality INTEGER NOT NULL, source_time DOUBLE PRECISION NOT NULL, receive_time DOUBLE PRECISION NOT NULL, source TEXT NOT NULL)"
        )
        connection.execute(f'CREATE INDEX ON "{schema}".measurements (point, source_time)')
        connection.commit()
        started = time.perf_counter()
        for k in range(0, len(batches), events):
            with connection.cursor() as cursor, cursor.copy(f'COPY "{schema}".measurements ({COLUMNS}) FROM STDIN') as copy:
                for batch in batches[k : k + events]:
                    for row in raw_tuples(batch):
                        copy.write_row(row)
            connection.commit()
        elapsed = time.perf_counter() - started
    return len(batches) * POINTS / elapsed


def drop_schemas(url: str, schemas: list[str]) -> None:
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for schema in schemas:
                connection.execute(DropSchema(schema, cascade=True, if_exists=True))
    finally:
        engine.dispose()


async def run(args: argparse.Namespace) -> list[tuple[str, float, float]]:
    batches = make_batches(args.rows)
    results = []
    with tempfile.TemporaryDirectory(prefix="historian-bench-") as scratch:
        base = Path(scratch)
        sink_rates, raw_rates = [], []
        for run_number in range(args.runs):  # alternating which goes first (checkpoints, caches)
            for first in ((True, False) if run_number % 2 == 0 else (False, True)):
                if first:
                    raw_rates.append(sqlite_raw_rate(base / f"raw{run_number}.db", batches, args.events))
                else:
                    spool = base / f"spool{run_number}"
                    sink_rates.append(await sink_rate(f"sqlite:///{base / f'sink{run_number}.db'}", None, batches, args.events, spool))
        results.append(("SQLite", statistics.median(sink_rates), statistics.median(raw_rates)))
        if not args.no_postgres:
            schemas = []
            try:
                sink_rates, raw_rates = [], []
                for run_number in range(args.runs):
                    raw_schema, sink_schema = (f"bench_{kind}_{uuid.uuid4().hex[:8]}" for kind in ("raw", "sink"))
                    schemas += [raw_schema, sink_schema]
                    for first in ((True, False) if run_number % 2 == 0 else (False, True)):
                        if first:
                            raw_rates.append(postgres_raw_rate(args.postgres, raw_schema, batches, args.events))
                        else:
                            spool = base / f"pgspool{run_number}"
                            sink_rates.append(await sink_rate(args.postgres, sink_schema, batches, args.events, spool))
                    drop_schemas(args.postgres, schemas)
                results.append(("PostgreSQL", statistics.median(sink_rates), statistics.median(raw_rates)))
            finally:
                drop_schemas(args.postgres, schemas)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per run (multiple of 1,000)")
    parser.add_argument("--events", type=int, default=50, help="MeasurementBatch events (of 1,000 rows) per write / transaction")
    parser.add_argument("--runs", type=int, default=3, help="runs per database (median reported)")
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL URL")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    started = time.perf_counter()
    results = asyncio.run(run(args))
    print(
        f"\nHistorian: measurement rows/s, {args.rows:,} rows per run, {args.events} events of 1,000 rows per write, "
        f"median of {args.runs} runs ({time.perf_counter() - started:.0f} s)\n"
    )
    print(f"| {'database':<10} | {'sink rows/s':>12} | {'raw driver rows/s':>17} | {'raw path':<21} | {'sink/raw':>8} | {'target':<18} | {'met':>3} |")
    print(f"|{'-' * 12}|{'-' * 14}|{'-' * 19}|{'-' * 23}|{'-' * 10}|{'-' * 20}|{'-' * 5}|")
    for database, rate, raw in results:
        if database == "SQLite":
            path, target, met = "sqlite3 executemany", ">= 100,000 rows/s", rate >= 100_000
        else:
            path, target, met = "psycopg COPY", ">= 0.7x raw COPY", rate >= 0.7 * raw
        print(f"| {database:<10} | {rate:>12,.0f} | {raw:>17,.0f} | {path:<21} | {rate / raw:>7.2f}x | {target:<18} | {'yes' if met else 'NO':>3} |")
    print()


if __name__ == "__main__":
    main()
