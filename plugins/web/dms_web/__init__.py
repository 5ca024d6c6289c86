"""Leitstand web HMI and integration API (plugin ``web``, distribution ``dms-web``).

A Starlette application served by uvicorn inside the kernel's event loop: login with
argon2-hashed passwords and role-based access (viewer < operator < engineer < admin),
server-side sessions, CSRF protection, pages with live values over WebSocket, the REST API
under ``/api/v1`` with its OpenAPI description, and API tokens for integrations.

Enable it in a deployment::

    [settings.web]
    enabled = true
    port = 8080
    users = [{ name = "anna", role = "operator", password_hash = "$argon2id$..." }]
"""

from .plugin import server_for
from .security import Principal, Role, hash_password

__version__ = "0.1.0"
__all__ = ["server_for", "Role", "Principal", "hash_password"]
