"""TLS for the source side: a private loopback tunnel in front of c104's plain TCP client.

c104 2.2.1's TLS *client* cannot connect to anything: its bundled mbedtls (3.6.3+) refuses a
verifying handshake without a server host name (``-0x5D80``) and the release has no way to set
one. The source therefore lets c104 talk plain IEC 104 to a listener on 127.0.0.1 (ephemeral
port, one connection) and forwards the bytes over a TLS connection made with Python's ``ssl``
(OpenSSL): full chain and host name verification, client certificate, optional certificate
pinning. Only bytes are forwarded; c104 still does all of the IEC 104 protocol.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .tls import TlsConfigError

__all__ = ["client_ssl_context", "TlsTunnel"]


def client_ssl_context(settings: Mapping[str, Any]) -> tuple[ssl.SSLContext, set[bytes]]:
    """SSL context and pinned peer certificates (DER) from the ``tls*`` settings."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    validate = bool(settings.get("tls_validate", True))
    if settings.get("tls_ca"):
        try:
            context.load_verify_locations(cafile=settings["tls_ca"])
        except (OSError, ssl.SSLError):
            raise TlsConfigError(f"tls_ca: cannot load CA certificate {settings['tls_ca']!r}") from None
    elif validate:
        context.load_default_certs()
    if not validate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings.get("tls_cert"):
        try:
            context.load_cert_chain(settings["tls_cert"], settings.get("tls_key") or None, password=settings.get("tls_key_passphrase") or None)
        except (OSError, ssl.SSLError):
            raise TlsConfigError("tls_cert/tls_key: cannot load the certificate or decrypt the private key") from None
    pinned: set[bytes] = set()
    for path in settings.get("tls_peer_certs") or ():
        try:
            pinned.add(ssl.PEM_cert_to_DER_cert(Path(path).read_text(encoding="ascii")))
        except (OSError, ValueError):
            raise TlsConfigError(f"tls_peer_certs: cannot load certificate {str(path)!r}") from None
    return context, pinned


class TlsTunnel:
    """Forwards one local plain connection (from c104) to ``host:port`` over TLS."""

    def __init__(self, host: str, port: int, settings: Mapping[str, Any], timeout_s: float, log: logging.Logger) -> None:
        self.host, self.port = host, port
        self.server_name = settings.get("tls_server_name") or host
        self.context, self.pinned = client_ssl_context(settings)
        self.only_known = bool(settings.get("tls_only_known"))
        self.timeout_s = timeout_s
        self.log = log
        self.failure: str | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> int:
        """Listen on 127.0.0.1 and return the port c104 should connect to."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in self._writers:
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, local_reader: asyncio.StreamReader, local_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        self._writers.append(local_writer)
        try:
            try:
                remote_reader, remote_writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.context, server_hostname=self.server_name), self.timeout_s
                )
            except (OSError, ssl.SSLError, TimeoutError) as exc:
                self.failure = f"TLS connection to {self.host}:{self.port} failed: {type(exc).__name__}: {exc}"
                self.log.warning("iec104 %s", self.failure)
                return
            self._writers.append(remote_writer)
            if self.only_known:
                peer = remote_writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
                if peer not in self.pinned:
                    self.failure = f"TLS peer {self.host}:{self.port} presented a certificate not in tls_peer_certs"
                    self.log.warning("iec104 %s", self.failure)
                    remote_writer.close()
                    return
            self.failure = None
            version = remote_writer.get_extra_info("ssl_object").version()
            self.log.info("iec104 TLS to %s:%d established (%s)", self.host, self.port, version)
            await asyncio.gather(self._pump(local_reader, remote_writer), self._pump(remote_reader, local_writer), return_exceptions=True)
        finally:
            local_writer.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (OSError, ssl.SSLError):
            pass
        finally:
            writer.close()
