"""Entry point of the ``web`` plugin: ``[settings.web]``, the HMI started inside
``leitstand run`` when enabled, and ``leitstand web hash-password | new-token``."""

from __future__ import annotations

import weakref
from typing import Any

from dms_hookspecs import hookimpl

from .settings import SETTINGS, WebSettings

_running: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@hookimpl
def dms_settings_schema():
    return SETTINGS


@hookimpl
async def dms_startup(kernel):
    settings = WebSettings.from_mapping(kernel.settings_for("web"))
    if not settings.enabled:
        return
    from .applications import applications_for
    from .server import WebServer

    applications_for(kernel)  # subscribe now: application results before the first page request are kept
    server = WebServer(kernel, settings)
    await server.start()
    _running[kernel] = server


@hookimpl
async def dms_shutdown(kernel):
    server = _running.pop(kernel, None)
    if server is not None:
        await server.stop()


def server_for(kernel: Any):  # noqa: ANN201
    """The :class:`~dms_web.server.WebServer` running in ``kernel`` (``LookupError`` if none)."""
    try:
        return _running[kernel]
    except KeyError:
        raise LookupError("the web HMI is not running in this kernel ([settings.web] enabled = true?)") from None


@hookimpl
def dms_add_cli_commands(commands):
    parser = commands.add_parser("web", help="web HMI tools: hash-password, new-token")
    tools = parser.add_subparsers(dest="web_command", required=True, metavar="TOOL")
    hashing = tools.add_parser("hash-password", help="print an argon2 hash for [[settings.web.users]] password_hash")
    hashing.add_argument("--password-stdin", action="store_true", help="read the password from standard input (no prompt)")
    hashing.set_defaults(handler=_hash_password)
    token = tools.add_parser("new-token", help="print a new API token and the token_sha256 for [[settings.web.api_tokens]]")
    token.set_defaults(handler=_new_token)


async def _hash_password(args) -> int:  # noqa: ANN001
    import getpass
    import sys

    from .security import hash_password

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            print("leitstand: error: the passwords differ", file=sys.stderr)
            return 2
    if not password:
        print("leitstand: error: empty password", file=sys.stderr)
        return 2
    print(hash_password(password))
    return 0


async def _new_token(args) -> int:  # noqa: ANN001
    from .security import new_token, token_digest

    token = new_token()
    print(f"token:        {token}")
    print(f"token_sha256: {token_digest(token)}")
    print("Give the token to the client (header 'Authorization: Bearer <token>'); put only the sha256 in the deployment.")
    return 0
