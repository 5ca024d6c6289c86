"""OPC UA simulator server: exposes a twin's points as OPC UA variables (asyncua ``Server``).

Every point of the point map becomes a variable with the node id of its address (analogue
Double, double/step Int32, binary Boolean), read-only for clients; the twin's changes are
written to it with their quality (as StatusCode) and source timestamp, so subscribed
clients receive them as data-change notifications. A controllable point (controllable in
the twin) also gets a writable control variable ``<id>/Oper`` of the same data type and a
String variable ``<id>/OperReason``. A client's write to ``<id>/Oper`` calls
``twin.operate(point, value * scale)`` and the write's StatusCode carries the outcome:
Good when the twin accepted, ``Bad_RequestNotAllowed`` when it refused (the reason is then
in ``<id>/OperReason``), ``Bad_Timeout`` when it did not answer in ``operate_timeout_s``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs
from asyncua import Server, ua
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from asyncua.crypto.permission_rules import User, UserRole

from dms_hookspecs import REQUIRED, PointKind, Setting, SettingsSchema, SimulatorServer, TwinAPI
from dms_hookspecs.pointmap import read_point_map

from .common import control_node_id, parse_node_id, redact_asyncua_credentials, quality_to_status, reason_node_id, to_datetime, to_variant, variant_type

__all__ = ["OpcUaServer"]

log = logging.getLogger("leitstand.opcua.server")

_POLICIES = {
    ("Basic256Sha256", "SignAndEncrypt"): ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
    ("Basic256Sha256", "Sign"): ua.SecurityPolicyType.Basic256Sha256_Sign,
}


@attrs.define
class _Served:
    point: str
    kind: PointKind
    scale: float
    node: ua.NodeId
    control: ua.NodeId | None = None
    reason: ua.NodeId | None = None


class _PasswordUsers(UserManager):
    """Accepts exactly one user name/password pair (compared, never logged)."""

    def __init__(self, username: str, password: str) -> None:
        self._username = username
        self._password = password

    def get_user(self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None) -> User | None:
        if username == self._username and password == self._password:
            return User(role=UserRole.User, name=username)
        return None


class OpcUaServer(SimulatorServer):
    """The ``opcua`` simulator type: an asyncua server on ``opc.tcp://<host>:<port>``."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "address to bind (loopback)"),
            Setting("port", int, 4840, "TCP port"),
            Setting("points_file", str, REQUIRED, "point map CSV (address = node id, e.g. ns=2;s=Trafo_0-1/P)"),
            Setting("application_uri", str, "urn:leitstand:simulator", "server application URI (must match its certificate)"),
            Setting("namespace_uri", str, "urn:leitstand:simulator", "URI of the namespace the points live in"),
            Setting("control_suffix", str, "/Oper", "suffix of the control variable's string id"),
            Setting("operate_timeout_s", float, 5.0, "how long a control write waits for the twin"),
            Setting("security_policy", str, "None", "None or Basic256Sha256", ("None", "Basic256Sha256")),
            Setting("security_mode", str, "SignAndEncrypt", "Sign or SignAndEncrypt", ("Sign", "SignAndEncrypt")),
            Setting("certificate", str, "", "server certificate (DER or PEM) for Basic256Sha256"),
            Setting("private_key", str, "", "server private key (PEM)"),
            Setting("trusted_certificates_dir", str, "", "directory of trusted client certificates; set: others are refused"),
            Setting("username", str, "", "require this user (with password); empty: anonymous allowed"),
            Setting("password", str, "", "password of username"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        settings = {setting.name: setting.default for setting in self.settings_schema if not setting.required} | dict(settings)
        super().__init__(name, settings, twin)
        controllable = {spec.id.name for spec in twin.points() if spec.controllable}
        suffix = settings["control_suffix"]
        self._served: list[_Served] = []
        for entry in read_point_map(settings["points_file"]):
            node = parse_node_id(entry.address)
            served = _Served(entry.point, entry.kind, entry.scale or 1.0, node)
            if entry.point in controllable:
                served.control = control_node_id(node, suffix)
                served.reason = reason_node_id(node, suffix)
            self._served.append(served)
        self._by_point = {served.point: served for served in self._served}
        self._controls = {served.control: served for served in self._served if served.control is not None}
        self._read_only = {served.node for served in self._served} | {s.reason for s in self._served if s.reason}
        self._server: Server | None = None
        self._pending: dict[str, tuple[float, int, float]] = {}
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._unsubscribe = None
        self.updates_written = 0

    @property
    def url(self) -> str:
        return f"opc.tcp://{self.settings['host']}:{self.settings['port']}"

    async def start(self) -> None:
        redact_asyncua_credentials()
        settings = self.settings
        users = _PasswordUsers(settings["username"], settings["password"]) if settings["username"] else None
        server = Server(user_manager=users)
        await server.init()
        await server.set_application_uri(settings["application_uri"])
        server.set_endpoint(self.url)
        server.set_server_name(f"Leitstand simulator {self.name}")
        if settings["security_policy"] != "None":
            await server.load_certificate(settings["certificate"])
            await server.load_private_key(settings["private_key"])
            server.set_security_policy([_POLICIES[(settings["security_policy"], settings["security_mode"])]])
            if settings["trusted_certificates_dir"]:
                store = TrustStore([Path(settings["trusted_certificates_dir"])], [])
                await store.load()
                options = CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT
                server.set_certificate_validator(CertificateValidator(options, store))
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        if users is not None:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        else:
            server.set_identity_tokens([ua.AnonymousIdentityToken, ua.UserNameIdentityToken])
        await self._build_address_space(server)
        attribute_service = server.iserver.attribute_service
        original_write = attribute_service.write

        async def write(params: ua.WriteParameters, user: User = User(role=UserRole.Admin)) -> list[ua.StatusCode]:
            return await self._write(original_write, params, user)

        attribute_service.write = write  # control writes are answered with the twin's outcome
        await server.start()
        self._server = server
        self._unsubscribe = self.twin.subscribe(self._on_change)
        self._writer = asyncio.get_running_loop().create_task(self._write_changes(), name=f"opcua-sim:{self.name}")
        log.info("OPC UA simulator %r serving %d points on %s (security %s)", self.name, len(self._served), self.url, settings["security_policy"])

    async def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    # -- address space -------------------------------------------------------------------

    async def _build_address_space(self, server: Server) -> None:
        needed = max((served.node.NamespaceIndex for served in self._served), default=2)
        uri = self.settings["namespace_uri"]
        index = await server.register_namespace(uri)
        suffix = 2
        while index < needed:
            index = await server.register_namespace(f"{uri}:{suffix}")
            suffix += 1
        objects = server.nodes.objects
        for served in self._served:
            value, quality, stamp = self._read_twin(served.point)
            ns = served.node.NamespaceIndex
            variable = await objects.add_variable(served.node, ua.QualifiedName(served.point, ns), to_variant(served.kind, 0), variant_type(served.kind))
            await server.write_attribute_value(variable.nodeid, self._data_value(served, value, quality, stamp))
            if served.control is not None:
                control = await objects.add_variable(served.control, ua.QualifiedName(served.point + self.settings["control_suffix"], ns), to_variant(served.kind, value / served.scale), variant_type(served.kind))
                await control.set_writable(True)
                await objects.add_variable(served.reason, ua.QualifiedName(served.point + self.settings["control_suffix"] + "Reason", ns), "", ua.VariantType.String)

    def _read_twin(self, point: str) -> tuple[float, int, float]:
        try:
            return self.twin.read(point)
        except KeyError:
            log.warning("OPC UA simulator %r: twin has no point %r; served as invalid", self.name, point)
            return 0.0, 1, time.time()

    @staticmethod
    def _data_value(served: _Served, value: float, quality: int, stamp: float) -> ua.DataValue:
        return ua.DataValue(
            Value=to_variant(served.kind, value / served.scale),
            StatusCode=ua.StatusCode(quality_to_status(quality)),
            SourceTimestamp=to_datetime(stamp),
            ServerTimestamp=to_datetime(time.time()),
        )

    # -- twin → clients ------------------------------------------------------------------

    def _on_change(self, changes: Sequence[tuple[str, float, int, float]]) -> None:
        pending = self._pending
        for point, value, quality, stamp in changes:
            if point in self._by_point:
                pending[point] = (value, quality, stamp)
        if pending:
            self._wake.set()

    async def _write_changes(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, {}
            server = self._server
            if server is None:
                continue
            for point, (value, quality, stamp) in pending.items():
                served = self._by_point[point]
                try:
                    await server.write_attribute_value(served.node, self._data_value(served, value, quality, stamp))
                except Exception:  # noqa: BLE001 - one bad value must not stop the feed
                    log.exception("OPC UA simulator %r: cannot write %s", self.name, point)
                self.updates_written += 1

    # -- clients → twin ------------------------------------------------------------------

    async def _write(self, original, params: ua.WriteParameters, user: User) -> list[ua.StatusCode]:
        results: list[ua.StatusCode] = []
        for item in params.NodesToWrite:
            served = self._controls.get(item.NodeId)
            if served is not None and item.AttributeId == ua.AttributeIds.Value:
                results.append(await self._operate(served, item.Value))
            elif item.NodeId in self._read_only:
                results.append(ua.StatusCode(ua.StatusCodes.BadNotWritable))
            else:
                results.extend(await original(ua.WriteParameters(NodesToWrite=[item]), user))
        return results

    async def _operate(self, served: _Served, data_value: ua.DataValue) -> ua.StatusCode:
        variant = data_value.Value
        expected = variant_type(served.kind)
        if variant is None or variant.VariantType is not expected or variant.Value is None or variant.is_array:
            return ua.StatusCode(ua.StatusCodes.BadTypeMismatch)
        value = float(variant.Value) * served.scale
        try:
            accepted, reason = await asyncio.wait_for(self.twin.operate(served.point, value), self.settings["operate_timeout_s"])
        except TimeoutError:
            accepted, reason, code = False, "the twin did not answer in time", ua.StatusCodes.BadTimeout
        except Exception as exc:  # noqa: BLE001 - reported to the client, server keeps running
            log.exception("OPC UA simulator %r: operate %s failed", self.name, served.point)
            accepted, reason, code = False, f"{type(exc).__name__}: {exc}", ua.StatusCodes.BadInternalError
        else:
            code = ua.StatusCodes.Good if accepted else ua.StatusCodes.BadRequestNotAllowed
        server = self._server
        if server is not None:
            await server.write_attribute_value(served.reason, ua.DataValue(Value=ua.Variant("" if accepted else reason, ua.VariantType.String)))
            if accepted:
                await server.write_attribute_value(served.control, ua.DataValue(Value=variant))
        log.info("OPC UA simulator %r: operate %s = %g: %s", self.name, served.point, value, "accepted" if accepted else f"refused ({reason})")
        return ua.StatusCode(code)
