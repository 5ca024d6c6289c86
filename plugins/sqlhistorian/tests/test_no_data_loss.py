"""No acknowledged row is lost: kill -9 while writing, database outages, torn spool records, interrupted replay."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from dms_hookspecs import MeasurementBatch
from dms_sqlhistorian import query
from dms_sqlhistorian.engine import make_engine
from dms_sqlhistorian.migrate import upgrade
from dms_sqlhistorian.sink import SqlSink
from dms_sqlhistorian.spool import Spool
from dms_sqlhistorian.writer import Writer

CHILD = Path(__file__).parent / "writer_child.py"


def numbered(start: int, size: int) -> MeasurementBatch:
    values = np.arange(start, start + size, dtype=np.float64)
    names = [f"P{k % 10}" for k in range(start, start + size)]
    return MeasurementBatch("test", np.arange(size), values, np.zeros(size, np.uint16), values, names=names)


def stored_values(url: str, schema: str | None = None) -> list[float]:
    """Values of all stored measurements in storage (id) order."""
    return [row["value"] for row in query.records(url, "measurements", schema=schema)]


class Child:
    """The writer child process; reads its ``acked`` lines."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True)
        self.acked = 0
        self.spooling = False
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "open", "child did not open the historian"

    def read_until(self, condition, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        assert self.process.stdout is not None
        while not condition():
            assert time.monotonic() < deadline, f"child: condition not reached (acked {self.acked})"
            line = self.process.stdout.readline()
            assert line, f"child exited with {self.process.wait()}"
            self._parse(line)

    def _parse(self, line: str) -> None:
        _, acked, _, spooling = line.split()
        self.acked, self.spooling = int(acked), spooling == "1"

    def kill(self) -> int:
        """kill -9; returns the last acknowledged count the child printed."""
        os.kill(self.process.pid, signal.SIGKILL)
        assert self.process.stdout is not None
        for line in self.process.stdout:  # lines printed before it died
            if line.startswith("acked"):
                self._parse(line)
        self.process.wait()
        return self.acked


async def reopen_and_flush(url: str, spool_dir: Path, schema: str | None = None) -> None:
    sink = SqlSink("child", {"url": url, "spool_dir": str(spool_dir), "schema": schema})
    await sink.open()
    try:
        assert await sink.flush(timeout_s=60)
    finally:
        await sink.close()


async def test_kill_9_while_writing_to_sqlite_loses_no_acknowledged_row(tmp_path):
    url, spool_dir = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "spool"
    child = Child(url, str(spool_dir))
    child.read_until(lambda: child.acked >= 30_000)
    acked = child.kill()
    await reopen_and_flush(url, spool_dir)
    values = stored_values(url)
    assert len(values) >= acked >= 30_000
    assert values == list(range(len(values)))  # every acknowledged row, in order, none twice


async def test_kill_9_while_spooling_during_a_postgresql_outage_loses_no_acknowledged_row(postgres, pg_proxy, tmp_path):
    url, schema = postgres
    proxy, proxied = pg_proxy
    spool_dir = tmp_path / "spool"
    child = Child(proxied, str(spool_dir), schema)
    child.read_until(lambda: child.acked >= 10_000)
    proxy.stop()  # the database goes away: the child spools
    child.read_until(lambda: child.spooling)
    spooled_from = child.acked
    child.read_until(lambda: child.acked >= spooled_from + 10_000)
    acked = child.kill()
    assert list(spool_dir.glob("*.spool"))
    await reopen_and_flush(url, spool_dir, schema)
    values = stored_values(url, schema)
    assert len(values) >= acked >= 20_000
    assert values == list(range(len(values)))
    assert not list(spool_dir.glob("*.spool"))


async def test_postgresql_outage_rows_are_spooled_and_replayed_in_order(postgres, pg_proxy, tmp_path):
    url, schema = postgres
    proxy, proxied = pg_proxy
    sink = SqlSink("historian", {"url": proxied, "schema": schema, "spool_dir": str(tmp_path / "spool"), "retry_s": 0.05, "retry_max_s": 0.2})
    await sink.open()
    written = 0
    try:
        for _ in range(10):
            await sink.write([numbered(written, 100)])
            written += 100
        assert not sink.status()["spooling"]

        proxy.stop()  # outage: writes keep being acknowledged, from the spool
        for _ in range(20):
            await sink.write([numbered(written, 100)])
            written += 100
        status = sink.status()
        assert status["spooling"] and status["rows_spooled"] >= 1900 and status["outage_since"] is not None
        assert "OperationalError" in status["last_error"]

        proxy.start()  # back: the spool is replayed, new rows queue behind it
        for _ in range(10):
            await sink.write([numbered(written, 100)])
            written += 100
        assert await sink.flush(timeout_s=30)
    finally:
        await sink.close()
    assert sink.rows_written == written == 4000
    assert stored_values(url, schema) == list(range(written))


async def test_a_torn_record_at_the_end_of_a_spool_file_is_ignored(tmp_path):
    url, spool_dir = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "spool"
    spool = Spool(spool_dir, 1 << 20)
    spool.open()
    for start in (0, 10):
        spool.append({"measurements": {
            "point": ["P"] * 10, "value": [float(k) for k in range(start, start + 10)], "quality": [0] * 10,
            "source_time": [float(k) for k in range(start, start + 10)], "receive_time": [0.0] * 10, "source": ["s"] * 10,
        }})
    spool.close()
    [file] = spool_dir.glob("*.spool")
    whole = file.read_bytes()
    file.write_bytes(whole + whole[8:40])  # a crash in the middle of appending a third record
    await reopen_and_flush(url, spool_dir)
    assert stored_values(url) == list(range(20))
    assert not list(spool_dir.glob("*.spool"))


async def test_a_second_process_cannot_use_the_same_spool(tmp_path):
    first = Spool(tmp_path / "spool", 1 << 20)
    first.open()
    try:
        second = Spool(tmp_path / "spool", 1 << 20)
        try:
            second.open()
        except RuntimeError as exc:
            assert "in use by another process" in str(exc)
        else:
            raise AssertionError("second spool opened")
    finally:
        first.close()


def spooled_rows(start: int, size: int) -> dict:
    values = [float(k) for k in range(start, start + size)]
    return {"measurements": {
        "point": ["P"] * size, "value": values, "quality": [0] * size,
        "source_time": values, "receive_time": [0.0] * size, "source": ["s"] * size,
    }}


async def test_a_replay_interrupted_by_a_crash_resumes_without_duplicates(tmp_path):
    url, spool_dir = f"sqlite:///{tmp_path / 'h.db'}", tmp_path / "spool"
    spool = Spool(spool_dir, 1 << 20)
    spool.open()
    for start in (0, 10, 20):
        spool.append(spooled_rows(start, 10))
    engine = make_engine(url)
    upgrade(engine, None, "test")
    # the first chunk (one record) is replayed and committed with its progress, then the process "dies"
    writer = Writer(engine, None, spool, log=logging.getLogger("test"), where="test", replay_rows=10)
    assert writer._replay_chunk() is False
    assert stored_values(url) == list(range(10))
    spool.close()
    engine.dispose()
    await reopen_and_flush(url, spool_dir)
    assert stored_values(url) == list(range(30))
    assert query.records(url, "spool_progress") == []
    assert not list(spool_dir.glob("*.spool"))


async def test_a_postgresql_server_down_at_start_is_spooled_for_and_set_up_when_it_is_back(postgres, pg_proxy, tmp_path):
    url, schema = postgres
    proxy, proxied = pg_proxy
    proxy.stop()
    sink = SqlSink("historian", {"url": proxied, "schema": schema, "spool_dir": str(tmp_path / "spool"), "retry_s": 0.05, "retry_max_s": 0.2})
    await sink.open()  # not fatal: the rows wait in the spool
    try:
        for start in range(0, 1000, 100):
            await sink.write([numbered(start, 100)])
        assert sink.status()["spooling"] and sink.status()["rows_spooled"] == 1000
        proxy.start()
        assert await sink.flush(timeout_s=30)
        await sink.write([numbered(1000, 100)])
    finally:
        await sink.close()
    assert stored_values(url, schema) == list(range(1100))

