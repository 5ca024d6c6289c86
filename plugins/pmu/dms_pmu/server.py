"""C37.118.2 PMU simulator server: a twin's voltage phasors as one PMU data stream over TCP.

Answers command frames (CFG-2 → its configuration frame, header, start, stop; CFG-1 is
answered with the CFG-2, CFG-3 is refused with a log line: pyc37 has no CFG-3) and, once
started, sends a data frame every ``1 / rate`` s on timestamps aligned to the second (two
servers at one rate send identical timestamps, as GPS-synchronised PMUs do).

Phasors per channel (``phasors = [{ name = "V1", bus = "Bus 5" }, ...]``):

* ``bus``: a bus of a :class:`~dms_simulator.GridTwin` (pandapower bus name or the model's
  connectivity node mRID): magnitude = phase voltage from the twin's power flow in V,
  angle = its voltage angle;
* ``magnitude_point`` (kV line-to-line) and ``angle_point`` (degrees): points of any twin.

Frequency = ``nominal_hz`` + an offset that moves with ``rocof_hz_s`` (up to
``max_deviation_hz``) + Gaussian noise; :meth:`set_frequency` injects events. For tests and
fault injection: :meth:`stall`, :attr:`stat`, :meth:`send_raw`, :meth:`drop_clients`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dms_hookspecs import REQUIRED, Setting, SettingsSchema, SimulatorServer, TwinAPI

from . import codec

__all__ = ["C37118Server"]

log = logging.getLogger("leitstand.sim.c37118")


class C37118Server(SimulatorServer):
    """Serves a twin's voltage phasors as a C37.118.2 PMU on ``host:port``."""

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "127.0.0.1", "listening address (loopback for the simulator)"),
            Setting("port", int, 4712, "listening TCP port"),
            Setting("id_code", int, 1, "IDCODE of the data stream"),
            Setting("station", str, "PMU", "station name (16 characters at most)"),
            Setting("rate", int, 50, "frames per second (10-60 typical)"),
            Setting("nominal_hz", int, 50, "nominal frequency (50 or 60)", choices=(50, 60)),
            Setting("phasors", list, REQUIRED, "channels: tables with name and bus, or name, magnitude_point (kV) and angle_point (deg)"),
            Setting("freq_noise_hz", float, 0.002, "standard deviation of the frequency noise"),
            Setting("rocof_hz_s", float, 0.0, "initial frequency ramp (ROCOF)"),
            Setting("rocof_noise_hz_s", float, 0.005, "standard deviation of the reported ROCOF noise"),
            Setting("max_deviation_hz", float, 1.0, "the ramp stops at nominal ± this"),
            Setting("magnitude_noise", float, 0.0, "relative standard deviation of the magnitude noise"),
            Setting("angle_noise_deg", float, 0.0, "standard deviation of the angle noise"),
            Setting("seed", int, None, "random seed of the noise"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any], twin: TwinAPI) -> None:
        merged = {s.name: s.default for s in self.settings_schema}
        merged.update(settings)
        missing = [key for key, value in merged.items() if value is REQUIRED]
        if missing:
            raise ValueError(f"missing settings: {missing}")
        super().__init__(name, merged, twin)
        if not 1 <= merged["rate"] <= 240:
            raise ValueError("rate must be 1..240 frames/s")
        self.channels = [self._channel(raw, i) for i, raw in enumerate(merged["phasors"])]
        self.cfg = codec.encode_config(merged["id_code"], merged["station"], [codec.PhasorChannel(c["name"]) for c in self.channels],
                                       fnom_hz=merged["nominal_hz"], data_rate=merged["rate"])
        self._cfg_bytes = self.cfg.convert2bytes()
        self._rng = np.random.default_rng(merged["seed"])
        self.offset_hz = 0.0
        self.ramp_hz_s = merged["rocof_hz_s"]
        self.stat = 0
        """STAT word of the next frames (tests set error, sync and trigger bits here)."""
        self.stalled = False
        self.frames_sent = 0
        self._server: asyncio.base_events.Server | None = None
        self._clients: dict[asyncio.StreamWriter, bool] = {}  # writer → started
        self._handlers: set[asyncio.Task[None]] = set()
        self._streamer: asyncio.Task[None] | None = None

    def _channel(self, raw: Any, index: int) -> dict[str, Any]:
        if not isinstance(raw, Mapping) or "name" not in raw:
            raise ValueError(f"phasors[{index}] must be a table with a name")
        channel = dict(raw)
        if "bus" in channel:
            network = getattr(self.twin, "network", None)
            if network is None:
                raise ValueError(f"phasors[{index}]: 'bus' needs a grid twin; use magnitude_point and angle_point")
            bus = network.bus_of.get(channel["bus"])
            if bus is None:
                names = network.net.bus.index[network.net.bus.name == channel["bus"]]
                if not len(names):
                    raise ValueError(f"phasors[{index}]: no bus {channel['bus']!r} in the twin")
                bus = int(names[0])
            channel["bus_index"] = bus
        elif not {"magnitude_point", "angle_point"} <= set(channel):
            raise ValueError(f"phasors[{index}] needs bus, or magnitude_point and angle_point")
        return channel

    @property
    def address(self) -> str:
        return f"{self.settings['host']}:{self.settings['port']}"

    # --- events and faults ----------------------------------------------------------------

    def set_frequency(self, offset_hz: float | None = None, rocof_hz_s: float | None = None) -> None:
        """Jump the frequency to ``nominal + offset_hz`` and/or start a ramp of ``rocof_hz_s``."""
        if offset_hz is not None:
            self.offset_hz = offset_hz
        if rocof_hz_s is not None:
            self.ramp_hz_s = rocof_hz_s

    def stall(self, stalled: bool = True) -> None:
        """Stop (or resume) sending data frames while keeping the connections open."""
        self.stalled = stalled

    def send_raw(self, data: bytes) -> None:
        """Send bytes as they are to every started client (malformed frames, garbage)."""
        for writer, started in list(self._clients.items()):
            if started:
                writer.write(data)

    def drop_clients(self) -> None:
        """Abort every connection (link loss); the listener stays open."""
        for writer in list(self._clients):
            writer.transport.abort()
        self._clients.clear()

    # --- serving -------------------------------------------------------------------------

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.settings["host"], self.settings["port"])
        self._streamer = asyncio.get_running_loop().create_task(self._stream(), name=f"c37118:{self.name}")
        log.info("PMU %s (IDCODE %d) on %s: %d phasors at %d frames/s", self.name, self.settings["id_code"], self.address,
                 len(self.channels), self.settings["rate"])

    async def stop(self) -> None:
        if self._streamer is not None:
            self._streamer.cancel()
            await asyncio.gather(self._streamer, return_exceptions=True)
            self._streamer = None
        if self._server is not None:
            self._server.close()
        self.drop_clients()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        self._clients[writer] = False
        try:
            while True:
                head = await reader.readexactly(4)
                if head[0] != codec.SYNC_BYTE:
                    continue
                size = int.from_bytes(head[2:4], "big")
                if size < codec.MIN_FRAME_SIZE:
                    continue
                frame = head + await reader.readexactly(size - 4)
                try:
                    _, word = codec.decode_command(frame)
                except codec.MalformedFrame as exc:
                    log.warning("PMU %s: bad command frame: %s", self.name, exc)
                    continue
                if word in ("cfg2", "cfg1"):
                    writer.write(self._cfg_bytes)
                elif word == "header":
                    writer.write(codec.encode_header(self.settings["id_code"], f"Leitstand simulated PMU {self.name}"))
                elif word == "start":
                    self._clients[writer] = True
                elif word == "stop":
                    self._clients[writer] = False
                else:
                    log.info("PMU %s: command %r not supported", self.name, word)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._clients.pop(writer, None)
            writer.close()
            if task is not None:
                self._handlers.discard(task)

    def phasors(self) -> list[tuple[float, float]]:
        """``(magnitude V, angle rad)`` of every channel from the twin, noise added."""
        out = []
        network = getattr(self.twin, "network", None)
        for channel in self.channels:
            if "bus_index" in channel:
                net = network.net
                bus = channel["bus_index"]
                magnitude = float(net.res_bus.at[bus, "vm_pu"]) * float(net.bus.at[bus, "vn_kv"]) * 1000 / math.sqrt(3)
                angle = math.radians(float(net.res_bus.at[bus, "va_degree"]))
            else:
                magnitude = self.twin.read(channel["magnitude_point"])[0] * 1000 / math.sqrt(3)
                angle = math.radians(self.twin.read(channel["angle_point"])[0])
            if not (math.isfinite(magnitude) and math.isfinite(angle)):
                magnitude, angle = 0.0, 0.0
            if self.settings["magnitude_noise"]:
                magnitude *= 1 + self.settings["magnitude_noise"] * self._rng.standard_normal()
            if self.settings["angle_noise_deg"]:
                angle += math.radians(self.settings["angle_noise_deg"] * self._rng.standard_normal())
            out.append((magnitude, angle))
        return out

    def frame(self, timestamp: float) -> bytes:
        """The data frame of ``timestamp`` (advances the frequency ramp by one frame)."""
        s = self.settings
        limit = s["max_deviation_hz"]
        if self.ramp_hz_s:
            self.offset_hz += self.ramp_hz_s / s["rate"]
            if abs(self.offset_hz) >= limit:
                self.offset_hz, self.ramp_hz_s = math.copysign(limit, self.offset_hz), 0.0
        freq = s["nominal_hz"] + self.offset_hz + s["freq_noise_hz"] * self._rng.standard_normal()
        rocof = self.ramp_hz_s + s["rocof_noise_hz_s"] * self._rng.standard_normal()
        return codec.encode_data(self.cfg, timestamp, self.phasors(), freq, rocof, self.stat)

    async def _stream(self) -> None:
        rate = self.settings["rate"]
        slot = math.floor(time.time() * rate) + 1
        while True:
            await asyncio.sleep(max(0.0, slot / rate - time.time()))
            now_slot = math.floor(time.time() * rate)
            if now_slot > slot + rate:  # far behind (suspended): skip ahead
                slot = now_slot
            started = [w for w, on in self._clients.items() if on]
            if started and not self.stalled:
                try:
                    data = self.frame(slot / rate)
                except Exception as exc:  # noqa: BLE001 - a bad twin value must not end the stream
                    log.error("PMU %s: cannot build frame: %s", self.name, exc)
                    data = b""
                for writer in started:
                    if writer.transport.is_closing():
                        self._clients.pop(writer, None)
                    elif data:
                        writer.write(data)
                self.frames_sent += 1
            slot += 1
