"""An asyncio DLMS/COSEM client connection: gurux-dlms' ``GXDLMSSecureClient`` builds and parses
every frame (WRAPPER, logical name referencing); this module only moves bytes over an asyncio
TCP connection, with timeouts, and follows block transfer.

Everything a peer sends is decoded by the library; a reply the library cannot decode, a frame
that never completes, more than ``max_frame_bytes`` buffered, or no answer within the request
timeout raise :class:`DlmsError` subclasses — the caller drops the connection and reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from gurux_dlms import GXByteBuffer, GXReplyData
from gurux_dlms.enums import Authentication, InterfaceType
from gurux_dlms.secure import GXDLMSSecureClient

__all__ = ["DlmsClient", "DlmsError", "DlmsTimeout", "DlmsProtocolError", "DlmsAccessError", "DlmsLinkLost"]


class DlmsError(Exception):
    """A DLMS exchange failed."""


class DlmsTimeout(DlmsError):
    """The meter did not answer in time."""


class DlmsLinkLost(DlmsError):
    """The TCP connection closed."""


class DlmsProtocolError(DlmsError):
    """The peer sent something the library cannot decode, or too much of it."""


class DlmsAccessError(DlmsError):
    """The meter answered with a data-access-result / action-result other than success."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class _Link(asyncio.Protocol):
    """Bytes in, connection state; no decoding here."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.arrived = asyncio.Event()
        self.lost = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.arrived.set()

    def eof_received(self):
        return False  # close

    def connection_lost(self, exc) -> None:
        self.lost.set()
        self.arrived.set()


class DlmsClient:
    """One association with one meter.

    :param password: low-level-security (LLS) password; empty means no authentication. It is
        handed to the library only and never logged or put in an exception message.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_address: int = 16,
        server_address: int = 1,
        password: str = "",
        connect_timeout_s: float = 3.0,
        request_timeout_s: float = 3.0,
        max_frame_bytes: int = 1 << 20,
        log: logging.Logger | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.peer = f"{host}:{port}"
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.max_frame_bytes = max_frame_bytes
        self.log = log or logging.getLogger("leitstand.dlms")
        self.codec = GXDLMSSecureClient(
            True,
            client_address,
            server_address,
            Authentication.LOW if password else Authentication.NONE,
            password or None,
            InterfaceType.WRAPPER,
        )
        self._link: _Link | None = None
        self._busy = asyncio.Lock()  # one request at a time (polling and commands share the association)

    # -- connection ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._link is not None and not self._link.lost.is_set()

    @property
    def lost(self) -> asyncio.Event:
        """Set when the TCP connection closes (wait on it between polls)."""
        if self._link is None:
            closed = asyncio.Event()
            closed.set()
            return closed
        return self._link.lost

    async def connect(self) -> None:
        """Open TCP and associate (AARQ/AARE). :raises DlmsError, OSError."""
        loop = asyncio.get_running_loop()
        try:
            _, self._link = await asyncio.wait_for(
                loop.create_connection(_Link, self.host, self.port), self.connect_timeout_s
            )
        except TimeoutError:
            raise DlmsTimeout(f"connect to {self.peer} timed out after {self.connect_timeout_s} s") from None
        reply = GXReplyData()
        for frame in _frames(self.codec.aarqRequest()):
            reply.clear()
            await self._exchange(frame, reply)
        try:
            self.codec.parseAareResponse(reply.data)
        except Exception as exc:  # noqa: BLE001 - gurux raises GXDLMSException / ValueError
            raise DlmsError(f"{self.peer} refused the association: {exc}") from None

    async def close(self, release: bool = True) -> None:
        """Release the association (best effort, short timeout) and close TCP."""
        link, self._link = self._link, None
        if link is None:
            return
        link.buffer.clear()  # e.g. the reply of a poll cancelled at shutdown
        if release and not link.lost.is_set() and not self._busy.locked():
            self._link = link
            try:
                saved, self.request_timeout_s = self.request_timeout_s, min(self.request_timeout_s, 0.5)
                try:
                    reply = GXReplyData()
                    for frame in _frames(self.codec.releaseRequest()):
                        reply.clear()
                        await self._exchange(frame, reply)
                finally:
                    self.request_timeout_s = saved
            except (DlmsError, OSError):
                pass
            self._link = None
        if link.transport is not None:
            link.transport.close()

    # -- services -------------------------------------------------------------------------------

    async def read_object_list(self):
        """Read the association view (attribute 2 of the current association) into ``codec.objects``."""
        async with self._busy:
            return await self._read_object_list()

    async def _read_object_list(self):
        reply = GXReplyData()
        for frame in _frames(self.codec.getObjectsRequest()):
            reply.clear()
            await self._exchange(frame, reply)
        try:
            return self.codec.parseObjects(reply.data, True)
        except Exception as exc:  # noqa: BLE001
            raise DlmsProtocolError(f"{self.peer}: malformed association view: {exc}") from None

    async def read(self, target, attribute: int) -> Any:
        """Read one attribute into ``target``; returns the (library-converted) value."""
        async with self._busy:
            return await self._read(target, attribute)

    async def _read(self, target, attribute: int) -> Any:
        reply = GXReplyData()
        for frame in _frames(self.codec.read(target, attribute)):
            reply.clear()
            await self._exchange(frame, reply)
        self._check(reply, f"{target.logicalName}:{attribute}")
        return self._update(target, attribute, reply.value)

    async def read_list(self, items: Sequence[tuple[Any, int]]) -> list[Any | DlmsAccessError]:
        """Read several attributes at once; per item the value or the access error."""
        async with self._busy:
            return await self._read_list(items)

    async def _read_list(self, items: Sequence[tuple[Any, int]]) -> list[Any | DlmsAccessError]:
        if not items:
            return []
        values: list[Any] = []
        for frame in _frames(self.codec.readList(list(items))):
            reply = GXReplyData()
            await self._exchange(frame, reply)
            if reply.value is None and reply.error:
                raise DlmsAccessError(f"{self.peer}: read failed with result {reply.error}", int(reply.error))
            values.extend(reply.value or ())
        if len(values) != len(items):
            raise DlmsProtocolError(f"{self.peer}: asked for {len(items)} values, got {len(values)}")
        results: list[Any | DlmsAccessError] = []
        for (target, attribute), value in zip(items, values, strict=True):
            if value is None:
                results.append(DlmsAccessError(f"{target.logicalName}:{attribute} not readable", 0))
            else:
                results.append(self._update(target, attribute, value))
        return results

    async def read_rows_by_range(self, profile, start, end) -> list[list[Any]]:
        """Rows of a profile whose first (clock) column lies in ``[start, end]``."""
        async with self._busy:
            return await self._read_rows_by_range(profile, start, end)

    async def _read_rows_by_range(self, profile, start, end) -> list[list[Any]]:
        reply = GXReplyData()
        for frame in _frames(self.codec.readRowsByRange(profile, start, end)):
            reply.clear()
            await self._exchange(frame, reply)
        self._check(reply, f"{profile.logicalName}:2")
        self._update(profile, 2, reply.value)
        return list(profile.buffer)

    async def method(self, target, index: int, data: Any = 0, data_type=None) -> None:
        """Invoke a method; :raises DlmsAccessError: the meter answered with an action error."""
        async with self._busy:
            await self._method(target, index, data, data_type)

    async def _method(self, target, index: int, data: Any = 0, data_type=None) -> None:
        from gurux_dlms.enums import DataType

        reply = GXReplyData()
        for frame in _frames(self.codec.method(target, index, data, DataType.INT8 if data_type is None else data_type)):
            reply.clear()
            await self._exchange(frame, reply)
        self._check(reply, f"{target.logicalName} method {index}")

    # -- internals ----------------------------------------------------------------------------

    def _check(self, reply: GXReplyData, what: str) -> None:
        if reply.error:
            raise DlmsAccessError(f"{self.peer}: {what}: meter answered result {reply.error}", int(reply.error))

    def _update(self, target, attribute: int, value: Any) -> Any:
        try:
            return self.codec.updateValue(target, attribute, value)
        except Exception as exc:  # noqa: BLE001 - a value of the wrong type from the meter
            raise DlmsProtocolError(f"{self.peer}: cannot use the value of {target.logicalName}:{attribute}: {exc}") from None

    async def _exchange(self, frame, reply: GXReplyData) -> None:
        """Send one request and receive its complete reply, following block transfer.

        After a timeout or an undecodable reply the association is in an unknown state (a late
        reply could be taken for the next one): the connection is closed.
        """
        try:
            await self._roundtrip(frame, reply)
            hops = 0
            while reply.isMoreData():
                hops += 1
                if hops > 10_000:
                    raise DlmsProtocolError(f"{self.peer}: endless block transfer")
                await self._roundtrip(None if reply.isStreaming() else self.codec.receiverReady(reply), reply)
        except (DlmsTimeout, DlmsProtocolError):
            link = self._link
            if link is not None and link.transport is not None:
                link.transport.close()
            raise

    async def _roundtrip(self, frame, reply: GXReplyData) -> None:
        link = self._link
        if link is None or link.lost.is_set():
            raise DlmsLinkLost(f"connection to {self.peer} is closed")
        if frame is not None:
            if link.buffer:
                self.log.warning("dlms %s: discarding %d unsolicited bytes", self.peer, len(link.buffer))
                link.buffer.clear()
            link.transport.write(bytes(frame))
        received = GXByteBuffer()
        notify = GXReplyData()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout_s
        spins = 0
        while True:
            if link.buffer:
                received.set(bytes(link.buffer))
                link.buffer.clear()
                if received.size > self.max_frame_bytes:
                    raise DlmsProtocolError(f"{self.peer}: reply larger than {self.max_frame_bytes} bytes")
            if received.size - received.position > 0:
                try:
                    complete = self.codec.getData(received, reply, notify)
                except Exception as exc:  # noqa: BLE001 - whatever the codec raises on garbage
                    raise DlmsProtocolError(f"{self.peer}: malformed frame: {type(exc).__name__}: {exc}") from None
                if complete:
                    return
                if notify.data.size:
                    self.log.info("dlms %s: ignoring an unsolicited notification", self.peer)
                    notify.clear()
                    spins += 1
                    if spins > 100:
                        raise DlmsProtocolError(f"{self.peer}: flood of notifications")
                    continue
            if link.lost.is_set():
                raise DlmsLinkLost(f"{self.peer} closed the connection")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise DlmsTimeout(f"{self.peer} did not answer within {self.request_timeout_s} s")
            link.arrived.clear()
            try:
                await asyncio.wait_for(link.arrived.wait(), remaining)
            except TimeoutError:
                raise DlmsTimeout(f"{self.peer} did not answer within {self.request_timeout_s} s") from None


def _frames(request) -> list:
    """The library returns one frame, a list of frames, or a list of lists: flatten."""
    if request is None:
        return []
    if isinstance(request, bytes | bytearray):
        return [request]
    frames = []
    for item in request:
        frames.extend(_frames(item))
    return frames

