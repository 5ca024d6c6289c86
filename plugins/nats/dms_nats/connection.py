"""Settings of the ``nats`` plugin, the connection and the JetStream streams it needs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from nats.js.kv import KeyValue

from dms_hookspecs import Setting, SettingsSchema

from .schema import Subjects, token

__all__ = ["SETTINGS", "subjects_for", "connect", "close_client", "ensure_streams", "lease_bucket", "names_bucket"]

log = logging.getLogger("leitstand.nats")

SETTINGS = SettingsSchema(
    (
        Setting("url", str, "nats://127.0.0.1:4222", "NATS server URL(s), comma-separated"),
        Setting("stream_prefix", str, None, "prefix of stream and KV bucket names (default: LEITSTAND_<deployment>)"),
        Setting("deployment", str, None, "deployment token in subjects (default: the deployment name, sanitised)"),
        Setting("retention_s", float, 86400.0, "how long the streams keep messages (max age)"),
        Setting("max_bytes", int, -1, "size limit of each stream in bytes (-1: none); oldest messages go first"),
        Setting("replicas", int, 1, "stream replicas (3 in a NATS cluster)"),
        Setting("duplicate_window_s", float, 120.0, "JetStream de-duplication window (Nats-Msg-Id)"),
        Setting("outbound_queue", int, 10000, "messages a process may have waiting for the server before it drops"),
        Setting("publish_window", int, 256, "JetStream publishes in flight per process (acks awaited in order)"),
        Setting("fetch_batch", int, 256, "messages fetched per pull"),
        Setting("ack_wait_s", float, 10.0, "redelivery after this long without an ack"),
        Setting("lease_ttl_s", float, 2.0, "front-end lease: the standby takes over after this long without renewal"),
        Setting("lease_renew_s", float, 0.5, "front-end lease renewal period"),
    )
)


def subjects_for(settings: Mapping[str, Any], deployment_name: str) -> Subjects:
    dep = token(settings["deployment"] or deployment_name)
    return Subjects(dep, token(settings["stream_prefix"] or f"LEITSTAND_{dep}"))


async def connect(settings: Mapping[str, Any], name: str) -> Client:
    """Connect with endless reconnects (a front-end or core must outlive a NATS restart)."""
    servers = [url.strip() for url in settings["url"].split(",") if url.strip()]
    return await nats.connect(
        servers=servers,
        name=name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=2,
        allow_reconnect=True,
    )


async def close_client(client: Client, timeout_s: float = 5.0) -> None:
    """Flush what is in flight (acks, replies), bounded in time; close in any case."""
    try:
        await asyncio.wait_for(client.flush(timeout=max(1, int(timeout_s))), timeout=timeout_s)
    except Exception as exc:  # noqa: BLE001 - closing anyway
        log.debug("flush failed (%s); closing", exc)
    if not client.is_closed:
        await client.close()


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        info = await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("created stream %s (%s)", config.name, ", ".join(config.subjects or ()))
        return
    if list(info.config.subjects or ()) != list(config.subjects or ()):
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, subjects: Subjects, settings: Mapping[str, Any]) -> None:
    """Create (or update) the measurement and event streams of a deployment."""
    common: dict[str, Any] = {
        "retention": RetentionPolicy.LIMITS,
        "storage": StorageType.FILE,
        "max_age": settings["retention_s"],
        "max_bytes": settings["max_bytes"],
        "num_replicas": settings["replicas"],
        "duplicate_window": settings["duplicate_window_s"],
    }
    await _ensure_stream(js, StreamConfig(name=subjects.meas_stream, subjects=[f"{subjects.root}.meas.>"], **common))
    await _ensure_stream(js, StreamConfig(name=subjects.events_stream, subjects=[f"{subjects.root}.events.>"], **common))


async def _bucket(js: JetStreamContext, name: str, settings: Mapping[str, Any], ttl: float | None = None) -> KeyValue:
    """KV bucket ``name`` (one revision per key, file storage), created if missing."""
    try:
        return await js.key_value(name)
    except Exception:  # noqa: BLE001 - BucketNotFoundError or NotFoundError, by nats-py version
        options: dict[str, Any] = {"ttl": ttl} if ttl is not None else {}
        return await js.create_key_value(bucket=name, history=1, replicas=settings["replicas"], storage=StorageType.FILE, **options)


async def lease_bucket(js: JetStreamContext, subjects: Subjects, settings: Mapping[str, Any]) -> KeyValue:
    """The KV bucket of front-end leases (one key per group), created if missing."""
    return await _bucket(js, subjects.lease_bucket, settings, ttl=settings["lease_ttl_s"] * 5)


async def names_bucket(js: JetStreamContext, subjects: Subjects, settings: Mapping[str, Any]) -> KeyValue:
    """The KV bucket of names tables of packed measurement batches (no expiry), created if missing."""
    return await _bucket(js, subjects.names_bucket, settings)
