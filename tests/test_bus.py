"""Bounded queues: a slow sink drops (counted, alarmed) and never blocks ingest."""

from __future__ import annotations

import asyncio
import time

import plugins_for_tests as p
from dms_hookspecs import Alarm, MeasurementBatch
from dms_kernel.bus import InProcessBus


async def test_slow_subscriber_drops_and_is_counted():
    overflow = []
    bus = InProcessBus(on_overflow=lambda name, dropped: overflow.append((name, dropped)))
    received = []

    async def slow(events):
        await asyncio.sleep(0.05)
        received.extend(events)

    bus.subscribe("slow", slow, (int,), maxsize=10)
    await bus.start()
    started = time.perf_counter()
    for n in range(1000):
        bus.publish(n)
    publishing_took = time.perf_counter() - started
    await bus.stop()
    stats = bus.stats()["slow"]
    assert publishing_took < 0.5  # never waits for the subscriber
    assert stats.dropped == 990
    assert stats.delivered == len(received) == 10
    assert received == list(range(10))  # oldest kept, order preserved
    assert overflow == [("slow", 1)]  # alarmed once per episode


async def test_failing_subscriber_does_not_stop_delivery():
    failures = []
    bus = InProcessBus(on_error=lambda name, exc: failures.append((name, str(exc))))
    good = []
    calls = 0

    async def broken(events):
        nonlocal calls
        calls += 1
        raise RuntimeError("disk full")

    async def fine(events):
        good.extend(events)

    bus.subscribe("broken", broken, (str,), 100)
    bus.subscribe("fine", fine, (str,), 100)
    await bus.start()
    for text in "abc":
        bus.publish(text)
        await asyncio.sleep(0.01)
    await bus.stop()
    assert good == ["a", "b", "c"]
    assert bus.stats()["broken"].errors == calls == 3
    assert failures == [("broken", "disk full")]  # reported once per failure episode


async def test_type_filtering():
    bus = InProcessBus()
    got = []

    async def handler(events):
        got.extend(events)

    bus.subscribe("ints", handler, (int,), 10)
    await bus.start()
    bus.publish("text")
    bus.publish(5)
    await bus.stop()
    assert got == [5]
    assert not bus.wants(float)


async def test_slow_sink_in_kernel_raises_alarm_on_other_sink(make_kernel):
    text = p.deployment(sinks="queue_size = 5\nsettings = { delay_s = 0.2 }") + '[[sinks]]\nname = "fast"\ntype = "list"\n'
    kernel = make_kernel(p.test_types, deployment=text)
    async with kernel:
        source = p.ManualSource.instances["rtu"]
        await source.ready.wait()
        started = time.perf_counter()
        for n in range(200):
            source.publish([float(n), float(n), float(n)])
        ingest_took = time.perf_counter() - started
        assert kernel.points.read("rtu/P2").value == 199.0
        await asyncio.sleep(0.05)
    assert ingest_took < 1.0
    stats = kernel.bus.stats()
    assert stats["sink:log"].dropped > 150
    assert stats["sink:fast"].dropped == 0
    fast = p.ListSink.instances["fast"]
    assert len(fast.of_type(MeasurementBatch)) == 200
    alarms = [a for a in fast.of_type(Alarm) if a.category == "bus-overflow"]
    assert len(alarms) == 1 and "sink:log cannot keep up" in alarms[0].message
