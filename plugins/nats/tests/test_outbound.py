"""The pipelined publisher (:class:`dms_nats.bus.Outbound`): order, acks, go-back-N retries."""

from __future__ import annotations

import asyncio

import attrs
import nats

from nats_support import wait_for
from dms_nats.bus import Outbound
from dms_nats.connection import ensure_streams
from dms_nats.schema import Subjects


@attrs.frozen
class _Ack:
    stream: str
    seq: int
    duplicate: bool = False


class FakeJetStream:
    """Records what is sent; ``fail`` holds message ids whose next publish gets no ack."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.stored: list[str] = []
        self.fail: set[str] = set()
        self.pending: list[tuple[str, asyncio.Future]] = []

    async def publish_async(self, subject, data, wait_stall=None, headers=None):  # noqa: ANN001
        msg_id = headers["Nats-Msg-Id"]
        self.sent.append(msg_id)
        future = asyncio.get_running_loop().create_future()
        if msg_id in self.fail:
            self.fail.discard(msg_id)
            future.set_exception(nats.errors.TimeoutError())
        else:
            if msg_id not in self.stored:
                self.stored.append(msg_id)
            future.set_result(_Ack("S", self.stored.index(msg_id) + 1, msg_id in self.sent[:-1]))
        return future


async def test_pipelined_go_back_n_resends_unacknowledged_in_order_with_the_same_ids():
    js = FakeJetStream()
    js.fail = {"a:3"}
    outbound = Outbound(100, window=4, timeout_s=0.5)
    for n in range(1, 9):
        outbound.put("subj.a", b"x", f"a:{n}")
    task = asyncio.get_running_loop().create_task(outbound.run(js))
    try:
        await wait_for(lambda: outbound.idle, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # window of 4: 1-4 sent; 3 fails → the rest of the window settles (acked later ones are
    # counted as reordered), 3 is resent with its id, then the rest in order
    assert js.sent[:4] == ["a:1", "a:2", "a:3", "a:4"]
    retry = js.sent.index("a:3", 3)
    assert js.sent[retry + 1:] == [f"a:{n}" for n in range(int(js.sent[retry - 1][2:]) + 1, 9)]
    assert sorted(js.stored) == [f"a:{n}" for n in range(1, 9)]  # each stored once
    assert outbound.stats.delivered == 8 and outbound.stats.errors == 1
    assert outbound.reordered == len(js.sent[3:retry])

async def test_window_is_bounded_and_queue_limit_counts_in_flight():
    outbound = Outbound(3, window=2)
    assert all(outbound.put("s", b"", str(n)) for n in range(3))
    assert not outbound.put("s", b"", "4")
    assert outbound.stats.dropped == 1 and len(outbound) == 3


async def test_pipelined_publishes_are_stored_in_order_once(nats_env):
    client = await nats.connect(nats_env.url)
    js = client.jetstream()
    subjects = Subjects(nats_env.deployment, nats_env.prefix)
    await ensure_streams(js, subjects, {"retention_s": 600.0, "max_bytes": -1, "replicas": 1, "duplicate_window_s": 120.0})
    outbound = Outbound(10_000, window=64)
    count = 3000
    for n in range(count):
        outbound.put(subjects.meas("a" if n % 2 else "b"), n.to_bytes(4, "little"), f"fe:{n}")
    outbound.put(subjects.meas("a"), (1).to_bytes(4, "little"), "fe:1")  # a retry after a lost ack: stored once
    task = asyncio.get_running_loop().create_task(outbound.run(js))
    try:
        await wait_for(lambda: outbound.idle, timeout=20)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    info = await js.stream_info(subjects.meas_stream)
    assert info.state.messages == count
    subscription = await js.pull_subscribe(subjects.meas("a"), durable="check", stream=subjects.meas_stream)
    received = []
    while len(received) < count // 2:
        for message in await subscription.fetch(batch=500, timeout=2):
            received.append(int.from_bytes(message.data, "little"))
            await message.ack()
    await client.close()
    assert received == list(range(1, count, 2))
    assert outbound.stats.delivered == count + 1 and outbound.stats.errors == 0
