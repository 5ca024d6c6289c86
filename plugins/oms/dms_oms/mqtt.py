"""AMI head-end ingest over MQTT: JSON meter events on a topic.

Each message is one JSON object (or a list of them)::

    {"meter": "M-1042", "event": "last_gasp", "time": "2024-05-15T10:00:03Z"}
    {"meter": "M-1042", "event": "power_restore", "time": 1715767500.0}

``event``: ``last_gasp`` (also ``power_fail``, ``power_down``) or ``power_restore`` (also
``power_up``); ``time``: when it happened, epoch seconds or ISO 8601 (default: receive time).
Malformed messages are counted and logged, never fatal. The client reconnects with backoff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from .engine import EventKind

__all__ = ["parse_message", "MqttIngest"]

log = logging.getLogger("leitstand.oms.mqtt")


def _time(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        stamp = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    raise ValueError(f"time {value!r} is neither epoch seconds nor ISO 8601")


def parse_message(payload: bytes | str) -> list[tuple[str, EventKind, float | None]]:
    """``[(meter, kind, time or None)]`` from one message. :raises ValueError: malformed."""
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not JSON: {exc}") from None
    items = data if isinstance(data, list) else [data]
    events = []
    for item in items:
        if not isinstance(item, dict):
            raise ValueError(f"expected an object with meter and event, got {item!r:.80}")
        meter, kind = item.get("meter"), item.get("event")
        if not isinstance(meter, str) or not meter:
            raise ValueError(f"missing or empty 'meter' in {item!r:.80}")
        if not isinstance(kind, str):
            raise ValueError(f"missing 'event' in {item!r:.80}")
        events.append((meter, EventKind.parse(kind), _time(item.get("time"))))
    return events


class MqttIngest:
    """Subscribes to ``topic`` on the broker and hands every event to ``deliver(meter, kind, time)``."""

    def __init__(
        self,
        deliver: Callable[[str, EventKind, float | None], Any],
        *,
        host: str,
        port: int = 1883,
        topic: str = "leitstand/ami/events",
        username: str = "",
        password: str = "",
        client_id: str = "",
        reconnect_max_s: float = 30.0,
    ) -> None:
        self.deliver = deliver
        self.host, self.port, self.topic = host, port, topic
        self.username, self.password, self.client_id = username, password, client_id
        self.reconnect_max_s = reconnect_max_s
        self.connected = asyncio.Event()
        self.messages = 0
        self.malformed = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"oms:mqtt:{self.host}:{self.port}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def handle(self, payload: bytes | str) -> int:
        """Deliver one message's events; returns how many (0 if malformed)."""
        self.messages += 1
        try:
            events = parse_message(payload)
        except ValueError as exc:
            self.malformed += 1
            log.warning("oms: malformed AMI message on %s ignored: %s", self.topic, exc)
            return 0
        for meter, kind, when in events:
            self.deliver(meter, kind, when)
        return len(events)

    async def _run(self) -> None:
        import aiomqtt

        backoff = 0.5
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, username=self.username or None, password=self.password or None,
                    identifier=self.client_id or None,
                ) as client:
                    await client.subscribe(self.topic, qos=1)
                    log.info("oms: AMI head-end messages from mqtt://%s:%d/%s", self.host, self.port, self.topic)
                    self.connected.set()
                    backoff = 0.5
                    async for message in client.messages:
                        self.handle(message.payload)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - aiomqtt.MqttError, OSError: reconnect
                self.connected.clear()
                log.warning("oms: MQTT broker %s:%d: %s; reconnecting in %.1f s", self.host, self.port, exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.reconnect_max_s)
