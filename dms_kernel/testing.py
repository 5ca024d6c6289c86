"""pytest plugin shipped with the kernel: a fresh kernel per test, and a hook-call recorder.

Installed with ``leitstand`` (entry point ``pytest11``), so plugin authors get the fixtures
without configuration::

    async def test_my_source(make_kernel):
        kernel = make_kernel(my_plugin, deployment='''
            [deployment]
            name = "t"
            [[sources]]
            name = "rtu"
            type = "my_rtu"
        ''')
        async with kernel:
            ...

Every kernel has its own plugin manager: nothing leaks between tests. A test that feeds values
itself subclasses :class:`PublishingSource` and registers it with :func:`source_plugin`.
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import textwrap
import time
import tomllib
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import attrs
import numpy as np
import pytest

from dms_hookspecs import MeasurementBatch, PointSpec, Source, SourceContext, hookimpl

from .config import Deployment, parse_deployment
from .host import PluginHost
from .kernel import Kernel

__all__ = [
    "HookCall",
    "HookRecorder",
    "make_kernel",
    "KernelFactory",
    "build_kernel",
    "PublishingSource",
    "source_plugin",
    "free_port",
    "wait_until",
]


@attrs.frozen
class HookCall:
    """One recorded hook call."""

    name: str
    kwargs: Mapping[str, Any]


class HookRecorder:
    """Records every hook call of one plugin host (after pytest's ``HookRecorder``)."""

    def __init__(self) -> None:
        self.calls: list[HookCall] = []

    def __call__(self, name: str, kwargs: dict[str, Any]) -> None:
        self.calls.append(HookCall(name, dict(kwargs)))

    def names(self) -> list[str]:
        """Hook names in call order."""
        return [call.name for call in self.calls]

    def get(self, name: str) -> list[HookCall]:
        """All calls of one hook."""
        return [call for call in self.calls if call.name == name]

    def assert_called(self, name: str, times: int | None = None) -> list[HookCall]:
        calls = self.get(name)
        assert calls, f"hook {name!r} was not called; called: {sorted(set(self.names()))}"
        if times is not None:
            assert len(calls) == times, f"hook {name!r} called {len(calls)} times, expected {times}"
        return calls


def _as_deployment(deployment: str | Mapping[str, Any] | Deployment | None, base: Path | None) -> Deployment | None:
    if deployment is None or isinstance(deployment, Deployment):
        return deployment
    if isinstance(deployment, str):
        deployment = tomllib.loads(textwrap.dedent(deployment))
    return parse_deployment(deployment, "<test deployment>", base)


def build_kernel(
    *plugins: object,
    deployment: str | Mapping[str, Any] | Deployment | None = None,
    entry_points: bool = False,
    recorder: HookRecorder | None = None,
    base: Path | None = None,
) -> Kernel:
    """A kernel with exactly the given plugins (and entry points if asked).

    :param plugins: plugin modules/objects, or ``(name, plugin)`` pairs.
    :param deployment: TOML text, a parsed mapping, or a :class:`Deployment`.
    :param entry_points: also load the installed ``dms.plugins`` entry points.
    :param recorder: records every hook call.
    """
    config = _as_deployment(deployment, base)
    pairs = [p if isinstance(p, tuple) else (getattr(p, "__name__", repr(p)), p) for p in plugins]
    host = PluginHost(
        pairs,
        load_entry_points=entry_points,
        blocked=config.disable if config else (),
        enabled=config.enable if config else None,
    )
    if recorder is not None:
        host.add_listener(recorder)
    return Kernel(config, host=host)


KernelFactory = Callable[..., Kernel]


class PublishingSource(Source):
    """A source the test drives: it declares :meth:`declare_points` and publishes what the test
    hands to :meth:`publish` (good quality, stamped now).

    Each subclass keeps its instances by source name in its own ``instances``::

        class ScadaSource(PublishingSource):
            def declare_points(self):
                return measurement_points(my_model())

        kernel = make_kernel(source_plugin("scada", ScadaSource), deployment=...)
        async with kernel:
            source = await ScadaSource.running("scada")
            source.publish({"T1/P": 12.5})
    """

    instances: ClassVar[dict[str, Any]] = {}
    context: SourceContext

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.instances = {}

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(name, settings)
        self.specs = self.declare_points()
        self.ready = asyncio.Event()
        type(self).instances[name] = self

    @abc.abstractmethod
    def declare_points(self) -> Sequence[PointSpec]:
        """The points of this source (``self.settings`` holds its validated settings)."""

    def points(self) -> Sequence[PointSpec]:
        return self.specs

    async def run(self, context: SourceContext) -> None:
        self.context = context
        self.ready.set()
        await asyncio.Event().wait()

    @classmethod
    async def running(cls, name: str) -> Self:
        """The instance named ``name``, once the kernel runs it (it may then :meth:`publish`)."""
        source = cls.instances[name]
        await source.ready.wait()
        return source

    def publish(self, values: Mapping[str, float]) -> None:
        """Publish ``{point name: value}`` as one batch."""
        names = list(values)
        numbers = np.asarray(self.context.point_numbers(names))
        count = len(names)
        self.context.publish(
            MeasurementBatch(
                self.name,
                numbers,
                np.array([values[n] for n in names], float),
                np.zeros(count, np.uint16),
                np.full(count, time.time()),
            )
        )


def source_plugin(type_name: str, source_type: type[Source]) -> type:
    """A plugin (for ``make_kernel``) that registers ``source_type`` as source type ``type_name``;
    its name is ``<type_name>_source``."""

    class plugin:  # noqa: N801 - a plugin object named like a module
        @staticmethod
        @hookimpl
        def dms_add_source_types(registry: Any) -> None:
            registry.add(type_name, source_type)

    plugin.__name__ = plugin.__qualname__ = f"{type_name}_source"
    return plugin


@pytest.fixture
def hook_recorder() -> HookRecorder:
    """A fresh :class:`HookRecorder`; pass it to ``make_kernel(recorder=...)``."""
    return HookRecorder()


@pytest.fixture
def make_kernel(tmp_path: Path) -> Iterator[KernelFactory]:
    """Factory for fresh kernels: ``make_kernel(*plugins, deployment=..., entry_points=False)``.

    The deployment's ``model`` path resolves against the test's ``tmp_path``; paths inside
    source and sink settings resolve against the working directory (use absolute paths).
    """

    def factory(*plugins: object, **kwargs: Any) -> Kernel:
        kwargs.setdefault("base", tmp_path)
        return build_kernel(*plugins, **kwargs)

    yield factory


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now (for a test server)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "condition") -> float:
    """Poll ``predicate`` every 10 ms; returns the time it took. Fails the test on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what} not reached within {timeout} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - started


#: the PostgreSQL database the tests use (``LEITSTAND_TEST_POSTGRES_URL`` overrides it)
POSTGRES_URL = os.environ.get("LEITSTAND_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_schema() -> Iterator[tuple[str, str]]:
    """``(url, schema)``: the test PostgreSQL database and a fresh schema name, dropped (cascade)
    after the test. Needs SQLAlchemy and a PostgreSQL driver (a historian plugin brings them).

    Skips if PostgreSQL is not reachable, unless ``CI=true``: then the test fails.
    """
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.schema import DropSchema

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
