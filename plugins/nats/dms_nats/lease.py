"""Active/standby lease of a front-end group in a JetStream key-value bucket.

One key per group. The holder renews it every ``renew_s`` with a compare-and-set update
(``last=`` its revision). A standby watches the key: when it is missing, or its revision has
not changed for ``ttl_s`` as measured by the standby's own clock (no clock comparison between
hosts), the standby takes it with a compare-and-set of its own — of two standbys exactly one
wins. The revision at which a holder took the lease is its **term**: terms only grow (they
are stream sequence numbers), and the core drops batches of a lower term than it has seen,
so a holder that was replaced while it hung cannot overwrite newer values (fencing).

A holder that cannot renew for ``0.75 * ttl_s`` (e.g. cut off from NATS) considers the lease
lost before a standby can take it over.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgpack
from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

__all__ = ["Lease", "LeaseLost"]

log = logging.getLogger("leitstand.nats.lease")


class LeaseLost(Exception):
    """The lease was taken over by another instance or could not be renewed in time."""


class Lease:
    """The lease of ``key`` in ``kv`` for ``holder``.

    :ivar term: revision at which this holder acquired the lease (0 while standby).
    """

    def __init__(self, kv: KeyValue, key: str, holder: str, ttl_s: float = 2.0, renew_s: float = 0.5) -> None:
        if not 0 < renew_s < ttl_s:
            raise ValueError(f"lease renewal period {renew_s} s must be positive and shorter than its TTL {ttl_s} s")
        self._kv = kv
        self.key = key
        self.holder = holder
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self.term = 0
        self.revision = 0
        self._renewed_at = 0.0

    def _value(self) -> bytes:
        return msgpack.packb({"holder": self.holder, "term": self.term, "time": time.time()})

    async def acquire(self) -> int:
        """Wait until this instance holds the lease; returns the term."""
        seen_revision, seen_at = None, time.monotonic()
        while True:
            try:
                entry = await self._kv.get(self.key)
            except KeyNotFoundError:  # never taken, released, or expired
                entry = None
            except Exception as exc:  # noqa: BLE001 - NATS unreachable: keep waiting
                log.warning("lease %r: cannot read (%s: %s)", self.key, type(exc).__name__, exc)
                entry = False
            now = time.monotonic()
            try:
                if entry is None:
                    return self._taken(await self._kv.create(self.key, self._value()))
                if entry is not False:
                    if entry.revision != seen_revision:
                        seen_revision, seen_at = entry.revision, now
                    elif now - seen_at >= self.ttl_s:
                        holder = _holder(entry.value)
                        log.warning("lease %r: holder %s stopped renewing for %.1f s; taking over", self.key, holder, now - seen_at)
                        return self._taken(await self._kv.update(self.key, self._value(), last=entry.revision))
            except (KeyWrongLastSequenceError, KeyNotFoundError):
                seen_revision = None  # another instance was faster; watch again
            except Exception as exc:  # noqa: BLE001 - e.g. the "wrong last sequence" API error of older servers
                log.debug("lease %r: take-over attempt failed: %s", self.key, exc)
                seen_revision = None
            await asyncio.sleep(self.renew_s / 2)

    def _taken(self, revision: int) -> int:
        self.term = self.revision = revision
        self._renewed_at = time.monotonic()
        log.info("lease %r acquired by %s (term %d)", self.key, self.holder, self.term)
        return self.term

    async def keep(self) -> None:
        """Renew until the lease is lost; then raise :class:`LeaseLost`."""
        while True:
            await asyncio.sleep(self.renew_s)
            try:
                self.revision = await asyncio.wait_for(
                    self._kv.update(self.key, self._value(), last=self.revision), timeout=self.renew_s
                )
                self._renewed_at = time.monotonic()
            except (KeyWrongLastSequenceError, KeyNotFoundError) as exc:
                raise LeaseLost(f"lease {self.key!r} was taken over ({type(exc).__name__})") from exc
            except Exception as exc:  # noqa: BLE001 - NATS unreachable or slow
                silent = time.monotonic() - self._renewed_at
                if "wrong last sequence" in str(exc):
                    raise LeaseLost(f"lease {self.key!r} was taken over") from exc
                if silent >= 0.75 * self.ttl_s:
                    raise LeaseLost(f"lease {self.key!r} not renewed for {silent:.1f} s ({type(exc).__name__}: {exc})") from exc
                log.warning("lease %r: renewal failed (%s: %s)", self.key, type(exc).__name__, exc)

    async def release(self) -> None:
        """Give the lease up at once (clean shutdown), if still held."""
        if not self.term:
            return
        try:
            await self._kv.delete(self.key, last=self.revision)
        except Exception as exc:  # noqa: BLE001 - it expires anyway
            log.debug("lease %r: release failed: %s", self.key, exc)
        self.term = 0


def _holder(value: bytes | None) -> str:
    try:
        return str(msgpack.unpackb(value or b"")["holder"])
    except Exception:  # noqa: BLE001
        return "?"
