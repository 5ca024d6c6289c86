"""IEC 104 over TLS: a self-signed CA issues server and client certificates; values and a command round-trip."""

from __future__ import annotations

import datetime
import ipaddress
import logging

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from dms_hookspecs import Command, CommandStatus
from dms_iec104 import Iec104Server, Iec104Source
from dms_iec104.testing import Rig, wait_until
from dms_iec104.tls import TlsConfigError

PASSPHRASE = "correct-horse-battery-staple"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool = False) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def pki(tmp_path):
    """CA, server and client certificates (client key encrypted with a passphrase)."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _issue("Leitstand test CA", ca_key, _name("Leitstand test CA"), ca_key, ca=True)
    files = {"ca": tmp_path / "ca.pem"}
    files["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    for role in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(f"{role}.leitstand.test", key, ca.subject, ca_key)
        encryption = serialization.BestAvailableEncryption(PASSPHRASE.encode()) if role == "client" else serialization.NoEncryption()
        files[f"{role}_cert"] = tmp_path / f"{role}.pem"
        files[f"{role}_key"] = tmp_path / f"{role}.key"
        files[f"{role}_cert"].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[f"{role}_key"].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption))
    return {k: str(v) for k, v in files.items()}


async def test_tls_round_trip_with_mutual_authentication(tmp_path, pki, kernel_for, caplog):
    caplog.set_level(logging.DEBUG)
    server_tls = {"tls": True, "tls_cert": pki["server_cert"], "tls_key": pki["server_key"], "tls_ca": pki["ca"],
                  "tls_only_known": True, "tls_peer_certs": [pki["client_cert"]]}
    rig = Rig(tmp_path, server_tls)
    await rig.server.start()
    try:
        kernel = kernel_for(
            rig, tls=True, tls_cert=pki["client_cert"], tls_key=pki["client_key"], tls_key_passphrase=PASSPHRASE, tls_ca=pki["ca"],
            tls_only_known=True, tls_peer_certs=[pki["server_cert"]],
        )
        async with kernel:
            await wait_until(lambda: kernel.points.read("rtu/U").quality.is_good, timeout=10, what="TLS link up")
            rig.twin.set("rtu/U", 20.9)
            await wait_until(lambda: kernel.points.read("rtu/U").value == pytest.approx(20.9), what="value over TLS")
            result = await kernel.execute(Command("rtu/CB2", 1, originator="operator:test"))
            assert result.status is CommandStatus.SUCCEEDED, result.reason
            assert rig.twin.commands[-1] == ("rtu/CB2", 1.0)
    finally:
        await rig.server.stop()
    assert PASSPHRASE not in caplog.text
    assert "TLS" in caplog.text


async def test_plain_client_cannot_talk_to_a_tls_server(tmp_path, pki, kernel_for):
    rig = Rig(tmp_path, {"tls": True, "tls_cert": pki["server_cert"], "tls_key": pki["server_key"], "tls_ca": pki["ca"], "tls_validate": False})
    await rig.server.start()
    try:
        kernel = kernel_for(rig, connect_timeout_s=1.0)
        async with kernel:
            await wait_until(lambda: kernel.sources["rtu"].counters["connects"] == 0, what="started")
            import asyncio

            await asyncio.sleep(1.5)
            assert kernel.sources["rtu"].counters["connects"] == 0
            assert not kernel.points.read("rtu/U").quality.is_good
    finally:
        await rig.server.stop()


def test_tls_settings_errors_never_show_the_passphrase(tmp_path, pki):
    rig = Rig(tmp_path)
    base = {"host": "127.0.0.1", "points_file": str(rig.map_path), "tls": True}
    defaults = {s.name: s.default for s in Iec104Source.settings_schema}
    with pytest.raises(TlsConfigError, match="tls_cert/tls_key") as info:
        Iec104Source("rtu", {**defaults, **base, "tls_cert": pki["client_cert"], "tls_key": str(tmp_path / "nope.key"), "tls_key_passphrase": PASSPHRASE})
    assert PASSPHRASE not in str(info.value)
    with pytest.raises(TlsConfigError) as info:
        Iec104Source("rtu", {**defaults, **base, "tls_cert": pki["client_cert"], "tls_key": pki["client_key"], "tls_key_passphrase": "wrong-" + PASSPHRASE})
    assert PASSPHRASE not in str(info.value)
    with pytest.raises(TlsConfigError, match="tls_only_known needs tls_peer_certs"):
        Iec104Source("rtu", {**defaults, **base, "tls_only_known": True})
    with pytest.raises(TlsConfigError, match="tls_only_known needs tls_peer_certs"):
        Iec104Server("sim", {"port": 1, "points_file": str(rig.map_path), "tls": True, "tls_only_known": True}, rig.twin)
