"""Source type ``iec61850-sv``: a merging unit's Sampled Values (IEC 61850-9-2LE) → RMS and
fundamental phasors per channel in the point database.

The subscriber (:class:`~dms_iec61850.sv.SvPhasorSubscriber`, libiec61850 through ctypes) runs
on its receive thread; every ``report_cycles`` cycles it hands RMS, phasor magnitude and angle
of each channel to this source, which publishes them on the kernel's event loop as one batch
(points ``<sv_id>/<channel>/rms|mag|ang_deg``, source time = the window's start). No stream for
``timeout_s``: every point goes invalid (old data, last value kept) until frames arrive again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from dms_hookspecs import (
    REQUIRED,
    Detail,
    MeasurementBatch,
    PointSpec,
    Quality,
    Setting,
    SettingsSchema,
    Source,
    SourceContext,
    Validity,
)

__all__ = ["SvSource"]

log = logging.getLogger("leitstand.iec61850.sv")
_CHANNELS = ("IA", "IB", "IC", "IN", "UA", "UB", "UC", "UN")
_STALE = Quality(Validity.INVALID, Detail.OLD_DATA).to_bits()


class SvSource(Source):
    """Sampled Values subscriber on a network interface (one merging unit, one svID)."""

    settings_schema = SettingsSchema(
        (
            Setting("interface", str, REQUIRED, "network interface the merging unit's stream arrives on"),
            Setting("app_id", int, 0x4000, "APPID of the stream"),
            Setting("sv_id", str, "MU01", "svID of the stream (point name prefix)"),
            Setting("samples_per_cycle", int, 80, "80 (9-2LE protection) or 256"),
            Setting("nominal_hz", int, 50, "nominal frequency"),
            Setting("report_cycles", int, 10, "cycles per reported value (10 at 50 Hz: five reports a second)"),
            Setting("timeout_s", float, 1.0, "no stream for this long: the points go invalid"),
        )
    )

    def __init__(self, name: str, settings: Mapping[str, Any]) -> None:
        super().__init__(name, settings)
        self.names = [f"{settings['sv_id']}/{channel}/{quantity}" for channel in _CHANNELS for quantity in ("rms", "mag", "ang_deg")]
        self.last_values = 0.0

    def points(self) -> list[PointSpec]:
        specs = []
        for name in self.names:
            channel, quantity = name.split("/")[-2:]
            unit = "deg" if quantity == "ang_deg" else ("A" if channel.startswith("I") else "V")
            specs.append(PointSpec(name, unit=unit, description=f"Sampled Values {channel} {quantity} ({self.settings['sv_id']})"))
        return specs

    async def run(self, context: SourceContext) -> None:
        from .sv import SvPhasorSubscriber

        loop = asyncio.get_running_loop()
        numbers = np.asarray(context.point_numbers(self.names), dtype=np.int64)
        position = {name: k for k, name in enumerate(self.names)}
        last = np.full(len(self.names), np.nan)  # the last values, kept when the stream stops

        def publish(values: Mapping[str, float], source_time: float) -> None:  # on the event loop
            row = np.full(len(self.names), np.nan)
            for name, value in values.items():
                k = position.get(name)
                if k is not None:
                    row[k] = value
            known = np.isfinite(row)
            last[known] = row[known]
            self.last_values = time.monotonic()
            count = int(known.sum())
            context.publish(MeasurementBatch(self.name, numbers[known], row[known], np.zeros(count, np.uint16), np.full(count, source_time)))

        def on_values(values: dict[str, float], source_time: float) -> None:  # libiec61850's receive thread
            loop.call_soon_threadsafe(publish, values, source_time)

        settings = self.settings
        subscriber = SvPhasorSubscriber(settings["interface"], on_values, app_id=settings["app_id"],
                                        samples_per_cycle=settings["samples_per_cycle"], nominal_hz=settings["nominal_hz"],
                                        report_cycles=settings["report_cycles"])
        subscriber.start()  # an unknown interface raises SvError: the kernel alarms and restarts the source
        log.info("source %r: Sampled Values %s (APPID 0x%04x) on %s", self.name, settings["sv_id"], settings["app_id"], settings["interface"])
        stale = False
        try:
            while True:
                await asyncio.sleep(min(0.2, settings["timeout_s"] / 2))
                silent = time.monotonic() - self.last_values > settings["timeout_s"]
                if silent and not stale:
                    n = len(self.names)
                    context.publish(MeasurementBatch(self.name, numbers, last.copy(), np.full(n, _STALE, np.uint16), np.full(n, time.time())))
                    log.warning("source %r: no Sampled Values for %.1f s: points invalid", self.name, settings["timeout_s"])
                stale = silent
        finally:
            await asyncio.to_thread(subscriber.stop)
