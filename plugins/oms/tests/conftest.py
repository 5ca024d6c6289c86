"""Fixtures: an MQTT broker (the machine's Mosquitto on 127.0.0.1:1883, else one started here)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def mqtt_broker(tmp_path_factory) -> Iterator[tuple[str, int]]:
    """``(host, port)`` of a reachable MQTT broker: 127.0.0.1:1883 if it answers, else a Mosquitto
    started for the session on a free port. Without either the test is skipped — except with
    CI=true, where it fails."""
    if _reachable("127.0.0.1", 1883):
        yield "127.0.0.1", 1883
        return
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        message = "no MQTT broker on 127.0.0.1:1883 and no mosquitto binary (apt-get install mosquitto)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — required with CI=true")
        pytest.skip(message)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path_factory.mktemp("mosquitto") / "mosquitto.conf"
    config.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen([binary, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not _reachable("127.0.0.1", port):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"mosquitto did not start on port {port} (exit code {process.poll()})")
            time.sleep(0.1)
        yield "127.0.0.1", port
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def wait_until():
    """``await wait_until(condition, timeout_s=10, what=...)``: poll while the kernel runs."""
    import asyncio

    async def wait(condition, timeout_s: float = 10.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.05)

    return wait
