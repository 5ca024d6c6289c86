"""What every request handler reaches through ``request.app.state.web``: the :class:`WebContext`."""

from __future__ import annotations

import logging
import time
from typing import Any

from dms_hookspecs import AuditEntry

from .security import LoginThrottle, Principal, Role, SessionStore, constant_time_equal, token_digest
from .settings import WebSettings

__all__ = ["WebContext"]

log = logging.getLogger("leitstand.web")


class WebContext:
    """The web plugin's state for one kernel: settings, users, sessions, throttle, live hub."""

    def __init__(self, kernel: Any, settings: WebSettings) -> None:
        self.kernel = kernel
        self.settings = settings
        self.users = {user.name: user for user in settings.users}
        self.sessions = SessionStore(settings.session_idle_s, settings.session_max_s)
        self.throttle = LoginThrottle(settings.login_free_attempts, settings.login_delay_s, settings.login_max_delay_s)
        self.hub: Any = None  # LiveHub, set by the app when the kernel runs
        self.pending: dict[str, Any] = {}  # command confirmation token -> PendingCommand

    def principal_for_token(self, token: str) -> Principal | None:
        digest = token_digest(token)
        for entry in self.settings.api_tokens:
            if constant_time_equal(entry.token_sha256, digest):
                return Principal(entry.name, entry.role, "token")
        return None

    def audit(self, principal: Principal | str, action: str, subject: str, detail: str = "") -> None:
        """Emit an :class:`AuditEntry` (actor ``user:<name>`` or ``token:<name>``) on the kernel's bus."""
        actor = principal.actor if isinstance(principal, Principal) else principal
        entry = AuditEntry(actor=actor, action=action, subject=subject, detail=detail, time=time.time())
        log.info("audit: %s %s %s %s", actor, action, subject, detail)
        emit = getattr(self.kernel, "emit", None)
        if emit is not None:
            emit(entry)

    @staticmethod
    def role(value: str | Role) -> Role:
        return Role.parse(value)
