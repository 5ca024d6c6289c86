"""Live updates: the WebSocket ``/ws`` and the hub that batches changes for it.

The hub subscribes to the point database (all points) and to the bus (alarms, topology
changes). Point changes are collected and pushed every ``live_batch_ms`` to each client
that subscribed to the point. Messages (JSON):

* server → client: ``{"type": "hello", "user", "role"}``;
  ``{"type": "points", "points": [{"name", "value", "quality", "good", "time"}]}``;
  ``{"type": "alarm", "alarm": {...}}`` (an alarm event: the page refreshes its list);
  ``{"type": "topology", "energised", "deenergised", "switches", "islands", "time"}``.
* client → server: ``{"subscribe": ["S1/U", ...]}`` (adds; the current values are sent at
  once) or ``{"subscribe": "*"}`` (every point); ``{"unsubscribe": [...]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from dms_hookspecs import Alarm, TopologyChanged

__all__ = ["LiveHub", "websocket_endpoint"]

log = logging.getLogger("leitstand.web.live")
_QUEUE = 256


def _num(value: float) -> float | None:
    return None if not math.isfinite(value) else float(value)


def alarm_message(alarm: Alarm) -> dict[str, Any]:
    return {
        "type": "alarm",
        "alarm": {
            "id": alarm.id, "state": alarm.state.value, "priority": alarm.priority.name.lower(),
            "message": alarm.message, "source": alarm.source, "category": alarm.category,
            "point": str(alarm.point) if alarm.point else None, "time": alarm.time,
        },
    }


def topology_message(change: TopologyChanged) -> dict[str, Any]:
    return {"type": "topology", "energised": list(change.energised), "deenergised": list(change.deenergised),
            "switches": list(change.switches), "islands": change.islands, "time": change.time}


class LiveClient:
    def __init__(self, websocket: WebSocket, principal: Any, session_id: str | None) -> None:
        self.websocket = websocket
        self.principal = principal
        self.session_id = session_id
        self.all_points = False
        self.points: set[int] = set()
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(_QUEUE)

    def offer(self, message: dict[str, Any]) -> bool:
        try:
            self.queue.put_nowait(message)
            return True
        except asyncio.QueueFull:
            return False


class LiveHub:
    """Collects point changes and events; pushes them to the connected browsers in batches."""

    def __init__(self, web: Any) -> None:
        self.web = web
        self.kernel = web.kernel
        self.clients: set[LiveClient] = set()
        self._changed: list[np.ndarray] = []
        self._events: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._subscription: Any = None
        self._subscribed_bus = False
        self.sent_batches = 0

    # -- feeding -------------------------------------------------------------------------

    def start(self) -> None:
        self._subscription = self.kernel.points.subscribe(None, self._on_points)
        if not self._subscribed_bus:
            self.kernel.bus.subscribe("web-live", self._on_events, (Alarm, TopologyChanged), 10_000)
            self._subscribed_bus = True
        self._task = asyncio.get_running_loop().create_task(self._pump(), name="web-live")

    def stop(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None
        if self._task is not None:
            self._task.cancel()
            self._task = None

    def _on_points(self, changed: np.ndarray) -> None:
        if self.clients:
            self._changed.append(np.array(changed, dtype=np.int64, copy=True))

    async def _on_events(self, events: list[Any]) -> None:
        if not self.clients:
            return
        for event in events:
            if isinstance(event, Alarm):
                self._events.append(alarm_message(event))
            elif isinstance(event, TopologyChanged):
                self._events.append(topology_message(event))

    async def _pump(self) -> None:
        period = self.web.settings.live_batch_ms / 1000.0
        last_check = time.monotonic()
        while True:
            await asyncio.sleep(period)
            try:
                self.flush()
                if time.monotonic() - last_check > 5.0:
                    last_check = time.monotonic()
                    self._drop_expired()
            except Exception:  # noqa: BLE001 - the pump must keep running
                log.exception("live update failed")

    def flush(self) -> None:
        """Push what was collected since the last flush."""
        changed, self._changed = self._changed, []
        events, self._events = self._events, []
        if not self.clients:
            return
        points = np.unique(np.concatenate(changed)) if changed else np.empty(0, np.int64)
        table = self._rows(points) if points.size else {}
        for client in list(self.clients):
            if table:
                rows = list(table.values()) if client.all_points else [table[n] for n in client.points.intersection(table)]
                if rows and not client.offer({"type": "points", "points": rows}):
                    self._slow(client)
                    continue
            for message in events:
                if not client.offer(message):
                    self._slow(client)
                    break
        self.sent_batches += 1

    def _rows(self, numbers: np.ndarray) -> dict[int, dict[str, Any]]:
        database = self.kernel.points
        values = database.values(numbers)
        quality = database.quality(numbers)
        source_time = database._source_time[numbers]
        names = database.names_of(numbers)
        return {
            int(n): {"name": str(name), "value": _num(v), "quality": int(q), "good": int(q) == 0, "time": _num(t)}
            for n, name, v, q, t in zip(numbers.tolist(), names, values.tolist(), quality.tolist(), source_time.tolist(), strict=True)
        }

    def _slow(self, client: LiveClient) -> None:
        log.warning("live client %s cannot keep up; disconnecting it", client.principal.name)
        self.clients.discard(client)
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(None)

    def _drop_expired(self) -> None:
        store = self.web.sessions
        for client in list(self.clients):
            if client.session_id is not None and not store.alive(client.session_id):
                self.clients.discard(client)
                with contextlib.suppress(asyncio.QueueFull):
                    client.queue.put_nowait(None)

    async def close_all(self) -> None:
        for client in list(self.clients):
            self.clients.discard(client)
            with contextlib.suppress(Exception):
                await client.websocket.close(1001)

    # -- clients -------------------------------------------------------------------------

    def subscribe(self, client: LiveClient, names: Any) -> dict[str, Any]:
        if names == "*":
            client.all_points = True
            numbers = np.arange(len(self.kernel.points), dtype=np.int64)
            return {"type": "points", "points": list(self._rows(numbers[:5000]).values()), "unknown": []}
        known, unknown = [], []
        database = self.kernel.points
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name in database:
                known.append(database.number(name))
            else:
                unknown.append(str(name)[:200])
        client.points.update(known)
        rows = self._rows(np.array(sorted(set(known)), dtype=np.int64)) if known else {}
        return {"type": "points", "points": list(rows.values()), "unknown": unknown[:100]}

    def unsubscribe(self, client: LiveClient, names: Any) -> None:
        database = self.kernel.points
        for name in names if isinstance(names, list) else []:
            if isinstance(name, str) and name in database:
                client.points.discard(database.number(name))


async def websocket_endpoint(websocket: WebSocket) -> None:
    state = websocket.scope.get("state", {})
    principal, session = state.get("principal"), state.get("session")
    hub: LiveHub = websocket.app.state.web.hub
    if principal is None or hub is None:
        await websocket.close(4401)
        return
    await websocket.accept()
    client = LiveClient(websocket, principal, session.id if session else None)
    hub.clients.add(client)
    await websocket.send_json({"type": "hello", "user": principal.name, "role": principal.role.label})

    async def writer() -> None:
        while True:
            message = await client.queue.get()
            if message is None:
                await websocket.close(1008)
                return
            await websocket.send_json(message)

    sender = asyncio.get_running_loop().create_task(writer())
    try:
        while True:
            try:
                request = await websocket.receive_json()
            except (ValueError, KeyError):
                continue
            if not isinstance(request, dict):
                continue
            if "subscribe" in request:
                client.offer(hub.subscribe(client, request["subscribe"]))
            if "unsubscribe" in request:
                hub.unsubscribe(client, request["unsubscribe"])
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        hub.clients.discard(client)
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
