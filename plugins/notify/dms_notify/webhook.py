"""``webhook``: notifications as JSON posted to an HTTP endpoint (chat, ticketing, paging gateways)."""

from __future__ import annotations

from typing import Any

import httpx

from dms_hookspecs import REQUIRED, Notification, Notifier, Setting, SettingsSchema

__all__ = ["WebhookNotifier"]


class WebhookNotifier(Notifier):
    """Posts one JSON document per notification; any status outside 2xx raises (and is retried).

    The document: ``{"subject", "text", "alarm_id", "priority", "step", "alarm": {...}}`` where
    ``alarm`` holds the alarm's state, message, source, category, point and times.
    """

    settings_schema = SettingsSchema(
        (
            Setting("url", str, REQUIRED, "endpoint, http:// or https://"),
            Setting("method", str, "POST", "HTTP method", choices=("POST", "PUT")),
            Setting("headers", dict, {}, 'extra headers, e.g. { Authorization = "Bearer …" }'),
            Setting("timeout_s", float, 10.0, "connect and read timeout"),
            Setting("verify_tls", bool, True, "check the server certificate"),
        )
    )

    def __init__(self, name, settings):
        super().__init__(name, settings)
        url = httpx.URL(settings["url"])
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"url must be http:// or https:// with a host, got {settings['url']!r}")
        self._client: httpx.AsyncClient | None = None

    def document(self, notification: Notification) -> dict[str, Any]:
        return {
            "subject": notification.subject,
            "text": notification.body,
            "alarm_id": notification.alarm_id,
            "priority": notification.priority.name.lower(),
            "step": notification.step,
            "created": notification.created,
            "alarm": dict(notification.data),
        }

    async def send(self, notification: Notification) -> str:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.settings["timeout_s"], verify=self.settings["verify_tls"])
        response = await self._client.request(
            self.settings["method"], self.settings["url"], json=self.document(notification),
            headers={"User-Agent": "leitstand-notify", **self.settings["headers"]},
        )
        if not response.is_success:
            raise RuntimeError(f"{self.settings['method']} {self.settings['url']} answered HTTP {response.status_code} {response.reason_phrase}")
        return f"HTTP {response.status_code} from {self.settings['url']}"

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
