"""OPC UA security: Basic256Sha256 + SignAndEncrypt with certificates; untrusted clients are refused."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from plugins_for_tests import test_types

import dms_opcua.plugin
from dms_hookspecs import Command
from dms_opcua import OpcUaServer
from dms_opcua.testing import eventually, free_port, make_certificate

PLUGINS = (("opcua", dms_opcua.plugin), ("test_types", test_types))
CLIENT_URI = "urn:leitstand:opcua:client"


def deployment(points_file, port, security: str) -> str:
    return f'''
[deployment]
name = "opcua-security"
[[sources]]
name = "ua"
type = "opcua"
[sources.settings]
points_file = "{points_file}"
port = {port}
timeout_s = 2.0
publishing_interval_ms = 20
reconnect_min_s = 0.2
reconnect_max_s = 0.5
{security}
[[sinks]]
name = "log"
type = "list"
'''


async def test_encrypted_connection_works_and_untrusted_client_is_refused(make_kernel, twin, points_file, tmp_path):
    server_cert, server_key = make_certificate(tmp_path / "server", "sim", "urn:leitstand:simulator", server=True)
    client_cert, client_key = make_certificate(tmp_path / "trusted", "leitstand", CLIENT_URI, server=False)
    rogue_cert, rogue_key = make_certificate(tmp_path / "rogue", "rogue", CLIENT_URI, server=False)
    port = free_port()
    server = OpcUaServer(
        "sim",
        {
            "port": port,
            "points_file": str(points_file),
            "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt",
            "certificate": str(server_cert),
            "private_key": str(server_key),
            "trusted_certificates_dir": str(tmp_path / "trusted"),
        },
        twin,
    )
    await server.start()
    try:
        security = f'''security_policy = "Basic256Sha256"
security_mode = "SignAndEncrypt"
certificate = "{client_cert}"
private_key = "{client_key}"
server_certificate = "{server_cert}"'''
        kernel = make_kernel(*PLUGINS, deployment=deployment(points_file, port, security))
        async with kernel:
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").quality.is_good, timeout=5.0)
            source = kernel.sources["ua"]
            policy = source._client.security_policy
            assert policy.URI == SecurityPolicyBasic256Sha256.URI and policy.Mode == ua.MessageSecurityMode.SignAndEncrypt
            twin.set("Trafo_0-1/P", 42.0)
            await eventually(lambda: kernel.points.read("Trafo_0-1/P").value == 42.0)
            result = await kernel.execute(Command("switch_6/Pos", 1))
            assert result.ok and twin.commands == [("switch_6/Pos", 1.0)]

        # a client whose certificate the server does not trust is refused
        rogue = Client(f"opc.tcp://127.0.0.1:{port}", timeout=2)
        rogue.application_uri = CLIENT_URI
        await rogue.set_security(SecurityPolicyBasic256Sha256, str(rogue_cert), str(rogue_key), server_certificate=str(server_cert))
        with pytest.raises((ua.UaError, ConnectionError, OSError, asyncio.TimeoutError)) as refused:
            await rogue.connect()
        rogue.disconnect_socket()
        assert "BadCertificateUntrusted" in repr(refused.value)

        # and a client without security finds no endpoint to talk to
        plain = Client(f"opc.tcp://127.0.0.1:{port}", timeout=2)
        with pytest.raises((ua.UaError, ConnectionError, OSError, asyncio.TimeoutError)):
            await plain.connect()
        plain.disconnect_socket()
    finally:
        await server.stop()
