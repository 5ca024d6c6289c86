"""IEEE C37.118.2 source: TCP client to PMUs (or a PDC's output), with a PDC that aligns them.

One source instance reads one or more PMU data streams, each over its own TCP connection:

* connect (timeout), send the CFG-2 command, wait for the configuration frame, send the
  start command, then read data frames (10-60 frames/s); a CFG-2 arriving later replaces
  the configuration, and a STAT "configuration change" bit makes the source ask again;
* frames are delimited by SYNC + FRAMESIZE; a frame that does not decode (CRC, size,
  content) is logged, counted and skipped, and the reader re-synchronises on the next SYNC;
* every PMU's samples go through the :class:`~dms_pmu.pdc.Aligner`; each released
  timestamp is published as one :class:`MeasurementBatch` whose ``source_time`` is the PMU
  timestamp (SOC + FRACSEC); STAT → quality per stream (:mod:`dms_pmu.quality`);
* a PMU sending nothing for ``stall_timeout_s`` while connected is *stalled*: its points go
  invalid + old-data, an alarm is raised and the others are aligned without waiting for it;
  no frame for ``data_timeout_s`` or a closed connection is *link loss*: the same, and the
  source reconnects with exponential backoff;
* frequency and ROCOF limits with on-delay raise alarms (:class:`~dms_pmu.events.LimitDetector`).

Points per PMU ``p`` and phasor channel ``c`` (``c`` as named in the CFG-2):
``p/c/mag`` (V × ``magnitude_scale``), ``p/c/ang_deg``, ``p/freq_hz``, ``p/rocof_hz_s``,
and the concentrator's counters ``p/frames_missing``, ``p/frames_late``, ``p/frames_malformed``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dms_hookspecs import (
    REQUIRED,
    Alarm,
    AlarmPriority,
    AlarmState,
    MeasurementBatch,
    PointId,
    PointSpec,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
)
from dms_hookspecs import Detail, Quality, Validity

from . import codec
from .events import LimitDetector
from .pdc import AlignedSet, Aligner
from .quality import LINK_LOST, STALLED, STAT_CFG_CHANGE, STAT_TRIGGER, TRIGGER_REASONS, stat_flags, stat_to_quality

__all__ = ["C37118Source", "PMU_SETTINGS"]

PMU_SETTINGS = SettingsSchema(
    (
        Setting("name", str, REQUIRED, "PMU name: the prefix of its points"),
        Setting("host", str, "127.0.0.1", "PMU/PDC address"),
        Setting("port", int, 4712, "TCP port (C37.118: 4712)"),
        Setting("id_code", int, REQUIRED, "IDCODE of the data stream (sent in command frames)"),
        Setting("phasors", list, REQUIRED, "phasor channel names as in the CFG-2, e.g. [\"VA\", \"VB\", \"VC\"] or [\"V1\"]"),
        Setting("magnitude_scale", float, 1.0, "magnitude unit per V (or A): 0.001 gives kV"),
        Setting("magnitude_unit", str, "V", "unit of the magnitude points"),
    )
)

_NOT_CONFIGURED = Quality(Validity.INVALID, Detail.BAD_REFERENCE).to_bits()


class _LinkLost(Exception):
    pass


class _Pmu:
    """Runtime state of one PMU stream."""

    def __init__(self, table: Mapping[str, Any], source: str) -> None:
        self.name: str = table["name"]
        self.host: str = table["host"]
        self.port: int = table["port"]
        self.id_code: int = table["id_code"]
        self.channels: list[str] = [str(c) for c in table["phasors"]]
        self.scale: float = table["magnitude_scale"]
        self.unit: str = table["magnitude_unit"]
        self.peer = f"{self.host}:{self.port}"
        self.cfg: Any = None
        self.stream: codec.StreamConfig | None = None
        self.index: list[int | None] = []  # configured channel → CFG-2 phasor index
        self.connected = False
        self.online = False  # frames flowing
        self.last_frame = 0.0  # monotonic
        self.last_stat = 0
        self.writer: asyncio.StreamWriter | None = None
        self.alarm: str | None = None  # "link" or "stalled" while raised
        self.freq: LimitDetector | None = None
        self.rocof: LimitDetector | None = None
        self.fresh_cfg = False
        self.numbers = np.zeros(0, dtype=np.int64)
        self.counter_numbers = np.zeros(0, dtype=np.int64)
        self.values = np.full(0, np.nan)
        self.log = logging.getLogger(f"leitstand.source.{source}.{self.name}")

    def point_names(self) -> list[str]:
        names = []
        for channel in self.channels:
            names += [f"{self.name}/{channel}/mag", f"{self.name}/{channel}/ang_deg"]
        return names + [f"{self.name}/freq_hz", f"{self.name}/rocof_hz_s"]

    def counter_names(self) -> list[str]:
        return [f"{self.name}/frames_missing", f"{self.name}/frames_late", f"{self.name}/frames_malformed"]


def _table(raw: Any, index: int) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValueError(f"pmus[{index}] must be a table")
    unknown = set(raw) - {s.name for s in PMU_SETTINGS}
    if unknown:
        raise ValueError(f"pmus[{index}]: unknown keys {sorted(unknown)}")
    table = {}
    for setting in PMU_SETTINGS:
        value = raw.get(setting.name, setting.default)
        if value is REQUIRED:
            raise ValueError(f"pmus[{index}]: {setting.name!r} is required")
        if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, setting.type):
            raise ValueError(f"pmus[{index}].{setting.name} must be {setting.type.__name__}")
        table[setting.name] = value
    if not table["phasors"]:
        raise ValueError(f"pmus[{index}]: phasors must name at least one channel")
    return table


class C37118Source(Source):
    """Client side of IEEE C37.118.2 for one or more PMU streams, time-aligned by a PDC."""

    settings_schema = SettingsSchema(
        (
            Setting("pmus", list, REQUIRED, "PMU streams: tables with name, host, port, id_code, phasors, magnitude_scale, magnitude_unit"),
            Setting("wait_window_s", float, 0.1, "PDC: longest wait for the slowest PMU of a timestamp"),
            Setting("stall_timeout_s", float, 1.0, "no frame from a connected PMU for this long: stalled (alarm, points invalid)"),
            Setting("data_timeout_s", float, 3.0, "no frame for this long: link lost, reconnect"),
            Setting("connect_timeout_s", float, 2.0, "TCP connect + configuration frame timeout"),
            Setting("reconnect_min_s", float, 0.5, "first reconnect delay; doubles per failed attempt"),
            Setting("reconnect_max_s", float, 30.0, "reconnect delay cap"),
            Setting("nominal_hz", float, 50.0, "reference of the frequency event detector"),
            Setting("freq_limit_hz", float, 0.2, "frequency event when |f - nominal| exceeds this (0 = off)"),
            Setting("rocof_limit_hz_s", float, 0.5, "ROCOF event when |df/dt| exceeds this (0 = off)"),
            Setting("event_on_delay_s", float, 0.5, "a limit must be violated (and respected again) this long, in PMU time"),
            Setting("counters_period_s", float, 1.0, "how often the frames_missing/late/malformed points are published"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(name, settings)
        for key in ("wait_window_s", "stall_timeout_s", "data_timeout_s", "connect_timeout_s", "reconnect_min_s", "reconnect_max_s", "counters_period_s"):
            if not settings[key] > 0:
                raise ValueError(f"{key} must be positive")
        if settings["reconnect_max_s"] < settings["reconnect_min_s"]:
            raise ValueError("reconnect_max_s must not be smaller than reconnect_min_s")
        if settings["data_timeout_s"] < settings["stall_timeout_s"]:
            raise ValueError("data_timeout_s must not be smaller than stall_timeout_s")
        self.pmus = [_Pmu(_table(raw, i), name) for i, raw in enumerate(settings["pmus"])]
        if not self.pmus:
            raise ValueError("pmus must list at least one PMU stream")
        names = [p.name for p in self.pmus]
        if len(set(names)) != len(names):
            raise ValueError(f"PMU names must be unique: {names}")
        self.aligner = Aligner(names, settings["wait_window_s"])
        self.log = logging.getLogger(f"leitstand.source.{name}")
        self._context: SourceContext | None = None
        self.published_sets = 0
        self.complete_sets = 0  # sets with every PMU's sample
        self.link_losses = 0

    # --- points -----------------------------------------------------------------------------

    def points(self) -> Sequence[PointSpec]:
        specs: list[PointSpec] = []
        for pmu in self.pmus:
            for channel in pmu.channels:
                specs.append(PointSpec(f"{pmu.name}/{channel}/mag", unit=pmu.unit, description=f"PMU {pmu.name} phasor {channel}: magnitude"))
                specs.append(PointSpec(f"{pmu.name}/{channel}/ang_deg", unit="deg", description=f"PMU {pmu.name} phasor {channel}: angle"))
            specs.append(PointSpec(f"{pmu.name}/freq_hz", unit="Hz", description=f"PMU {pmu.name}: frequency"))
            specs.append(PointSpec(f"{pmu.name}/rocof_hz_s", unit="Hz/s", description=f"PMU {pmu.name}: rate of change of frequency"))
            specs += [PointSpec(n, description="PDC counter") for n in pmu.counter_names()]
        return specs

    # --- running ----------------------------------------------------------------------------

    async def run(self, context: SourceContext) -> None:
        self._context = context
        for pmu in self.pmus:
            pmu.numbers = np.asarray(context.point_numbers(pmu.point_names()), dtype=np.int64)
            pmu.counter_numbers = np.asarray(context.point_numbers(pmu.counter_names()), dtype=np.int64)
            pmu.values = np.full(pmu.numbers.size, np.nan)
            if self.settings["freq_limit_hz"] > 0:
                pmu.freq = LimitDetector(self.settings["freq_limit_hz"], self.settings["event_on_delay_s"], self.settings["nominal_hz"])
            if self.settings["rocof_limit_hz_s"] > 0:
                pmu.rocof = LimitDetector(self.settings["rocof_limit_hz_s"], self.settings["event_on_delay_s"])
        tasks = [asyncio.create_task(self._connection(pmu), name=f"{self.name}:{pmu.name}") for pmu in self.pmus]
        tasks.append(asyncio.create_task(self._supervise(), name=f"{self.name}:pdc"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        for pmu in self.pmus:
            if pmu.writer is not None:
                pmu.writer.close()

    async def _connection(self, pmu: _Pmu) -> None:
        backoff = self.settings["reconnect_min_s"]
        while True:
            try:
                await self._session(pmu)
                reason = "connection closed by the PMU"
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, _LinkLost) as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if pmu.writer is not None:
                pmu.writer.close()
                pmu.writer = None
            was_online = pmu.online
            self._link_lost(pmu, reason)
            if was_online:
                backoff = self.settings["reconnect_min_s"]
            pmu.log.info("reconnecting to %s in %.1f s", pmu.peer, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.settings["reconnect_max_s"])

    async def _session(self, pmu: _Pmu) -> None:
        timeout = self.settings["connect_timeout_s"]
        reader, writer = await asyncio.wait_for(asyncio.open_connection(pmu.host, pmu.port), timeout)
        pmu.writer = writer
        pmu.connected = True
        writer.write(codec.command(pmu.id_code, "cfg2"))
        await writer.drain()
        deadline = time.monotonic() + timeout
        while pmu.cfg is None or pmu.stream is None or not pmu.fresh_cfg:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _LinkLost("no configuration frame")
            frame = await asyncio.wait_for(self._read_frame(reader, pmu), remaining)
            self._handle(pmu, frame)
        pmu.fresh_cfg = False
        writer.write(codec.command(pmu.id_code, "start"))
        await writer.drain()
        pmu.log.info("connected to %s (IDCODE %d, %d frames/s)", pmu.peer, pmu.id_code, pmu.stream.data_rate)
        while True:
            frame = await asyncio.wait_for(self._read_frame(reader, pmu), self.settings["data_timeout_s"])
            self._handle(pmu, frame)

    async def _read_frame(self, reader: asyncio.StreamReader, pmu: _Pmu) -> bytes:
        """The next frame by SYNC + FRAMESIZE; skips (and counts) garbage between frames."""
        skipped = 0
        while True:
            first = await reader.readexactly(1)
            if first[0] != codec.SYNC_BYTE:
                skipped += 1
                continue
            head = first + await reader.readexactly(3)
            size = int.from_bytes(head[2:4], "big")
            if size < codec.MIN_FRAME_SIZE:
                skipped += 4
                continue
            if skipped:
                self._malformed(pmu, f"{skipped} bytes outside frames")
            return head + await reader.readexactly(size - 4)

    def _malformed(self, pmu: _Pmu, why: str) -> None:
        self.aligner.counters[pmu.name].malformed += 1
        pmu.log.warning("malformed frame from %s skipped: %s", pmu.peer, why)

    def _handle(self, pmu: _Pmu, frame: bytes) -> None:
        try:
            kind = codec.frame_type(frame)
            if kind == codec.FRAME_DATA:
                if pmu.cfg is None:
                    return  # data before the configuration (a restarted session): ignore
                samples = codec.decode_data(frame, pmu.cfg, [pmu.stream])
                self._sample(pmu, samples[0])
            elif kind in (codec.FRAME_CFG1, codec.FRAME_CFG2):
                cfg, streams = codec.decode_config(frame)
                self._configure(pmu, cfg, streams)
            elif kind == codec.FRAME_HEADER:
                pass
            else:
                codec.decode_command(frame) if kind == codec.FRAME_COMMAND else codec._check(frame)
                pmu.log.info("ignored frame type %d from %s", kind, pmu.peer)
        except codec.UnsupportedFrame as exc:
            pmu.log.warning("unsupported frame from %s skipped: %s", pmu.peer, exc)
        except codec.MalformedFrame as exc:
            self._malformed(pmu, str(exc))

    def _configure(self, pmu: _Pmu, cfg: Any, streams: list[codec.StreamConfig]) -> None:
        stream = next((s for s in streams if s.id_code == pmu.id_code), None)
        if stream is None or len(streams) != 1:
            raise codec.MalformedFrame(f"configuration of IDCODE(s) {[s.id_code for s in streams]}, expected one stream {pmu.id_code}")
        names = [c.name for c in stream.phasors]
        pmu.index = [names.index(c) if c in names else None for c in pmu.channels]
        for channel, index in zip(pmu.channels, pmu.index, strict=True):
            if index is None:
                pmu.log.error("phasor channel %r not in the CFG-2 of %s (has %s): its points stay invalid", channel, pmu.peer, names)
        pmu.cfg, pmu.stream, pmu.fresh_cfg = cfg, stream, True

    def _sample(self, pmu: _Pmu, sample: codec.Sample) -> None:
        pmu.last_frame = time.monotonic()
        if not pmu.online:
            pmu.online = True
            pmu.log.info("data from %s flowing", pmu.peer)
            self.aligner.set_live(pmu.name, True)
            if pmu.alarm is not None:
                self._alarm(pmu, AlarmState.CLEARED, f"PMU {pmu.name} ({pmu.peer}) delivers data again", "comms")
                pmu.alarm = None
        self._stat_events(pmu, sample.stat)
        self._publish_sets(self.aligner.add(pmu.name, sample))

    def _stat_events(self, pmu: _Pmu, stat: int) -> None:
        previous, pmu.last_stat = pmu.last_stat, stat
        if stat & STAT_TRIGGER and not previous & STAT_TRIGGER:
            reason = TRIGGER_REASONS.get(stat & 0xF, "reserved")
            self._alarm(pmu, AlarmState.RAISED, f"PMU {pmu.name} trigger: {reason}", "pmu-trigger", AlarmPriority.LOW)
        elif previous & STAT_TRIGGER and not stat & STAT_TRIGGER:
            self._alarm(pmu, AlarmState.CLEARED, f"PMU {pmu.name} trigger reset", "pmu-trigger", AlarmPriority.LOW)
        if stat & STAT_CFG_CHANGE and not previous & STAT_CFG_CHANGE and pmu.writer is not None:
            pmu.log.info("%s announces a configuration change: requesting CFG-2", pmu.peer)
            pmu.writer.write(codec.command(pmu.id_code, "cfg2"))
        if (stat ^ previous) & 0xF000 and stat & 0xF000:
            pmu.log.info("%s STAT: %s", pmu.peer, ", ".join(stat_flags(stat)))

    # --- publishing --------------------------------------------------------------------------

    def _publish_sets(self, sets: list[AlignedSet]) -> None:
        for aligned in sets:
            self._publish(aligned)

    def _publish(self, aligned: AlignedSet) -> None:
        numbers, values, quality = [], [], []
        for name, sample in aligned.samples.items():
            pmu = next(p for p in self.pmus if p.name == name)
            bits = stat_to_quality(sample.stat)
            row = []
            row_quality = []
            for index in pmu.index:
                if index is None or index >= len(sample.phasors):
                    row += [math.nan, math.nan]
                    row_quality += [_NOT_CONFIGURED, _NOT_CONFIGURED]
                else:
                    magnitude, angle = sample.phasors[index]
                    row += [magnitude * pmu.scale, math.degrees(angle)]
                    row_quality += [bits, bits]
            row += [sample.freq_hz, sample.rocof_hz_s]
            row_quality += [bits, bits]
            pmu.values[:] = row
            numbers.append(pmu.numbers)
            values += row
            quality += row_quality
            if Quality.from_bits(bits).validity is Validity.GOOD:
                self._limit_events(pmu, sample)
        if numbers and self._context is not None:
            n = len(values)
            self._context.publish(
                MeasurementBatch(self.name, np.concatenate(numbers), np.asarray(values, dtype=float),
                                 np.asarray(quality, dtype=np.uint16), np.full(n, aligned.timestamp))
            )
            self.published_sets += 1
            self.complete_sets += len(aligned.samples) == len(self.pmus)

    def _limit_events(self, pmu: _Pmu, sample: codec.Sample) -> None:
        for detector, value, what, unit in ((pmu.freq, sample.freq_hz, "frequency", "Hz"), (pmu.rocof, sample.rocof_hz_s, "ROCOF", "Hz/s")):
            if detector is None:
                continue
            change = detector.update(value, sample.timestamp)
            point = f"{pmu.name}/freq_hz" if what == "frequency" else f"{pmu.name}/rocof_hz_s"
            if change == "raised":
                limit = f"|f - {detector.reference:g}| > {detector.limit:g}" if what == "frequency" else f"|df/dt| > {detector.limit:g}"
                self._alarm(pmu, AlarmState.RAISED, f"PMU {pmu.name}: {what} event, {value:.3f} {unit} ({limit} {unit} for {detector.on_delay_s:g} s)",
                            what.lower(), AlarmPriority.HIGH, point)
            elif change == "cleared":
                self._alarm(pmu, AlarmState.CLEARED, f"PMU {pmu.name}: {what} back within limits ({value:.3f} {unit})", what.lower(), AlarmPriority.HIGH, point)

    def _invalidate(self, pmu: _Pmu, bits: int) -> None:
        if self._context is None or not pmu.numbers.size:
            return
        n = pmu.numbers.size
        self._context.publish(MeasurementBatch(self.name, pmu.numbers, pmu.values.copy(), np.full(n, bits, np.uint16), np.full(n, time.time())))

    def _link_lost(self, pmu: _Pmu, why: str) -> None:
        pmu.connected = False
        if pmu.online or pmu.alarm is None:
            self.link_losses += int(pmu.online)
            pmu.online = False
            pmu.log.warning("link to %s lost (%s): points invalid", pmu.peer, why)
            self._publish_sets(self.aligner.set_live(pmu.name, False))
            self._invalidate(pmu, LINK_LOST)
            if pmu.alarm != "link":
                self._alarm(pmu, AlarmState.RAISED, f"PMU {pmu.name}: link to {pmu.peer} lost ({why})", "comms")
                pmu.alarm = "link"

    def _stalled(self, pmu: _Pmu) -> None:
        pmu.online = False
        pmu.log.warning("%s stalled: no frame for %.1f s", pmu.peer, time.monotonic() - pmu.last_frame)
        self._publish_sets(self.aligner.set_live(pmu.name, False))
        self._invalidate(pmu, STALLED)
        self._alarm(pmu, AlarmState.RAISED, f"PMU {pmu.name} ({pmu.peer}) stalled: no data frame for {self.settings['stall_timeout_s']:g} s, others continue", "comms")
        pmu.alarm = "stalled"

    async def _supervise(self) -> None:
        """Release aligned sets whose wait window passed; detect stalls; publish counters."""
        next_counters = time.monotonic()
        while True:
            await asyncio.sleep(0.01)
            self._publish_sets(self.aligner.poll())
            now = time.monotonic()
            for pmu in self.pmus:
                if pmu.online and now - pmu.last_frame > self.settings["stall_timeout_s"]:
                    self._stalled(pmu)
            if now >= next_counters and self._context is not None:
                next_counters = now + self.settings["counters_period_s"]
                for pmu in self.pmus:
                    c = self.aligner.counters[pmu.name]
                    self._context.publish(MeasurementBatch(self.name, pmu.counter_numbers, np.asarray([c.missing, c.late, c.malformed], dtype=float),
                                                           np.zeros(3, np.uint16), np.full(3, time.time())))

    def _alarm(self, pmu: _Pmu, state: AlarmState, message: str, category: str, priority: AlarmPriority = AlarmPriority.HIGH,
               point: str | None = None) -> None:
        if self._context is None:
            return
        try:
            self._context.raise_alarm(Alarm(message, priority, source=self.name, point=PointId(point) if point else None, state=state, category=category))
        except Exception as exc:  # noqa: BLE001 - an alarm that cannot be raised must not stop acquisition
            self.log.error("cannot raise alarm: %s", exc)
