"""uvicorn serving the HMI inside the kernel's event loop."""

from __future__ import annotations

import asyncio
import logging
import socket
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

    def _bind(self) -> socket.socket:
        """Bind here, so that a busy port is a clear error (uvicorn would ``sys.exit``)."""
        host, port = self.web.settings.host, self.web.settings.port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise OSError(f"web HMI cannot listen on {host}:{port}: {exc.strerror or exc} (set [settings.web] port)") from None
        sock.listen(128)
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        try:
            await self.server.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn's startup failure must not end the kernel's process
            raise OSError(f"web HMI server failed to start (exit {exc.code})") from None

    async def start(self) -> None:
        sock = self._bind()
        self.port = sock.getsockname()[1]
        self.web.hub.start()
        self._task = asyncio.get_running_loop().create_task(self._serve(sock), name="web-hmi")
        while not self.server.started:
            if self._task.done():
                self.web.hub.stop()
                sock.close()
                self._task.result()
                raise OSError("web HMI server exited at start")
            await asyncio.sleep(0.01)
        log.info("web HMI on %s (%d users, %d API tokens)", self.url, len(self.web.users), len(self.web.settings.api_tokens))
        if self.web.settings.notice:
            log.warning("web HMI: %s", self.web.settings.notice)

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
