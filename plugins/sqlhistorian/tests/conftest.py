"""Fixtures for the SQL historian tests: polling helper, SQLite URL, PostgreSQL schema."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.schema import DropSchema

POSTGRES_URL = os.environ.get("LEITSTAND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

Waiter = Callable[..., Awaitable[None]]


@pytest.fixture
def wait_until() -> Waiter:
    """``await wait_until(condition, timeout_s=5)``: poll ``condition()`` while the kernel runs."""

    async def wait(condition: Callable[[], object], timeout_s: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.02)

    return wait


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[Path, str]:
    """``(path, url)`` of a SQLite database in a directory that does not exist yet."""
    path = tmp_path / "var" / "historian.db"
    return path, f"sqlite:///{path}"


@pytest.fixture
def postgres() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: the test PostgreSQL database and a fresh schema name, dropped after the test.

    Skips if PostgreSQL is not reachable, unless ``CI=true``: then the test fails.
    """
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            pass
    except OperationalError as exc:
        engine.dispose()
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {exc.orig or exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL is required)")
        pytest.skip(reason)
    schema = f"leitstand_test_{uuid.uuid4().hex[:12]}"
    try:
        yield POSTGRES_URL, schema
    finally:
        with engine.begin() as connection:
            connection.execute(DropSchema(schema, cascade=True, if_exists=True))
        engine.dispose()
