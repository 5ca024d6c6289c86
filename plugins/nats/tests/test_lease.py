"""The group lease on the real JetStream KV: one holder, takeover with a higher term, the old holder learns it lost."""

from __future__ import annotations

import asyncio
import time

import nats
import pytest

from dms_nats.connection import lease_bucket
from dms_nats.lease import Lease, LeaseLost
from dms_nats.schema import Subjects

from subprocess_helpers import run_leitstand

SETTINGS = {"lease_ttl_s": 1.0, "replicas": 1}


async def test_one_holder_takeover_with_higher_term_and_old_holder_loses(nats_env):
    client = await nats.connect(nats_env.url)
    try:
        kv = await lease_bucket(client.jetstream(), Subjects(nats_env.deployment, nats_env.prefix), SETTINGS)
        first = Lease(kv, "north", "fe-a", ttl_s=1.0, renew_s=0.25)
        second = Lease(kv, "north", "fe-b", ttl_s=1.0, renew_s=0.25)
        term_a = await first.acquire()
        keeper = asyncio.create_task(first.keep())
        waiting = asyncio.create_task(second.acquire())
        await asyncio.sleep(2.0)
        assert not waiting.done(), "the standby took a lease that was being renewed"
        keeper.cancel()  # the active one hangs: no more renewals
        stopped = time.monotonic()
        term_b = await asyncio.wait_for(waiting, timeout=5)
        assert 0.7 < time.monotonic() - stopped < 2.5  # ttl after the last renewal it saw (up to renew_s before the hang)
        assert term_b > term_a
        with pytest.raises(LeaseLost, match="taken over"):
            await asyncio.wait_for(first.keep(), timeout=5)  # it wakes up: its next renewal fails
        await second.release()
        third = Lease(kv, "north", "fe-c", ttl_s=1.0, renew_s=0.25)
        started = time.monotonic()
        assert await asyncio.wait_for(third.acquire(), timeout=2) > term_b  # released: taken at once
        assert time.monotonic() - started < 0.5
    finally:
        await client.close()


def test_frontend_with_unknown_group_is_a_user_error(nats_env, tmp_path):
    path = tmp_path / "deployment.toml"
    path.write_text(nats_env.toml('[[sources]]\nname = "rtu"\ntype = "random_walk"\ngroup = "north"\nsettings = { points = 1 }'))
    result = run_leitstand(["frontend", str(path), "--group", "south"], timeout=60)
    assert result.returncode == 2, result.stderr
    assert "no source has group 'south' (groups: north)" in result.stderr
