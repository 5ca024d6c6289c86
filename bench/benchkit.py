"""Shared set-up of the study benchmarks (bench/powerflow.py, bench/se.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from dms_kernel.kernel import Kernel
from dms_kernel.testing import build_kernel


async def start_bench_kernel(plugins: list[tuple[str, Any]], bench_plugin: Any, size: int) -> tuple[Kernel, Any]:
    """A started kernel on ``radial_<size>`` (loaded by ``bench_plugin`` as ``bench:radial_<size>``)
    with its ``bench_scada`` source connected; returns ``(kernel, source)``."""
    kernel = build_kernel(
        *plugins,
        ("bench", bench_plugin),
        deployment={
            "deployment": {"name": "bench", "model": f"bench:radial_{size}"},
            "sources": [{"name": "scada", "type": "bench_scada"}],
        },
    )
    await kernel.start()
    source = kernel.sources["scada"]
    while source.context is None:
        await asyncio.sleep(0)
    return kernel, source
