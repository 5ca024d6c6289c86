"""``[settings.web]``: the schema and its checked form (:class:`WebSettings`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from dms_hookspecs import Setting, SettingsSchema

from .security import ApiToken, Role, User

__all__ = ["SETTINGS", "WebSettings"]

SETTINGS = SettingsSchema(
    (
        Setting("enabled", bool, False, "start the web HMI and API inside `leitstand run`"),
        Setting("host", str, "127.0.0.1", "address to listen on (127.0.0.1: this machine only)"),
        Setting("port", int, 8080, "TCP port (0: an ephemeral port, logged at start)"),
        Setting("title", str, "Leitstand", "shown in the page header and the installed app"),
        Setting("users", list, [], "[{ name, role, password_hash }] — hashes from `leitstand web hash-password`"),
        Setting("api_tokens", list, [], "[{ name, role, token_sha256 }] — from `leitstand web new-token`"),
        Setting("session_idle_s", float, 1800.0, "a session unused this long expires"),
        Setting("session_max_s", float, 43200.0, "a session expires this long after login, used or not"),
        Setting("tls_certfile", str, None, "PEM certificate: serve HTTPS (cookies become Secure)"),
        Setting("tls_keyfile", str, None, "PEM private key for tls_certfile"),
        Setting("login_free_attempts", int, 3, "failed logins per user and address before delays start"),
        Setting("login_delay_s", float, 1.0, "first lock-out after the free attempts, doubling per failure"),
        Setting("login_max_delay_s", float, 900.0, "longest lock-out"),
        Setting("command_confirm_s", float, 30.0, "how long a selected command waits for its confirmation"),
        Setting("live_batch_ms", int, 150, "point changes are pushed to browsers in batches this often"),
        Setting("historian", str, None, "sink name of the SQL historian, or a SQLAlchemy URL (default: the first `sql` sink)"),
        Setting("notice", str, None, "logged with the URL at start (e.g. the demo users of a demo deployment)"),
        Setting("meter_sources", list, ["meter*"], "globs on source names whose points are meter readings (IEC 61968-9 export)"),
    )
)


@attrs.frozen
class WebSettings:
    """Checked ``[settings.web]``; raises ``ValueError`` naming the key for what a schema cannot check."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8080
    title: str = "Leitstand"
    users: tuple[User, ...] = ()
    api_tokens: tuple[ApiToken, ...] = ()
    session_idle_s: float = 1800.0
    session_max_s: float = 43200.0
    tls_certfile: str | None = None
    tls_keyfile: str | None = None
    login_free_attempts: int = 3
    login_delay_s: float = 1.0
    login_max_delay_s: float = 900.0
    command_confirm_s: float = 30.0
    live_batch_ms: int = 150
    historian: str | None = None
    meter_sources: tuple[str, ...] = ("meter*",)
    notice: str | None = None

    @property
    def tls(self) -> bool:
        return self.tls_certfile is not None

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any]) -> WebSettings:
        values = {k: v for k, v in raw.items() if k in attrs.fields_dict(cls)}
        users = []
        for k, entry in enumerate(raw.get("users", ())):
            where = f"[settings.web] users[{k}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected a table {{ name, role, password_hash }}")
            unknown = set(entry) - {"name", "role", "password_hash"}
            if unknown:
                raise ValueError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (allowed: name, role, password_hash)")
            name, role, hashed = entry.get("name"), entry.get("role"), entry.get("password_hash")
            if not isinstance(name, str) or not name.strip():
                raise ValueError(f"{where} key 'name': missing or empty")
            if not isinstance(hashed, str) or not hashed.startswith("$argon2"):
                raise ValueError(f"{where} key 'password_hash': not an argon2 hash (make one with `leitstand web hash-password`)")
            users.append(User(name, Role.parse(role, where), hashed))
        names = [u.name for u in users]
        if len(set(names)) != len(names):
            raise ValueError(f"[settings.web] users: a name is declared twice ({', '.join(sorted({n for n in names if names.count(n) > 1}))})")
        tokens = []
        for k, entry in enumerate(raw.get("api_tokens", ())):
            where = f"[settings.web] api_tokens[{k}]"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{where}: expected a table {{ name, role, token_sha256 }}")
            digest = str(entry.get("token_sha256", ""))
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest.lower()):
                raise ValueError(f"{where} key 'token_sha256': expected 64 hex digits (make one with `leitstand web new-token`)")
            tokens.append(ApiToken(str(entry.get("name") or f"token{k}"), Role.parse(entry.get("role"), where), digest.lower()))
        if (raw.get("tls_certfile") is None) != (raw.get("tls_keyfile") is None):
            raise ValueError("[settings.web]: tls_certfile and tls_keyfile go together")
        if not 10 <= int(raw.get("live_batch_ms", 150)) <= 1000:
            raise ValueError("[settings.web] key 'live_batch_ms': expected 10..1000")
        values.update(users=tuple(users), api_tokens=tuple(tokens), meter_sources=tuple(raw.get("meter_sources", ("meter*",))))
        return cls(**values)
