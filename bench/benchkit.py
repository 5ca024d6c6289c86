"""Shared set-up of the study benchmarks (bench/powerflow.py, bench/se.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from dms_hookspecs import MeasurementBatch, PointSpec, Source, SourceContext, hookimpl
from dms_kernel.kernel import Kernel
from dms_kernel.model import NetworkModel
from dms_kernel.model.scada import measurement_points
from dms_kernel.testing import build_kernel


class BenchSource(Source):
    """Declares the measurement points of the model :func:`bench_plugin` loaded; the bench loop
    publishes through :meth:`publish` (subclasses: ``scan()``)."""

    model: ClassVar[NetworkModel | None] = None  # set by bench_plugin when it loads the model

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(name, settings)
        self.context: SourceContext | None = None
        self.model = type(self).model
        self.rng = np.random.default_rng(7)

    def points(self) -> Sequence[PointSpec]:
        return measurement_points(self.model)

    def publish(self, values: np.ndarray) -> None:
        """One batch of ``values`` for the point numbers in ``self.numbers`` (good quality, now)."""
        size = values.size
        now = time.time()
        self.context.publish(MeasurementBatch(self.name, self.numbers, values, np.zeros(size, np.uint16), np.full(size, now), now))


def bench_plugin(source_type: type[BenchSource], scada_model: Callable[[str], NetworkModel]) -> type:
    """A plugin loading ``bench:<example>`` with ``scada_model(example)`` (stored as
    ``source_type.model``) and registering ``source_type`` as source type ``bench_scada``."""

    class plugin:  # noqa: N801 - a plugin object named like a module
        @staticmethod
        @hookimpl(tryfirst=True)
        def dms_load_model(location: str, base_dir: Any) -> NetworkModel | None:
            if not location.startswith("bench:"):
                return None
            source_type.model = scada_model(location.removeprefix("bench:"))
            return source_type.model

        @staticmethod
        @hookimpl
        def dms_add_source_types(registry: Any) -> None:
            registry.add("bench_scada", source_type)

    return plugin


async def start_bench_kernel(plugins: list[tuple[str, Any]], plugin: Any, size: int) -> tuple[Kernel, Any]:
    """A started kernel on ``radial_<size>`` (loaded by ``plugin``, see :func:`bench_plugin`, as
    ``bench:radial_<size>``) with its ``bench_scada`` source connected; returns ``(kernel, source)``."""
    kernel = build_kernel(
        *plugins,
        ("bench", plugin),
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
