"""OPC UA source: an asyncua client that subscribes to the point map's nodes.

Connect (with timeout, optional Basic256Sha256 security and user/password) → read every
mapped node once (integrity read) → one subscription with a data-change monitored item per
node (``publishing_interval_ms``) for spontaneous updates. StatusCode → quality, source
timestamp → ``source_time``. The client's keep-alive watchdog (``watchdog_s``), a closed
transport or a subscription status change ends the session: every point is published
invalid + old-data at once, and ``run`` reconnects with exponential backoff
(``reconnect_min_s`` doubling to ``reconnect_max_s``).

Commands write the control variable ``<id>/Oper`` and report the write's StatusCode
(Good → succeeded, Bad → failed with the server's reason, no answer → timeout). OPC UA has
no select-before-operate; ``select`` reads the control variable's AccessLevel and
UserAccessLevel and succeeds when both allow writing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from asyncua import Client, ua
from asyncua.common.subscription import Subscription
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    Command,
    CommandResult,
    CommandStatus,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
)
from dms_hookspecs.pointmap import load_point_map, point_map_settings

from .common import (
    CONTROL_KINDS,
    INVALID_OLD_DATA,
    chunks,
    control_node_id,
    from_datetime,
    from_variant,
    parse_node_id,
    reason_node_id,
    redact_asyncua_credentials,
    status_to_quality,
    to_variant,
)

__all__ = ["OpcUaSource"]

_BAD_REFERENCE_INVALID = 0b01 | (1 << 4)  # invalid + bad-reference: value is not a number
_CHUNK = 500  # nodes per read / create-monitored-items request


class _Feed(Subscription):
    """A subscription that hands each DataChangeNotification's items over in one call,
    instead of one task per item (asyncua's handler mode)."""

    class _Handler:  # non-None handler: no iterator queue is created
        pass

    def __init__(self, session: Any, params: ua.CreateSubscriptionParameters, on_items, on_status) -> None:
        super().__init__(session, params, self._Handler())
        self._on_items = on_items
        self._on_status = on_status

    async def publish_callback(self, publish_result: ua.PublishResult) -> None:
        self.last_publish_at = time.monotonic()
        message = publish_result.NotificationMessage
        if message.NotificationData is None:
            return
        self.last_sequence_number = int(message.SequenceNumber)
        for notification in message.NotificationData:
            if isinstance(notification, ua.DataChangeNotification):
                self._on_items(notification.MonitoredItems)
            elif isinstance(notification, ua.StatusChangeNotification):
                self._on_status(notification.Status)


def _safe_url(url: str) -> str:
    """The URL without user:password (never logged)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


class OpcUaSource(Source):
    """The ``opcua`` source type."""

    settings_schema = SettingsSchema(
        (
            *point_map_settings(points_file_required=True),  # address = node id, e.g. ns=2;s=Trafo_0-1/P
            Setting("url", str, "", "endpoint opc.tcp://host:port[/path]; default built from host and port"),
            Setting("host", str, "127.0.0.1", "server host"),
            Setting("port", int, 4840, "server port"),
            Setting("timeout_s", float, 4.0, "connect and request timeout"),
            Setting("publishing_interval_ms", float, 100.0, "subscription publishing interval"),
            Setting("sampling_interval_ms", float, 0.0, "monitored-item sampling interval (0: fastest)"),
            Setting("queue_size", int, 1, "monitored-item queue size (1: latest value only)"),
            Setting("watchdog_s", float, 0.5, "keep-alive probe period; a dead link is detected within about twice this"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay"),
            Setting("reconnect_max_s", float, 30.0, "reconnect delay cap (the delay doubles per failed attempt)"),
            Setting("controls", list, None, "points that accept commands (default: double, step and setpoint points)"),
            Setting("select_before_operate", bool, False, "commands on controls run select (write-permission check) first"),
            Setting("control_suffix", str, "/Oper", "suffix of the control variable's string node id"),
            Setting("security_policy", str, "None", "None or Basic256Sha256", ("None", "Basic256Sha256")),
            Setting("security_mode", str, "SignAndEncrypt", "Sign or SignAndEncrypt", ("Sign", "SignAndEncrypt")),
            Setting("certificate", str, "", "client certificate (DER/PEM) for Basic256Sha256"),
            Setting("private_key", str, "", "client private key (PEM)"),
            Setting("private_key_password", str, "", "password of the private key (never logged)"),
            Setting("server_certificate", str, "", "expected server certificate (pinned); empty: taken from the endpoint"),
            Setting("application_uri", str, "urn:leitstand:opcua:client", "must match the URI in the client certificate"),
            Setting("username", str, "", "user name (empty: anonymous)"),
            Setting("password", str, "", "password (never logged)"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        settings = {setting.name: setting.default for setting in self.settings_schema if not setting.required} | dict(settings)
        super().__init__(name, settings)
        for key in ("timeout_s", "publishing_interval_ms", "watchdog_s", "reconnect_min_s", "reconnect_max_s"):
            if settings[key] <= 0:
                raise ValueError(f"{key} must be positive")
        if settings["security_policy"] != "None" and not (settings["certificate"] and settings["private_key"]):
            raise ValueError("security_policy Basic256Sha256 needs certificate and private_key")
        self.url = settings["url"] or f"opc.tcp://{settings['host']}:{settings['port']}"
        self.log = logging.getLogger(f"leitstand.source.{name}")
        self.entries = load_point_map(settings, name)
        self._nodes = [parse_node_id(entry.address) for entry in self.entries]
        self._index = {entry.point: i for i, entry in enumerate(self.entries)}
        if settings["controls"] is None:
            controls = {entry.point for entry in self.entries if entry.kind in CONTROL_KINDS}
        else:
            controls = {str(point) for point in settings["controls"]}
            unknown = sorted(controls - set(self._index))
            if unknown:
                raise ValueError(f"controls {unknown} are not in the point map")
        suffix = settings["control_suffix"]
        self._controls: dict[str, tuple[ua.NodeId, ua.NodeId]] = {}
        for point in sorted(controls):
            node = self._nodes[self._index[point]]
            self._controls[point] = (control_node_id(node, suffix), reason_node_id(node, suffix))
        size = len(self.entries)
        self._scale = np.array([entry.scale or 1.0 for entry in self.entries])
        self._values = np.zeros(size)
        self._quality = np.full(size, INVALID_OLD_DATA, dtype=np.uint16)
        self._times = np.zeros(size)
        self._numbers = np.zeros(size, dtype=np.int64)
        self._context: SourceContext | None = None
        self._client: Client | None = None
        self._connected = False
        self._link_down_published = False
        self.connects = 0

    def points(self) -> Sequence[PointSpec]:
        sbo = self.settings["select_before_operate"]
        return [
            PointSpec(entry.point, entry.kind, controllable=entry.point in self._controls, select_before_operate=sbo and entry.point in self._controls)
            for entry in self.entries
        ]

    # -- acquisition ---------------------------------------------------------------------

    async def run(self, context: SourceContext) -> None:
        self._context = context
        self._numbers = np.asarray(context.point_numbers([entry.point for entry in self.entries]), dtype=np.int64)
        delay = self.settings["reconnect_min_s"]
        url = _safe_url(self.url)
        while True:
            try:
                await self._session(context)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure ends in a reconnect
                what = "link lost" if self._connected else "connect failed"
                self.log.warning("OPC UA source %r: %s (%s): %s: %s; retrying in %.1f s", self.name, what, url, type(exc).__name__, exc, delay)
                if self._connected:
                    delay = self.settings["reconnect_min_s"]
            finally:
                was_connected = self._connected
                self._connected = False
                self._link_down(context, was_connected)
                await self._teardown()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings["reconnect_max_s"])

    def _link_down(self, context: SourceContext, alarm: bool) -> None:
        """Publish every point invalid + old-data (once per outage)."""
        if self._link_down_published:
            return
        self._link_down_published = True
        self._quality[:] = INVALID_OLD_DATA
        context.publish(MeasurementBatch(self.name, self._numbers, self._values.copy(), self._quality.copy(), self._times.copy()))
        if alarm:
            context.raise_alarm(Alarm(f"OPC UA link of {self.name!r} to {_safe_url(self.url)} lost", AlarmPriority.HIGH, source=self.name, category="comms"))

    def _make_client(self) -> Client:
        settings = self.settings
        client = Client(self.url, timeout=settings["timeout_s"], watchdog_intervall=settings["watchdog_s"])
        client.application_uri = settings["application_uri"]
        client.name = client.description = f"Leitstand {self.name}"
        client.session_timeout = 60_000
        if settings["username"]:
            client.set_user(settings["username"])
            client.set_password(settings["password"])
        return client

    async def _connect(self, client: Client) -> None:
        settings = self.settings
        if settings["security_policy"] == "Basic256Sha256":
            mode = ua.MessageSecurityMode.SignAndEncrypt if settings["security_mode"] == "SignAndEncrypt" else ua.MessageSecurityMode.Sign
            await client.set_security(
                SecurityPolicyBasic256Sha256,
                settings["certificate"],
                settings["private_key"],
                private_key_password=settings["private_key_password"] or None,
                server_certificate=settings["server_certificate"] or None,
                mode=mode,
            )
        await client.connect()

    async def _session(self, context: SourceContext) -> None:
        lost = asyncio.Event()
        why: list[str] = []

        def link_lost(reason: str) -> None:
            why.append(reason)
            lost.set()

        async def on_connection_lost(exc: Exception) -> None:
            link_lost(f"{type(exc).__name__}: {exc}")

        def on_status(status: ua.StatusCode) -> None:
            link_lost(f"subscription status {status.name}")

        redact_asyncua_credentials()
        client = self._make_client()
        client.connection_lost_callback = on_connection_lost
        self._client = client
        timeout = self.settings["timeout_s"]
        await asyncio.wait_for(self._connect(client), timeout)
        self._connected = True
        self.connects += 1
        # the integrity read publishes fresh values: from here on a loss must invalidate them
        # again, even before the subscription is set up (a peer can hang in between)
        self._link_down_published = False
        # integrity read
        for part in chunks(list(range(len(self._nodes))), _CHUNK):
            params = ua.ReadParameters(NodesToRead=[ua.ReadValueId(NodeId=self._nodes[i], AttributeId=ua.AttributeIds.Value) for i in part], TimestampsToReturn=ua.TimestampsToReturn.Both)
            values = await client.uaclient.read(params)
            self._apply(context, part, values)
        # spontaneous updates
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=self.settings["publishing_interval_ms"],
            RequestedLifetimeCount=10000,
            RequestedMaxKeepAliveCount=client.get_keepalive_count(self.settings["publishing_interval_ms"]),
            MaxNotificationsPerPublish=10000,
            PublishingEnabled=True,
            Priority=0,
        )
        feed = _Feed(client.uaclient.session, params, lambda items: self._on_items(context, items), on_status)
        await feed.init()
        failed = 0
        for part in chunks(list(range(len(self._nodes))), _CHUNK):
            requests = [self._monitor_request(i) for i in part]
            for i, result in zip(part, await feed.create_monitored_items(requests), strict=True):
                if isinstance(result, ua.StatusCode):
                    failed += 1
                    self.log.warning("OPC UA source %r: cannot monitor %s (%s): %s", self.name, self.entries[i].point, self.entries[i].address, result.name)
        self.log.info("OPC UA source %r connected to %s (security %s): %d points monitored, %d failed", self.name, _safe_url(self.url), self.settings["security_policy"], len(self._nodes) - failed, failed)
        await lost.wait()
        raise ConnectionError(why[0] if why else "link lost")

    def _monitor_request(self, i: int) -> ua.MonitoredItemCreateRequest:
        parameters = ua.MonitoringParameters(
            ClientHandle=i + 1,
            SamplingInterval=self.settings["sampling_interval_ms"],
            QueueSize=self.settings["queue_size"],
            DiscardOldest=True,
        )
        return ua.MonitoredItemCreateRequest(
            ItemToMonitor=ua.ReadValueId(NodeId=self._nodes[i], AttributeId=ua.AttributeIds.Value),
            MonitoringMode=ua.MonitoringMode.Reporting,
            RequestedParameters=parameters,
        )

    def _on_items(self, context: SourceContext, items: Sequence[ua.MonitoredItemNotification]) -> None:
        size = len(self._nodes)
        indices = []
        values = []
        for item in items:
            i = item.ClientHandle - 1
            if 0 <= i < size:
                indices.append(i)
                values.append(item.Value)
            else:
                self.log.warning("OPC UA source %r: notification for unknown client handle %r ignored", self.name, item.ClientHandle)
        self._apply(context, indices, values)

    def _apply(self, context: SourceContext, indices: Sequence[int], data_values: Sequence[ua.DataValue | None]) -> None:
        """Convert DataValues of the given point indices and publish them as one batch."""
        if not indices:
            return
        now = time.time()
        count = len(indices)
        idx = np.fromiter(indices, dtype=np.int64, count=count)
        values = np.empty(count)
        quality = np.empty(count, dtype=np.uint16)
        stamps = np.empty(count)
        scale = self._scale
        last = self._values
        for k, (i, dv) in enumerate(zip(indices, data_values, strict=True)):
            if dv is None:
                values[k], quality[k], stamps[k] = last[i], _BAD_REFERENCE_INVALID, now
                continue
            status = dv.StatusCode
            bits = status_to_quality(status.value) if status is not None else 0
            variant = dv.Value
            number = from_variant(variant.Value) if variant is not None else None
            if number is None:
                number = last[i]  # Bad values come without a value: keep the last one
                if bits == 0:
                    bits = _BAD_REFERENCE_INVALID  # Good status but not a number: wrong node
            else:
                number *= scale[i]
            values[k] = number
            quality[k] = bits
            stamps[k] = from_datetime(dv.SourceTimestamp or dv.ServerTimestamp, now)
        self._values[idx] = values
        self._quality[idx] = quality
        self._times[idx] = stamps
        context.publish(MeasurementBatch(self.name, self._numbers[idx], values, quality, stamps, receive_time=now))

    async def _teardown(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), min(2.0, self.settings["timeout_s"]))
        except (Exception, asyncio.TimeoutError):  # noqa: BLE001 - the link may already be gone
            pass
        for attribute in ("_supervisor_task", "_stale_watchdog_task", "_renew_channel_task"):
            task = getattr(client, attribute, None)
            if task is not None and not task.done():
                task.cancel()
        try:
            client.disconnect_socket()
        except Exception:  # noqa: BLE001
            pass

    async def close(self) -> None:
        await self._teardown()

    # -- commands ------------------------------------------------------------------------

    def _control(self, command: Command, step: str) -> tuple[ua.NodeId, ua.NodeId, Client] | CommandResult:
        name = command.target.name
        if name not in self._controls:
            return CommandResult(command.id, CommandStatus.REJECTED, f"{name!r} is not a control of OPC UA source {self.name!r}", step=step)
        client = self._client
        if client is None or not self._connected:
            return CommandResult(command.id, CommandStatus.FAILED, f"OPC UA source {self.name!r} is not connected", step=step)
        control, reason = self._controls[name]
        return control, reason, client

    async def select(self, command: Command) -> CommandResult:
        """No SBO in OPC UA: check that the control variable is writable for this session."""
        found = self._control(command, "select")
        if isinstance(found, CommandResult):
            return found
        control, _, client = found
        params = ua.ReadParameters(
            NodesToRead=[ua.ReadValueId(NodeId=control, AttributeId=attribute) for attribute in (ua.AttributeIds.AccessLevel, ua.AttributeIds.UserAccessLevel)]
        )
        try:
            access, user_access = await client.uaclient.read(params)
        except (TimeoutError, asyncio.TimeoutError):
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"no answer reading the access level of {control.to_string()}", step="select")
        except Exception as exc:  # noqa: BLE001
            return CommandResult(command.id, CommandStatus.FAILED, f"reading the access level of {control.to_string()} failed: {type(exc).__name__}: {exc}", step="select")
        for what, dv in (("AccessLevel", access), ("UserAccessLevel", user_access)):
            if dv.StatusCode is not None and not dv.StatusCode.is_good():
                return CommandResult(command.id, CommandStatus.FAILED, f"{what} of {control.to_string()}: {dv.StatusCode.name}", step="select")
            bits = int(dv.Value.Value) if dv.Value is not None and dv.Value.Value is not None else 0
            if not bits & ua.AccessLevel.CurrentWrite.mask:
                return CommandResult(command.id, CommandStatus.FAILED, f"{control.to_string()} is not writable ({what} {bits:#x})", step="select")
        return CommandResult(command.id, CommandStatus.SUCCEEDED, f"{control.to_string()} is writable", step="select")

    async def operate(self, command: Command) -> CommandResult:
        found = self._control(command, "operate")
        if isinstance(found, CommandResult):
            return found
        control, reason_node, client = found
        i = self._index[command.target.name]
        entry = self.entries[i]
        protocol_value = float(command.value) / (entry.scale or 1.0)
        if entry.kind in (PointKind.DOUBLE, PointKind.STEP) and protocol_value != round(protocol_value):
            return CommandResult(command.id, CommandStatus.REJECTED, f"{entry.kind.value} command needs an integer, got {command.value!r}")
        write = ua.WriteValue(NodeId=control, AttributeId=ua.AttributeIds.Value, Value=ua.DataValue(Value=to_variant(entry.kind, protocol_value)))
        try:
            (status,) = await client.uaclient.write(ua.WriteParameters(NodesToWrite=[write]))
        except (TimeoutError, asyncio.TimeoutError):
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"no answer to the write of {control.to_string()} within {self.settings['timeout_s']} s")
        except Exception as exc:  # noqa: BLE001
            return CommandResult(command.id, CommandStatus.FAILED, f"write of {control.to_string()} failed: {type(exc).__name__}: {exc}")
        if status.is_good():
            return CommandResult(command.id, CommandStatus.SUCCEEDED, f"{control.to_string()} = {protocol_value:g}: {status.name}")
        detail = ""
        try:
            (dv,) = await asyncio.wait_for(client.uaclient.read(ua.ReadParameters(NodesToRead=[ua.ReadValueId(NodeId=reason_node, AttributeId=ua.AttributeIds.Value)])), 2.0)
            if dv.Value is not None and isinstance(dv.Value.Value, str) and dv.Value.Value:
                detail = f" ({dv.Value.Value})"
        except Exception:  # noqa: BLE001 - the reason is optional (other servers do not have it)
            pass
        if status.value == ua.StatusCodes.BadTimeout:
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"server timed out executing {control.to_string()}{detail}")
        return CommandResult(command.id, CommandStatus.FAILED, f"server refused {control.to_string()} = {protocol_value:g}: {status.name}{detail}")
