"""Users, roles, passwords, API tokens, server-side sessions and login throttling.

Roles follow IEC 62351-8's idea of role-based access control: each role includes the
rights of the ones below it — ``viewer`` < ``operator`` < ``engineer`` < ``admin``.

* viewer — sees everything, changes nothing;
* operator — acknowledges and shelves alarms, operates switchgear (with confirmation),
  works incidents and work orders;
* engineer — as operator (reserved for configuration and studies);
* admin — as engineer (reserved for user management).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import time

import attrs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

__all__ = [
    "Role", "User", "ApiToken", "Principal", "Session", "SessionStore", "LoginThrottle",
    "hash_password", "verify_password", "new_token", "token_digest",
]

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("leitstand-dummy-password")


class Role(enum.IntEnum):
    """Roles in increasing order of rights."""

    VIEWER = 1
    OPERATOR = 2
    ENGINEER = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, where: str = "role") -> Role:
        if isinstance(value, Role):
            return value
        try:
            return cls[str(value).upper()]
        except KeyError:
            raise ValueError(f"{where} key 'role': unknown role {value!r} (known: viewer, operator, engineer, admin)") from None


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` for ``[[settings.web.users]] password_hash``."""
    return _hasher.hash(password)


def verify_password(hashed: str | None, password: str) -> bool:
    """Constant-effort check: an unknown user still costs one argon2 verification."""
    try:
        return _hasher.verify(hashed or _DUMMY_HASH, password) and hashed is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """A fresh random API token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """SHA-256 of a token, as stored in ``api_tokens``: tokens are random, a slow hash adds nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


@attrs.frozen
class User:
    name: str
    role: Role
    password_hash: str = attrs.field(repr=False)


@attrs.frozen
class ApiToken:
    name: str
    role: Role
    token_sha256: str = attrs.field(repr=False)


@attrs.frozen
class Principal:
    """Who makes a request: a logged-in user (``kind="session"``) or an API token (``"token"``)."""

    name: str
    role: Role
    kind: str = "session"

    @property
    def actor(self) -> str:
        """The name in audit entries and command originators."""
        return f"user:{self.name}" if self.kind == "session" else f"token:{self.name}"

    def may(self, role: Role) -> bool:
        return self.role >= role


@attrs.define
class Session:
    id: str = attrs.field(repr=False)
    user: str
    role: Role
    csrf: str = attrs.field(repr=False)
    created: float
    last_seen: float
    address: str = ""


class SessionStore:
    """Server-side sessions in memory: the cookie holds only a random id.

    A session expires ``idle_s`` after its last use or ``max_s`` after login.
    """

    def __init__(self, idle_s: float = 1800.0, max_s: float = 43200.0, clock=time.monotonic) -> None:  # noqa: ANN001
        self.idle_s = idle_s
        self.max_s = max_s
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, user: str, role: Role, address: str = "") -> Session:
        self.purge()
        now = self._clock()
        session = Session(secrets.token_urlsafe(32), user, role, secrets.token_urlsafe(32), now, now, address)
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None:
            return None
        now = self._clock()
        if now - session.last_seen > self.idle_s or now - session.created > self.max_s:
            del self._sessions[session_id]
            return None
        session.last_seen = now
        return session

    def alive(self, session_id: str) -> bool:
        """Whether the session exists and has not expired, without counting as a use."""
        session = self._sessions.get(session_id)
        now = self._clock()
        return session is not None and now - session.last_seen <= self.idle_s and now - session.created <= self.max_s

    def delete(self, session_id: str | None) -> Session | None:
        return self._sessions.pop(session_id or "", None)

    def purge(self) -> None:
        now = self._clock()
        for sid in [s.id for s in self._sessions.values() if now - s.last_seen > self.idle_s or now - s.created > self.max_s]:
            del self._sessions[sid]

    def __len__(self) -> int:
        return len(self._sessions)


class LoginThrottle:
    """Brute-force protection per user name and client address.

    After ``free`` failures, each further failure locks the pair out for ``delay_s``
    doubling per failure, up to ``max_delay_s``. While locked out, even a correct password
    is refused (the attacker learns nothing). A success resets the pair.
    """

    def __init__(self, free: int = 3, delay_s: float = 1.0, max_delay_s: float = 900.0, clock=time.monotonic) -> None:  # noqa: ANN001
        self.free = free
        self.delay_s = delay_s
        self.max_delay_s = max_delay_s
        self._clock = clock
        self._failures: dict[tuple[str, str], tuple[int, float]] = {}

    def locked_for(self, user: str, address: str) -> float:
        """Seconds until ``user`` may try again from ``address`` (0: now)."""
        _, until = self._failures.get((user.lower(), address), (0, 0.0))
        return max(0.0, until - self._clock())

    def failed(self, user: str, address: str) -> float:
        """Record a failure; return the lock-out it causes in seconds."""
        key = (user.lower(), address)
        count, _ = self._failures.get(key, (0, 0.0))
        count += 1
        delay = 0.0 if count <= self.free else min(self.max_delay_s, self.delay_s * 2 ** (count - self.free - 1))
        self._failures[key] = (count, self._clock() + delay)
        if len(self._failures) > 100_000:  # bounded memory under a distributed attack
            self._failures.pop(next(iter(self._failures)))
        return delay

    def succeeded(self, user: str, address: str) -> None:
        self._failures.pop((user.lower(), address), None)

    def failures(self, user: str, address: str) -> int:
        return self._failures.get((user.lower(), address), (0, 0.0))[0]


def constant_time_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
