"""Helpers for tests and benchmarks of the OPC UA plugin: a sample point map and twin, free
ports, self-signed application certificates (asyncua's certificate helpers)."""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, generate_self_signed_app_certificate

from dms_hookspecs import PointKind, PointSpec
from dms_simulator import PointMapEntry, StaticTwin

POINTS = [
    PointMapEntry("Trafo_0-1/P", "ns=2;s=Trafo_0-1/P", PointKind.ANALOG, 1.0),
    PointMapEntry("Bus_1/U", "ns=2;s=Bus_1/U", PointKind.ANALOG, 0.001),  # server sends V, point in kV
    PointMapEntry("switch_6/Pos", "ns=2;s=switch_6/Pos", PointKind.DOUBLE),
    PointMapEntry("Trafo_0-1/Tap", "ns=2;s=Trafo_0-1/Tap", PointKind.STEP),
    PointMapEntry("Feeder/Alarm", "ns=2;s=Feeder/Alarm", PointKind.BINARY),
    PointMapEntry("PV_3/SP", "ns=2;s=PV_3/SP", PointKind.SETPOINT),
]
CONTROLLABLE = {"switch_6/Pos", "Trafo_0-1/Tap", "PV_3/SP"}
INITIAL = {"Trafo_0-1/P": 12.5, "Bus_1/U": 20.1, "switch_6/Pos": 2, "Trafo_0-1/Tap": 3, "Feeder/Alarm": 0, "PV_3/SP": 0.8}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_twin() -> StaticTwin:
    return StaticTwin([PointSpec(e.point, e.kind, controllable=e.point in CONTROLLABLE) for e in POINTS], dict(INITIAL))


async def eventually(predicate, timeout: float = 3.0, interval: float = 0.02) -> float:
    """Wait until ``predicate()`` is true; return the time it took. Fails the test on timeout."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)


def make_certificate(directory: Path, name: str, uri: str, server: bool) -> tuple[Path, Path]:
    """A self-signed OPC UA application certificate (DER) in ``directory`` and its key (PEM) in
    ``directory/../keys`` (a trust directory must hold certificates only)."""
    directory.mkdir(parents=True, exist_ok=True)
    keys = directory.parent / "keys"
    keys.mkdir(exist_ok=True)
    key = generate_private_key()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH] if server else [ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = generate_self_signed_app_certificate(
        key, name, {"organizationName": "Leitstand tests"}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")], usage, days=2
    )
    cert_path = directory / f"{name}.der"
    key_path = keys / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(dump_private_key_as_pem(key))
    return cert_path, key_path
