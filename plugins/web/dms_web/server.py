"""uvicorn serving the HMI inside the kernel's event loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import uvicorn

from .app import create_app
from .context import WebContext
from .live import LiveHub
from .settings import WebSettings

__all__ = ["WebServer"]

log = logging.getLogger("leitstand.web")


class WebServer:
    """The HMI of one kernel: ``await start()`` in ``dms_startup``, ``await stop()`` in ``dms_shutdown``."""

    def __init__(self, kernel: Any, settings: WebSettings) -> None:
        self.web = WebContext(kernel, settings)
        self.web.hub = LiveHub(self.web)
        self.app = create_app(self.web)
        config = uvicorn.Config(
            self.app, host=settings.host, port=settings.port, log_level="warning", lifespan="off",
            ssl_certfile=settings.tls_certfile, ssl_keyfile=settings.tls_keyfile, ws="websockets-sansio", proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.web.settings.tls else "http"
        return f"{scheme}://{self.web.settings.host}:{self.port}"

    async def start(self) -> None:
        self.web.hub.start()
        self._task = asyncio.get_running_loop().create_task(self.server.serve(), name="web-hmi")
        while not self.server.started:
            if self._task.done():
                self.web.hub.stop()
                exc = self._task.exception() if not self._task.cancelled() else None
                raise OSError(f"web HMI could not listen on {self.web.settings.host}:{self.web.settings.port}: {exc or 'server exited'}")
            await asyncio.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        log.info("web HMI on %s (%d users, %d API tokens)", self.url, len(self.web.users), len(self.web.settings.api_tokens))

    async def stop(self) -> None:
        self.web.hub.stop()
        await self.web.hub.close_all()
        self.server.should_exit = True
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.gather(self._task, return_exceptions=True), 5.0)
            except TimeoutError:
                self.server.force_exit = True
                self._task.cancel()
