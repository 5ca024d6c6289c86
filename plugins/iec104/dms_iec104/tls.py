"""TLS (IEC 62351-3 style transport security) settings shared by the source and the server.

Settings keys (all optional; TLS is on when ``tls = true``):

``tls_cert`` / ``tls_key``
    own certificate and private key (PEM files); ``tls_key_passphrase`` if the key is encrypted.
``tls_ca``
    CA certificate that signed the peer's certificate.
``tls_peer_certs``
    list of peer certificates accepted when ``tls_only_known`` is true.
``tls_validate``
    validate the peer's chain and validity period (default true).
``tls_only_known``
    accept only the peer certificates listed in ``tls_peer_certs`` (default false).

Key material and the passphrase are never logged; errors name the setting, not its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import c104

from dms_hookspecs import Setting

__all__ = ["TLS_SETTINGS", "transport_security", "TlsConfigError", "describe_tls"]

TLS_SETTINGS = (
    Setting("tls", bool, False, "use TLS (IEC 62351-3) on this connection"),
    Setting("tls_cert", str, "", "own certificate (PEM file)"),
    Setting("tls_key", str, "", "own private key (PEM file); never logged"),
    Setting("tls_key_passphrase", str, "", "passphrase of an encrypted private key; never logged"),
    Setting("tls_ca", str, "", "CA certificate (PEM file) that signed the peer's certificate"),
    Setting("tls_peer_certs", list, [], "peer certificates accepted when tls_only_known is true"),
    Setting("tls_validate", bool, True, "validate the peer's certificate chain and validity period"),
    Setting("tls_only_known", bool, False, "accept only the certificates in tls_peer_certs"),
)


class TlsConfigError(ValueError):
    """TLS settings cannot be used (names the setting, never secret values)."""


def _file(settings: Mapping[str, Any], key: str) -> str:
    value = settings.get(key) or ""
    if value and not Path(value).is_file():
        raise TlsConfigError(f"{key}: file {value!r} does not exist")
    return value


def transport_security(settings: Mapping[str, Any]) -> c104.TransportSecurity | None:
    """A ``c104.TransportSecurity`` from the ``tls*`` settings, or None when TLS is off."""
    if not settings.get("tls"):
        return None
    cert, key, ca = _file(settings, "tls_cert"), _file(settings, "tls_key"), _file(settings, "tls_ca")
    peers = [str(p) for p in settings.get("tls_peer_certs") or ()]
    if bool(cert) != bool(key):
        raise TlsConfigError("tls_cert and tls_key must be given together")
    if settings.get("tls_only_known") and not peers:
        raise TlsConfigError("tls_only_known needs tls_peer_certs")
    security = c104.TransportSecurity(validate=bool(settings.get("tls_validate", True)), only_known=bool(settings.get("tls_only_known")))
    if cert:
        try:
            security.set_certificate(cert=cert, key=key, passphrase=settings.get("tls_key_passphrase") or "")
        except ValueError:
            # c104's message may quote the files; never the passphrase, but keep ours minimal anyway
            raise TlsConfigError("tls_cert/tls_key: cannot load the certificate or decrypt the private key") from None
    if ca:
        try:
            security.set_ca_certificate(cert=ca)
        except ValueError:
            raise TlsConfigError(f"tls_ca: cannot load CA certificate {ca!r}") from None
    for peer in peers:
        if not Path(peer).is_file():
            raise TlsConfigError(f"tls_peer_certs: file {peer!r} does not exist")
        try:
            security.add_allowed_remote_certificate(cert=peer)
        except ValueError:
            raise TlsConfigError(f"tls_peer_certs: cannot load certificate {peer!r}") from None
    return security


def describe_tls(settings: Mapping[str, Any]) -> str:
    """A log-safe one-line description (no key paths' contents, no passphrase)."""
    if not settings.get("tls"):
        return "plain TCP"
    parts = ["TLS"]
    if settings.get("tls_cert"):
        parts.append("with own certificate")
    if settings.get("tls_validate", True):
        parts.append("validating peer")
    if settings.get("tls_only_known"):
        parts.append(f"{len(settings.get('tls_peer_certs') or ())} known peer(s) only")
    return " ".join(parts)
