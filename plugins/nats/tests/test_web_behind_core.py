"""The production profile's operator view: `leitstand frontend` → NATS → `leitstand run` (core, bus
"nats", SQL historian, web HMI). The web API of the core serves the front-end's live values and
their history from the historian; the front-end process itself serves no web HMI."""

from __future__ import annotations

import hashlib
import json
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from dms_kernel.testing import free_port
from nats_support import start_leitstand, stop_leitstand, wait_for

pytest.importorskip("dms_web")
pytest.importorskip("dms_sqlhistorian")

TOKEN = "scale-out-test-token"  # noqa: S105 - a test credential, only its sha256 goes into the deployment
POINT = "rtu/R1/P2"


def _deployment(nats_env, port: int, database: str) -> str:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    return nats_env.toml(
        sources=f'''
[plugins]
enable = ["replay", "nats", "sqlhistorian", "web"]

[settings.web]
enabled = true
host = "127.0.0.1"
port = {port}
api_tokens = [{{ name = "ops-display", role = "viewer", token_sha256 = "{digest}" }}]

[[sources]]
name = "rtu"
type = "rtu_sim"
group = "north"
settings = {{ rtus = 2, points = 5, rate = 2.0, period_s = 0.1, seed = 3 }}
''',
        sinks=f'''
[[sinks]]
name = "historian"
type = "sql"
settings = {{ url = "sqlite:///{database}", maintenance_interval_s = 0.0 }}
''',
    )


def _get(port: int, path: str) -> Any:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def test_core_web_api_serves_front_end_values_and_history(nats_env, tmp_path):
    port = free_port()
    path = tmp_path / "deployment.toml"
    path.write_text(_deployment(nats_env, port, tmp_path / "history.db"))
    frontend = start_leitstand(tmp_path, "frontend", "frontend", str(path), "--group", "north", "--instance", "fe-web")
    try:
        await wait_for(lambda: "ACTIVE" in (tmp_path / "frontend.log").read_text(), timeout=40, interval=0.2)
        assert not _listening(port), "the front-end must not serve the web HMI (only the core does)"
        core = start_leitstand(tmp_path, "core", "run", str(path))
        try:
            readings: list[tuple[float, float]] = []

            def live_value_changes() -> bool:
                try:
                    row = _get(port, f"/points/{POINT}")
                except (urllib.error.URLError, ConnectionError, TimeoutError):
                    return False  # core still starting
                if row["good"] and row["value"] is not None:
                    readings.append((row["source_time"], row["value"]))
                return len({t for t, _ in readings}) >= 3  # three different source times: values arrive live

            await wait_for(live_value_changes, timeout=60, interval=0.3)
            row = _get(port, f"/points/{POINT}")
            assert row["source"] == "rtu" and row["unit"] == "A"

            history: list[Any] = []

            def historian_has_values() -> bool:
                series = _get(port, f"/points/{POINT}/history?aggregate=raw")
                history[:] = zip(series["time"], series["value"], strict=True)
                return len(history) >= 3

            await wait_for(historian_has_values, timeout=30, interval=0.5)
        finally:
            stop_leitstand(core)
    finally:
        stop_leitstand(frontend)
    assert readings[-1][0] > readings[0][0]
    assert all(value is not None and 50.0 < value < 150.0 for _, value in history)  # rtu_sim walks from 100 A (step sigma 0.5)
