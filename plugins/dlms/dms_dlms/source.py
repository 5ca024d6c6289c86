"""DLMS/COSEM meter source: cyclic polling of one meter (meters have no spontaneous reporting).

Per session: TCP connect → association (AARQ, optional low-level-security password) → read the
association view (which objects the meter has) → scalers (attribute 3) → then every
``poll_period_s``: one get-with-list of the meter clock and every mapped attribute, published
with the meter clock as source time; every ``profile_period_s`` the load profiles are read by
range from the last row seen (rows published with their own clock time) and the event log
(power-down events raise an ``outage`` alarm, power-up events clear it).

A meter that does not answer, closes the connection or sends what the library cannot decode:
all points INVALID|OLD_DATA at once, a ``comms`` alarm, reconnect with exponential backoff.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from dms_hookspecs import (
    Alarm,
    AlarmPriority,
    AlarmState,
    Command,
    CommandResult,
    CommandStatus,
    Detail,
    MeasurementBatch,
    PointKind,
    PointSpec,
    Quality,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
    Validity,
)
from gurux_dlms.enums import ObjectType

from .address import CLOCK_LN, EVENT_LOG_LN, DlmsAddress, parse_address
from .client import DlmsAccessError, DlmsClient, DlmsError, DlmsLinkLost, DlmsTimeout
from dms_hookspecs.pointmap import load_point_map, point_map_settings

from .pointmap import PointMapEntry

__all__ = ["DlmsSource"]

GOOD = 0
LINK_DOWN = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()
READ_FAILED = Quality(Validity.INVALID, Detail.FAILURE).to_bits()
NOT_IN_METER = Quality(Validity.INVALID, Detail.BAD_REFERENCE).to_bits()
BAD_VALUE = Quality(Validity.INVALID, Detail.INCONSISTENT).to_bits()

_SCALED = {ObjectType.REGISTER: 3, ObjectType.EXTENDED_REGISTER: 3, ObjectType.DEMAND_REGISTER: 4}


def _epoch(value: Any) -> float:
    """A gurux date-time (GXDateTime / datetime) as epoch seconds."""
    value = getattr(value, "value", value)
    if isinstance(value, dt.datetime):
        return value.timestamp()
    raise ValueError(f"not a date-time: {value!r}")


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


class DlmsSource(Source):
    """Polls one DLMS/COSEM meter over TCP (WRAPPER); see the module documentation."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "meter address"),
            Setting("port", int, 4059, "meter TCP port (4059 = IANA DLMS/COSEM)"),
            *point_map_settings(points_file_required=True),
            Setting("client_address", int, 16, "client SAP (16 public, 17 management, …)"),
            Setting("server_address", int, 1, "logical device (server SAP)"),
            Setting("password", str, "", "low-level-security password (never logged); empty = none"),
            Setting("connect_timeout_s", float, 3.0, "TCP connect + association timeout"),
            Setting("request_timeout_s", float, 3.0, "timeout of one request"),
            Setting("poll_period_s", float, 5.0, "register polling period"),
            Setting("profile_period_s", float, 60.0, "load profile / event log reading period (0 = every poll)"),
            Setting("profile_backfill_s", float, 86400.0, "how far back the first load profile read goes"),
            Setting("event_log", str, EVENT_LOG_LN, "event log logical name ('' = do not read)"),
            Setting("power_down_codes", list, [1], "event codes that mean a power failure"),
            Setting("power_up_codes", list, [2], "event codes that mean power restored"),
            Setting("use_meter_clock", bool, True, "meter clock as source time (else the receive time)"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay"),
            Setting("reconnect_max_s", float, 30.0, "reconnect delay cap (doubling)"),
        )
    )

    def __init__(self, name: str, settings) -> None:
        super().__init__(name, settings)
        if settings["poll_period_s"] <= 0:
            raise ValueError("poll_period_s must be positive")
        self.entries: list[PointMapEntry] = load_point_map(settings, name)
        self.addresses: dict[str, DlmsAddress] = {e.point: parse_address(e.address) for e in self.entries}
        self._by_point = {e.point: e for e in self.entries}
        self._client: DlmsClient | None = None
        self._objects: dict[str, Any] = {}
        self._wake = asyncio.Event()
        self._profile_since: dict[str, float] = {}
        self._event_since: float | None = None
        self._values: dict[str, tuple[float, float]] = {}  # point -> (value, source_time)
        self.log = logging.getLogger(f"leitstand.source.{name}")
        self.polls = 0

    def points(self) -> Sequence[PointSpec]:
        return [
            PointSpec(
                entry.point,
                entry.kind,
                controllable=self.addresses[entry.point].is_disconnect_control and self.addresses[entry.point].attribute == 2,
                description=f"DLMS {entry.address}",
            )
            for entry in self.entries
        ]

    # -- main loop ------------------------------------------------------------------------------

    async def run(self, context: SourceContext) -> None:
        self.log = context.log
        names = [e.point for e in self.entries]
        self._numbers = dict(zip(names, (int(n) for n in context.point_numbers(names)), strict=True))
        settings = self.settings
        backoff = settings["reconnect_min_s"]
        link_up: bool | None = None  # None: never connected yet
        peer = f"{settings['host']}:{settings['port']}"
        while True:
            client = DlmsClient(
                settings["host"],
                settings["port"],
                client_address=settings["client_address"],
                server_address=settings["server_address"],
                password=settings["password"],
                connect_timeout_s=settings["connect_timeout_s"],
                request_timeout_s=settings["request_timeout_s"],
                log=self.log,
            )
            polled = self.polls
            reason = ""
            try:
                await client.connect()
                self._client = client
                await self._prepare(client, context)
                if link_up is not None and not link_up:
                    context.raise_alarm(
                        Alarm(f"meter {self.name!r} ({peer}) answers again", AlarmPriority.HIGH, self.name,
                              state=AlarmState.CLEARED, category="comms")
                    )
                link_up = True
                await self._poll_forever(client, context)
            except asyncio.CancelledError:
                raise
            except (DlmsError, OSError) as exc:
                reason = f"{type(exc).__name__}: {exc}"
            except Exception as exc:  # noqa: BLE001 - whatever happens, mark invalid and reconnect
                self.log.exception("dlms %s: unexpected error", peer)
                reason = f"{type(exc).__name__}: {exc}"
            finally:
                self._client = None
                await client.close()
            # link lost: all points invalid at once, alarm once per outage
            self._publish_all(context, LINK_DOWN)
            if link_up is not False:
                self.log.warning("dlms %s (%s): meter unreachable: %s", self.name, peer, reason)
                context.raise_alarm(
                    Alarm(f"meter {self.name!r} ({peer}) not answering: {reason}", AlarmPriority.HIGH, self.name, category="comms")
                )
                link_up = False
            else:
                self.log.info("dlms %s (%s): reconnect failed: %s", self.name, peer, reason)
            if self.polls > polled:
                backoff = settings["reconnect_min_s"]
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, settings["reconnect_max_s"])

    async def _prepare(self, client: DlmsClient, context: SourceContext) -> None:
        """Association view, scalers, profile capture objects."""
        objects = await client.read_object_list()
        self._objects = {obj.logicalName: obj for obj in objects}
        missing = []
        self._reads: list[tuple[str, Any, int]] = []  # (point, object, attribute)
        self._profiles: dict[str, list[tuple[str, int]]] = {}  # profile LN -> [(point, column index)]
        for entry in self.entries:
            address = self.addresses[entry.point]
            obj = self._objects.get(address.logical_name)
            if obj is None:
                missing.append(entry.point)
            elif address.is_profile_column:
                self._profiles.setdefault(address.logical_name, []).append((entry.point, -1))
            else:
                self._reads.append((entry.point, obj, address.attribute))
        if missing:
            self.log.warning("dlms %s: the meter has no object for %s", self.name, ", ".join(missing))
            self._publish(context, missing, [self._values.get(p, (0.0, 0.0))[0] for p in missing], NOT_IN_METER, time.time())
        # capture objects of the profiles and the event log
        profile_names = list(self._profiles)
        event_log = self.settings["event_log"]
        if event_log and event_log in self._objects:
            profile_names.append(event_log)
        elif event_log:
            self.log.warning("dlms %s: the meter has no event log %s", self.name, event_log)
        for name in profile_names:
            await client.read(self._objects[name], 3)
        for name, columns in self._profiles.items():
            captured = [(obj.logicalName, co.attributeIndex) for obj, co in self._objects[name].captureObjects]
            resolved = []
            for point, _ in columns:
                key = (self.addresses[point].column, 2)
                if key in captured:
                    resolved.append((point, captured.index(key)))
                else:
                    self.log.warning("dlms %s: profile %s does not capture %s", self.name, name, key[0])
                    self._publish(context, [point], [0.0], NOT_IN_METER, time.time())
            self._profiles[name] = resolved
        # scalers of every register read directly or through a profile
        scaled = {}
        for _, obj, _ in self._reads:
            if obj.objectType in _SCALED:
                scaled[obj.logicalName] = obj
        for name in self._profiles:
            for obj, _ in self._objects[name].captureObjects:
                if obj.objectType in _SCALED:
                    scaled[obj.logicalName] = obj
        items = [(obj, _SCALED[obj.objectType]) for obj in scaled.values()]
        for (obj, attribute), result in zip(items, await client.read_list(items), strict=True):
            if isinstance(result, DlmsAccessError):
                self.log.warning("dlms %s: scaler of %s unreadable; using 1", self.name, obj.logicalName)
        self._clock = self._objects.get(CLOCK_LN) if self.settings["use_meter_clock"] else None

    async def _poll_forever(self, client: DlmsClient, context: SourceContext) -> None:
        profile_period = self.settings["profile_period_s"]
        next_profile = 0.0
        while True:
            meter_now = await self._poll(client, context)
            self.polls += 1
            if time.monotonic() >= next_profile:
                await self._read_profiles(client, context, meter_now)
                await self._read_events(client, context, meter_now)
                next_profile = time.monotonic() + profile_period
            self._wake.clear()
            lost = asyncio.ensure_future(client.lost.wait())
            wake = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait((lost, wake), timeout=self.settings["poll_period_s"], return_when=asyncio.FIRST_COMPLETED)
            finally:
                lost.cancel()
                wake.cancel()
            if client.lost.is_set():
                raise DlmsLinkLost("the meter closed the connection")

    async def _poll(self, client: DlmsClient, context: SourceContext) -> float:
        """One get-with-list of clock + mapped attributes; returns the meter time."""
        items = [(obj, attribute) for _, obj, attribute in self._reads]
        if self._clock is not None:
            items.insert(0, (self._clock, 2))
        results = await client.read_list(items)
        received = time.time()
        stamp = received
        if self._clock is not None:
            clock = results.pop(0)
            try:
                stamp = _epoch(clock)
            except ValueError:
                self.log.debug("dlms %s: meter clock unreadable (%r); using receive time", self.name, clock)
        points, values, quality = [], [], []
        for (point, obj, attribute), result in zip(self._reads, results, strict=True):
            points.append(point)
            if isinstance(result, DlmsAccessError):
                values.append(self._values.get(point, (0.0, 0.0))[0])
                quality.append(READ_FAILED)
                continue
            try:
                value = self._to_float(point, obj, attribute, result)
            except (TypeError, ValueError):
                self.log.warning("dlms %s: %s: unusable value %r", self.name, point, result)
                values.append(self._values.get(point, (0.0, 0.0))[0])
                quality.append(BAD_VALUE)
                continue
            values.append(value)
            quality.append(GOOD)
        self._publish(context, points, values, quality, stamp, received)
        return stamp

    def _to_float(self, point: str, obj, attribute: int, raw: Any) -> float:
        entry = self._by_point[point]
        if obj.objectType == ObjectType.DISCONNECT_CONTROL and attribute == 2:
            connected = bool(raw)
            if entry.kind is PointKind.DOUBLE:
                return 2.0 if connected else 1.0
            return 1.0 if connected else 0.0
        if isinstance(raw, bool):
            raw = int(raw)
        value = float(raw) * entry.scale
        if value != value:  # NaN
            raise ValueError("NaN")
        return value

    async def _read_profiles(self, client: DlmsClient, context: SourceContext, meter_now: float) -> None:
        for name, columns in self._profiles.items():
            if not columns:
                continue
            profile = self._objects[name]
            since = self._profile_since.get(name, meter_now - self.settings["profile_backfill_s"])
            rows = await client.read_rows_by_range(profile, _utc(since), _utc(meter_now + 3600))
            published = 0
            for row in rows:
                try:
                    stamp = _epoch(row[0])
                except (ValueError, IndexError):
                    continue
                if stamp <= since and name in self._profile_since:
                    continue  # the range is inclusive: skip what was published
                points, values, quality = [], [], []
                for point, index in columns:
                    points.append(point)
                    try:
                        values.append(self._to_float(point, profile, 2, row[index]))
                        quality.append(GOOD)
                    except (TypeError, ValueError, IndexError):
                        values.append(0.0)
                        quality.append(BAD_VALUE)
                self._publish(context, points, values, quality, stamp)
                self._profile_since[name] = max(self._profile_since.get(name, stamp), stamp)
                published += 1
            self._profile_since.setdefault(name, since)
            if published:
                self.log.debug("dlms %s: %d load profile rows from %s", self.name, published, name)

    async def _read_events(self, client: DlmsClient, context: SourceContext, meter_now: float) -> None:
        name = self.settings["event_log"]
        log = self._objects.get(name) if name else None
        if log is None:
            return
        if self._event_since is None:  # first contact: only events from now on
            self._event_since = meter_now
            return
        since = self._event_since
        rows = await client.read_rows_by_range(log, _utc(since), _utc(meter_now + 3600))
        down = {int(c) for c in self.settings["power_down_codes"]}
        up = {int(c) for c in self.settings["power_up_codes"]}
        for row in rows:
            try:
                stamp, code = _epoch(row[0]), int(row[1])
            except (ValueError, TypeError, IndexError):
                self.log.warning("dlms %s: unusable event log row %r", self.name, row)
                continue
            if stamp <= since:
                continue
            self._event_since = max(self._event_since, stamp)
            when = _utc(stamp).isoformat(timespec="seconds")
            if code in down:
                self.log.warning("dlms %s: power failure at %s", self.name, when)
                context.raise_alarm(
                    Alarm(f"meter {self.name!r}: power failure at {when}", AlarmPriority.HIGH, self.name,
                          category="outage", time=stamp)
                )
            elif code in up:
                self.log.info("dlms %s: power restored at %s", self.name, when)
                context.raise_alarm(
                    Alarm(f"meter {self.name!r}: power restored at {when}", AlarmPriority.HIGH, self.name,
                          state=AlarmState.CLEARED, category="outage", time=stamp)
                )

    # -- publishing -------------------------------------------------------------------------------

    def _publish(self, context, points, values, quality, stamp: float, received: float | None = None) -> None:
        if not points:
            return
        received = time.time() if received is None else received
        count = len(points)
        quality = np.full(count, quality, dtype=np.uint16) if isinstance(quality, int) else np.asarray(quality, dtype=np.uint16)
        for point, value in zip(points, values, strict=True):
            self._values[point] = (float(value), stamp)
        context.publish(
            MeasurementBatch(
                self.name,
                np.fromiter((self._numbers[p] for p in points), dtype=np.int64, count=count),
                np.asarray(values, dtype=np.float64),
                quality,
                np.full(count, stamp),
                receive_time=received,
            )
        )

    def _publish_all(self, context, quality: int) -> None:
        points = [e.point for e in self.entries]
        values = [self._values.get(p, (0.0, 0.0))[0] for p in points]
        stamps = [self._values.get(p, (0.0, time.time()))[1] for p in points]
        now = time.time()
        context.publish(
            MeasurementBatch(
                self.name,
                np.fromiter((self._numbers[p] for p in points), dtype=np.int64, count=len(points)),
                np.asarray(values, dtype=np.float64),
                np.full(len(points), quality, dtype=np.uint16),
                np.asarray(stamps, dtype=np.float64),
                receive_time=now,
            )
        )

    # -- commands ---------------------------------------------------------------------------------

    async def operate(self, command: Command) -> CommandResult:
        point = command.target.name
        address = self.addresses.get(point)
        if address is None or not (address.is_disconnect_control and address.attribute == 2):
            return CommandResult(command.id, CommandStatus.REJECTED, f"{point!r} is not a disconnect control of {self.name!r}")
        kind = self._by_point[point].kind
        value = int(command.value)
        if kind is PointKind.DOUBLE:
            method = {1: 1, 2: 2}.get(value)  # 1 open -> remote_disconnect, 2 close -> remote_reconnect
        else:
            method = {0: 1, 1: 2}.get(value)
        if method is None:
            return CommandResult(command.id, CommandStatus.REJECTED, f"value {command.value!r} is not valid for {point!r}")
        client = self._client
        target = self._objects.get(address.logical_name)
        if client is None or target is None or not client.connected:
            return CommandResult(command.id, CommandStatus.FAILED, f"meter {self.name!r} is not connected")
        action = "remote_disconnect" if method == 1 else "remote_reconnect"
        try:
            await client.method(target, method, 0)
        except DlmsTimeout as exc:
            return CommandResult(command.id, CommandStatus.TIMEOUT, f"{action}: {exc}")
        except DlmsAccessError as exc:
            return CommandResult(command.id, CommandStatus.FAILED, f"{action} refused by the meter (action result {exc.code})")
        except (DlmsError, OSError) as exc:
            return CommandResult(command.id, CommandStatus.FAILED, f"{action} failed: {exc}")
        self._wake.set()  # poll now: publish the new state
        return CommandResult(command.id, CommandStatus.SUCCEEDED, f"{action} confirmed by the meter")
