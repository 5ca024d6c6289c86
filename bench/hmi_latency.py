"""HMI latency benchmark: a value change in the field → the value updated on the open page.

The real chain on loopback: a twin (``dms_simulator.StaticTwin``) served by the simulator's
IEC 60870-5-104 server → the ``iec104`` source of a kernel → point database → the web plugin's
live hub (WebSocket, changes pushed every ``live_batch_ms``) → headless Chromium (Debian's
/usr/bin/chromium via playwright) logged in as ``viewer`` on the overview page.

For every sample the value of ``rtu/U`` is changed in the twin and ``time.time()`` noted; in the
page a MutationObserver on the value cell records ``Date.now()`` when the new value arrives (the
cell's ``data-value`` is set in the same task as its text). Same machine, same clock: the
difference is the latency. Samples are spaced by a random pause so they do not lock onto the
batch timer.

Run: ``.venv/bin/python bench/hmi_latency.py [samples] [batch_ms,...]`` (default ``50 150,50``).
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dms_iec104.plugin
import dms_web.plugin as web_plugin
from dms_iec104.testing import INITIAL, POINT_MAP, TWIN_POINTS, free_port
from dms_iec104.server import Iec104Server
from dms_kernel.testing import build_kernel
from dms_simulator import StaticTwin
from dms_web.testing import PASSWORDS
from playwright.async_api import async_playwright, expect

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
POINT = "rtu/U"

OBSERVER = """(point) => {
  window.__seen = [];
  const cell = document.querySelector(`tr[data-point="${point}"] .value`);
  new MutationObserver(() => window.__seen.push([Date.now(), Number(cell.dataset.value)]))
    .observe(cell, { attributes: true, attributeFilter: ["data-value"] });
}"""


def deployment(port: int, map_path: Path, batch_ms: int) -> str:
    users = ", ".join(f'{{ name = "{n}", role = "{n}", password_hash = "{h}" }}' for n, h in PASSWORDS.items())
    return f"""
[deployment]
name = "hmi latency"

[settings.web]
enabled = true
port = 0
live_batch_ms = {batch_ms}
users = [{users}]

[[sources]]
name = "rtu"
type = "iec104"
settings = {{ host = "127.0.0.1", port = {port}, points_file = "{map_path}", reconnect_min_s = 0.2 }}
"""


async def _wait(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        await asyncio.sleep(0.005)


async def measure(samples: int, batch_ms: int, browser) -> list[float]:  # noqa: ANN001
    """Latencies in ms of ``samples`` field changes with the web plugin's ``live_batch_ms = batch_ms``."""
    with tempfile.TemporaryDirectory() as tmp:
        map_path = Path(tmp) / "iec104.csv"
        map_path.write_text(POINT_MAP)
        twin = StaticTwin(TWIN_POINTS, INITIAL)
        port = free_port()
        server = Iec104Server("sim", {"port": port, "points_file": str(map_path)}, twin)
        await server.start()
        kernel = build_kernel(("web", web_plugin), ("iec104", dms_iec104.plugin), deployment=deployment(port, map_path, batch_ms))
        try:
            async with kernel:
                deadline = time.monotonic() + 10.0
                while abs((kernel.points.read(POINT).value or 0.0) - INITIAL[POINT]) > 1e-3:  # float32 on the wire
                    if time.monotonic() > deadline:
                        raise TimeoutError("the iec104 source did not deliver the initial value")
                    await asyncio.sleep(0.02)
                url = web_plugin.server_for(kernel).url
                context = await browser.new_context(base_url=url)
                page = await context.new_page()
                await page.goto("/login")
                await page.get_by_label("User name").fill("viewer")
                await page.get_by_label("Password").fill("viewer")
                await page.get_by_role("button", name="Log in").click()
                await page.wait_for_url(url + "/")
                await expect(page.locator("#live-status")).to_have_text("● live", timeout=10000)  # (the page's CSP forbids eval)
                await expect(page.locator(f'tr[data-point="{POINT}"] .value')).to_have_attribute("data-value", re.compile("."))
                await page.evaluate(OBSERVER, POINT)
                rng = random.Random(8)
                latencies = []
                for i in range(samples):
                    value = round(21.0 + 0.1 * (i + 1), 1)
                    await asyncio.sleep(rng.uniform(0.05, 0.25))
                    changed = time.time()
                    twin.set(POINT, value)

                    async def arrived(value=value):  # noqa: ANN001, ANN202
                        return await page.evaluate("(v) => window.__seen.find(([t, x]) => Math.abs(x - v) < 1e-3)?.[0] ?? null", value)

                    await _wait(lambda: arrived(), 5.0, f"value {value} on the page")
                    latencies.append(await arrived() - changed * 1000.0)
                await context.close()
                return latencies
        finally:
            await server.stop()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def main(samples: int, batches: list[int]) -> None:
    rows = []
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for batch_ms in batches:
                lat = await measure(samples, batch_ms, browser)
                rows.append((batch_ms, len(lat), statistics.median(lat), _p(lat, 0.99), min(lat), max(lat)))
        finally:
            await browser.close()
    print(f"\nHMI latency: field change (IEC 104 twin) → value on the overview page (headless Chromium), {samples} changes each")
    print(f"| live_batch_ms | samples | median ms | p99 ms | min ms | max ms |")
    print("|---:|---:|---:|---:|---:|---:|")
    for batch_ms, n, median, p99, low, high in rows:
        print(f"| {batch_ms} | {n} | {median:.0f} | {p99:.0f} | {low:.0f} | {high:.0f} |")


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    batch_list = [int(b) for b in sys.argv[2].split(",")] if len(sys.argv) > 2 else [150, 50]
    asyncio.run(main(count, batch_list))
