"""Fixtures for the SQL historian tests: polling helper, SQLite URL, PostgreSQL schema, TCP proxy."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url


Waiter = Callable[..., Awaitable[None]]


@pytest.fixture
def wait_until() -> Waiter:
    """``await wait_until(condition, timeout_s=5)``: poll ``condition()`` while the kernel runs."""

    async def wait(condition: Callable[[], object], timeout_s: float = 5.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
            await asyncio.sleep(0.02)

    return wait


@pytest.fixture
def sqlite_db(tmp_path: Path) -> tuple[Path, str]:
    """``(path, url)`` of a SQLite database in a directory that does not exist yet."""
    path = tmp_path / "var" / "historian.db"
    return path, f"sqlite:///{path}"


@pytest.fixture
def postgres(postgres_schema: tuple[str, str]) -> tuple[str, str]:
    """``(url, schema)``: the shipped ``postgres_schema`` fixture (``dms_kernel.testing``)."""
    return postgres_schema


class TcpProxy:
    """Forwards connections from ``127.0.0.1:port`` to ``target``; :meth:`stop` refuses new
    connections and cuts the open ones, :meth:`start` serves again on the same port."""

    def __init__(self, target_host: str, target_port: int, port: int = 0) -> None:
        self.target = (target_host, target_port)
        self.port = port
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def pg_proxy(postgres) -> Iterator[tuple[TcpProxy, str]]:
    """``(proxy, url)``: a started :class:`TcpProxy` to the test PostgreSQL and the database URL through it."""
    target = make_url(postgres[0])
    proxy = TcpProxy(target.host or "127.0.0.1", target.port or 5432).start()
    try:
        yield proxy, target.set(port=proxy.port).render_as_string(hide_password=False)
    finally:
        proxy.stop()
