"""The disk spool: rows acknowledged while the database is unavailable, kept until replayed.

A spool is a directory of append-only files ``<sequence>-<unique>.spool``, replayed in
sequence order. A file starts with :data:`MAGIC`; each record is ``<length u32><crc32 u32>``
(little endian) followed by ``length`` bytes of msgpack (:data:`~.rows.Rows`). Every append
is flushed and ``fsync``'d before it is acknowledged, so a ``kill -9`` or a power loss
keeps every acknowledged record; a record torn by a crash fails its length or CRC check,
was never acknowledged, and ends the file.

How far a file has been replayed is stored *in the database*, in ``spool_progress``, in
the same transaction as the replayed rows: a crash during replay neither loses nor
duplicates rows. A fully replayed file is deleted; its progress row is then removed.
An ``flock`` on ``.lock`` keeps a second process from using the same spool.
"""

from __future__ import annotations

import fcntl
import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path

import msgpack

from .rows import Rows

__all__ = ["Spool", "SpoolError", "SpoolFile", "MAGIC"]

MAGIC = b"LSPOOL1\n"
_HEADER = struct.Struct("<II")


class SpoolError(RuntimeError):
    """The spool cannot be used (locked by another process, full, not writable)."""


class SpoolFile:
    """One spool file: its path and, while it is appended to, an open handle."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.handle: int | None = None

    @property
    def sequence(self) -> int:
        return int(self.name.split("-", 1)[0])

    def size(self) -> int:
        return self.path.stat().st_size

    def records(self, position: int) -> Iterator[tuple[int, Rows]]:
        """``(end position, rows)`` of every complete record from ``position`` on, in order.

        Stops at the end of the file or at a torn record (short, or wrong checksum).
        """
        with self.path.open("rb") as file:
            if position < len(MAGIC):
                if file.read(len(MAGIC)) != MAGIC:
                    raise SpoolError(f"spool file {self.path} does not start with {MAGIC!r}: not a Leitstand spool file")
                position = len(MAGIC)
            file.seek(position)
            while True:
                header = file.read(_HEADER.size)
                if len(header) < _HEADER.size:
                    return
                length, crc = _HEADER.unpack(header)
                payload = file.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    return
                position += _HEADER.size + length
                yield position, msgpack.unpackb(payload, raw=False, strict_map_key=False)


class Spool:
    """The spool directory of one sink.

    :param directory: created if missing.
    :param max_bytes: appends beyond this total size raise :class:`SpoolError`.
    """

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._lock: int | None = None
        self._current: SpoolFile | None = None
        self.bytes = 0

    def open(self) -> None:
        """Create the directory and take its lock.

        :raises SpoolError: another process uses this spool.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        lock = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock)
            raise SpoolError(f"spool {self.directory} is in use by another process (another sink writing to the same place?)") from None
        self._lock = lock
        self.bytes = sum(file.size() for file in self.files())

    def close(self) -> None:
        self._finish_current()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def files(self) -> list[SpoolFile]:
        """The spool files, oldest first."""
        return sorted((SpoolFile(path) for path in self.directory.glob("*.spool")), key=lambda f: (f.sequence, f.name))

    @property
    def pending(self) -> bool:
        """Whether any file waits to be replayed."""
        return self._current is not None or any(True for _ in self.directory.glob("*.spool"))

    def append(self, rows: Rows) -> int:
        """Append one record and ``fsync`` it; returns its size in bytes.

        :raises SpoolError: the spool is full (``max_bytes``).
        :raises OSError: writing failed (the file is truncated back, nothing was appended).
        """
        payload = msgpack.packb(rows, use_bin_type=True)
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        if self.bytes + len(record) > self.max_bytes:
            raise SpoolError(
                f"spool {self.directory} is full ({self.bytes:,} of {self.max_bytes:,} bytes, setting spool_max_bytes); "
                "rows are no longer accepted until the database is back"
            )
        current = self._current or self._new_file()
        handle = current.handle
        assert handle is not None
        end = os.lseek(handle, 0, os.SEEK_END)
        try:
            view = memoryview(record)
            while view:
                written = os.write(handle, view)
                view = view[written:]
            os.fsync(handle)
        except BaseException:
            os.ftruncate(handle, end)
            raise
        self.bytes += len(record)
        return len(record)

    def _new_file(self) -> SpoolFile:
        files = self.files()
        sequence = files[-1].sequence + 1 if files else 1
        path = self.directory / f"{sequence:010d}-{uuid.uuid4().hex}.spool"
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(handle, MAGIC)
        os.fsync(handle)
        _fsync_directory(self.directory)
        current = SpoolFile(path)
        current.handle = handle
        self._current = current
        self.bytes += len(MAGIC)
        return current

    def _finish_current(self) -> None:
        if self._current is not None and self._current.handle is not None:
            os.close(self._current.handle)
        self._current = None

    def remove(self, file: SpoolFile) -> None:
        """Delete a fully replayed file (durably)."""
        if self._current is not None and self._current.path == file.path:
            self._finish_current()
        size = file.size()
        file.path.unlink()
        _fsync_directory(self.directory)
        self.bytes = max(0, self.bytes - size)


def _fsync_directory(directory: Path) -> None:
    handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
