"""Fixtures for the workflow tests: a settable clock, a database per backend, a service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from dms_workorders import Workorders


# Wednesday 2024-05-15 10:00 UTC
T0 = dt.datetime(2024, 5, 15, 10, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    """A clock the test sets: ``clock.now = ...``; ``clock.advance(seconds)``."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def postgres(postgres_schema: tuple[str, str]) -> tuple[str, str]:
    """``(url, schema)``: the shipped ``postgres_schema`` fixture (``dms_kernel.testing``)."""
    return postgres_schema


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """``(url, schema)`` of an empty database: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'var' / 'workorders.db'}", None
    return request.getfixturevalue("postgres")


@pytest.fixture
def audit() -> list:
    """Audit entries the service emits."""
    return []


@pytest.fixture
def service(database, clock, audit) -> Iterator[Workorders]:
    url, schema = database
    service = Workorders.open(url, schema, clock=clock, emit=audit.append)
    yield service
    service.close()


@pytest.fixture
def wait_until():
    """``await wait_until(condition, timeout_s=5)``: poll ``condition()`` while the kernel runs."""
    import asyncio
    import time

    async def wait(condition, timeout_s: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.02)

    return wait
