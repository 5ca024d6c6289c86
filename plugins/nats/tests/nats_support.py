"""Fixtures: the machine's NATS server (127.0.0.1:4222), unique subjects and streams per test."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from collections.abc import AsyncIterator

import attrs
import nats
import pytest

from plugins_for_tests import ListSink

NATS_URL = os.environ.get("LEITSTAND_TEST_NATS_URL", "nats://127.0.0.1:4222")


def _reachable(url: str) -> bool:
    host, port = url.rsplit("//", 1)[-1].rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return True
    except OSError:
        return False


@attrs.define
class NatsEnv:
    """A unique deployment name and stream prefix on the test NATS server."""

    url: str
    deployment: str
    prefix: str

    def toml(self, sources: str = "", sinks: str = "", nats_settings: str = "") -> str:
        return f'''
[deployment]
name = "{self.deployment}"
[kernel]
bus = "nats"
[settings.nats]
url = "{self.url}"
stream_prefix = "{self.prefix}"
{nats_settings}
{sources}
{sinks}
'''


@pytest.fixture
async def nats_env() -> AsyncIterator[NatsEnv]:
    """Skips when NATS is unreachable, unless ``CI=true`` (then it fails); deletes the
    test's streams and lease bucket afterwards."""
    if not _reachable(NATS_URL):
        reason = f"NATS with JetStream not reachable at {NATS_URL}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: NATS is required)")
        pytest.skip(reason)
    tag = uuid.uuid4().hex[:10]
    env = NatsEnv(NATS_URL, f"t{tag}", f"TEST_{tag}")
    ListSink.instances.clear()
    yield env
    client = await nats.connect(NATS_URL)
    js = client.jetstream()
    for stream in (f"{env.prefix}_MEAS", f"{env.prefix}_EVENTS", f"KV_{env.prefix}_LEASES", f"KV_{env.prefix}_NAMES"):
        try:
            await js.delete_stream(stream)
        except Exception:  # noqa: BLE001 - not created by this test
            pass
    await client.close()


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def start_leitstand(log_dir: Path, name: str, *args: str) -> subprocess.Popen:
    """``python -m dms_kernel ARGS`` (e.g. ``run DEPLOYMENT`` or ``frontend DEPLOYMENT --group G``) with
    its output appended to ``log_dir/<name>.log`` (a file, not a pipe: a full pipe would stall the
    process); the path is the process's ``log_path``."""
    log = open(Path(log_dir) / f"{name}.log", "a")
    process = subprocess.Popen([sys.executable, "-m", "dms_kernel", *args], stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
    process.log_path = log.name  # type: ignore[attr-defined]
    log.close()
    return process


def stop_leitstand(process: subprocess.Popen, timeout: float = 20.0) -> str:
    """SIGTERM (SIGKILL after ``timeout``); returns the process's log so far."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    with open(process.log_path) as log:  # type: ignore[attr-defined]
        return log.read()
