"""IEC 61850-9-2LE Sampled Values over Ethernet: libiec61850's SVPublisher and SVReceiver through ctypes.

Like :mod:`dms_iec61850.goose`, this calls libiec61850 (the shared object pyiec61850-ng
bundles, loaded by :mod:`dms_iec61850.native`) through ctypes: the receive thread is
libiec61850's, and the ``CFUNCTYPE`` listener takes the GIL only while it copies one ASDU.
Needs raw sockets (root or ``CAP_NET_RAW``) on a real interface.

* :class:`SvPublisher`: a merging unit — a 9-2LE data set of ``channels`` × (INT32 + quality)
  per ASDU, ``smpCnt`` wrapping at ``samples_per_second``; ``python -m dms_iec61850.sv publish``
  publishes a waveform with harmonics in real time (the simulated merging unit of the tests).
* :class:`SvSubscriber`: receives the ASDUs of one APPID (optionally one svID) on an interface
  and hands ``(svID, smpCnt, counts, quality)`` to a callback on the receive thread.
* :class:`SvPhasorSubscriber`: :class:`SvSubscriber` + :class:`dms_pmu.sv.SvProcessor` per
  svID: RMS and fundamental phasor (one-cycle DFT) per channel every ``report_cycles`` cycles,
  delivered as measurement values ``{"<prefix>/<channel>/rms": …, "/mag": …, "/ang_deg": …}``
  with the time of the window's start (top of the second + smpCnt / sample rate).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Sequence
from ctypes import POINTER, c_bool, c_char_p, c_int, c_int32, c_uint8, c_uint16, c_uint32, c_void_p
from typing import Any

import numpy as np

from .goose import CommParameters, parse_mac
from .native import lib

__all__ = ["DEFAULT_SV_MAC", "SvError", "SvPhasorSubscriber", "SvPublisher", "SvSubscriber"]

log = logging.getLogger("leitstand.iec61850.sv")

#: First address of the IEC 61850-9-2 multicast range (01-0C-CD-04-00-00 … 01-0C-CD-04-01-FF).
DEFAULT_SV_MAC = "01:0C:CD:04:00:01"

#: ``void (*SVUpdateListener)(SVSubscriber subscriber, void* parameter, SVSubscriber_ASDU asdu)``
SV_LISTENER = ctypes.CFUNCTYPE(None, c_void_p, c_void_p, c_void_p)

_SIGNATURES = {
    "SVPublisher_createEx": (c_void_p, POINTER(CommParameters), c_char_p, c_bool),
    "SVPublisher_addASDU": (c_void_p, c_void_p, c_char_p, c_char_p, c_uint32),
    "SVPublisher_ASDU_addINT32": (c_int, c_void_p),
    "SVPublisher_ASDU_addQuality": (c_int, c_void_p),
    "SVPublisher_ASDU_setINT32": (None, c_void_p, c_int, c_int32),
    "SVPublisher_ASDU_setQuality": (None, c_void_p, c_int, c_uint16),
    "SVPublisher_ASDU_setSmpCnt": (None, c_void_p, c_uint16),
    "SVPublisher_ASDU_setSmpCntWrap": (None, c_void_p, c_uint16),
    "SVPublisher_ASDU_setSmpSynch": (None, c_void_p, c_uint16),
    "SVPublisher_setupComplete": (None, c_void_p),
    "SVPublisher_publish": (None, c_void_p),
    "SVPublisher_destroy": (None, c_void_p),
    "SVReceiver_create": (c_void_p,),
    "SVReceiver_setInterfaceId": (None, c_void_p, c_char_p),
    "SVReceiver_disableDestAddrCheck": (None, c_void_p),
    "SVReceiver_addSubscriber": (None, c_void_p, c_void_p),
    "SVReceiver_start": (None, c_void_p),
    "SVReceiver_stop": (None, c_void_p),
    "SVReceiver_isRunning": (c_bool, c_void_p),
    "SVReceiver_destroy": (None, c_void_p),
    "SVSubscriber_create": (c_void_p, c_void_p, c_uint16),
    "SVSubscriber_setListener": (None, c_void_p, SV_LISTENER, c_void_p),
    "SVSubscriber_ASDU_getSmpCnt": (c_uint16, c_void_p),
    "SVSubscriber_ASDU_getSvId": (c_char_p, c_void_p),
    "SVSubscriber_ASDU_getConfRev": (c_uint32, c_void_p),
    "SVSubscriber_ASDU_getDataSize": (c_int, c_void_p),
    "SVSubscriber_ASDU_getINT32": (c_int32, c_void_p, c_int),
    "SVSubscriber_ASDU_getQuality": (c_uint16, c_void_p, c_int),
}
for _name, (_restype, *_argtypes) in _SIGNATURES.items():
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes

_LE_CHANNELS = ("IA", "IB", "IC", "IN", "UA", "UB", "UC", "UN")


class SvError(RuntimeError):
    """The interface cannot be opened (missing, or no raw-socket permission)."""


class SvPublisher:
    """A 9-2LE stream: one ASDU per frame of ``channels`` × (INT32 value, quality)."""

    def __init__(self, interface: str, *, app_id: int = 0x4000, dst_mac: str = DEFAULT_SV_MAC, sv_id: str = "MU01",
                 channels: int = 8, samples_per_second: int = 4000, conf_rev: int = 1) -> None:
        params = CommParameters(vlanPriority=4, vlanId=0, appId=app_id, dstAddress=(c_uint8 * 6)(*parse_mac(dst_mac)))
        self._publisher: int | None = lib.SVPublisher_createEx(ctypes.byref(params), interface.encode(), False)
        if not self._publisher:
            raise SvError(f"cannot publish Sampled Values on {interface!r} (missing interface or no raw-socket permission)")
        self._sv_id = sv_id.encode()  # libiec61850 keeps the pointer, not a copy: must live as long as the publisher
        self._asdu = lib.SVPublisher_addASDU(self._publisher, self._sv_id, None, conf_rev)
        self._offsets = [(lib.SVPublisher_ASDU_addINT32(self._asdu), lib.SVPublisher_ASDU_addQuality(self._asdu))
                         for _ in range(channels)]
        lib.SVPublisher_ASDU_setSmpCntWrap(self._asdu, samples_per_second)
        lib.SVPublisher_setupComplete(self._publisher)  # allocates the frame buffer: set fields after it
        lib.SVPublisher_ASDU_setSmpSynch(self._asdu, 2)  # synchronised to a global clock
        self.published = 0

    def publish(self, smp_cnt: int, counts: Sequence[int], quality: int = 0) -> None:
        """Send one frame: sample counter and one INT32 count per channel."""
        asdu = self._asdu
        for (value_at, quality_at), count in zip(self._offsets, counts, strict=True):
            lib.SVPublisher_ASDU_setINT32(asdu, value_at, int(count))
            lib.SVPublisher_ASDU_setQuality(asdu, quality_at, quality)
        lib.SVPublisher_ASDU_setSmpCnt(asdu, smp_cnt)
        lib.SVPublisher_publish(self._publisher)
        self.published += 1

    def close(self) -> None:
        if self._publisher:
            lib.SVPublisher_destroy(self._publisher)
            self._publisher = None

    def __enter__(self) -> SvPublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class SvSubscriber:
    """Receives the ASDUs of ``app_id`` on ``interface``; ``callback(sv_id, smp_cnt, counts, quality)``.

    ``counts`` and ``quality`` are numpy arrays (int32, uint16) of the 9-2LE layout (INT32 +
    quality per channel); the callback runs on libiec61850's receive thread and must be short.
    """

    def __init__(self, interface: str, callback: Callable[[str, int, np.ndarray, np.ndarray], None], *, app_id: int = 0x4000,
                 sv_id: str | None = None) -> None:
        self.interface = interface
        self.callback = callback
        self.sv_id = sv_id
        self.received = 0
        self.errors = 0
        self._receiver: int | None = lib.SVReceiver_create()
        lib.SVReceiver_setInterfaceId(self._receiver, interface.encode())
        lib.SVReceiver_disableDestAddrCheck(self._receiver)
        self._listener = SV_LISTENER(self._on_asdu)  # must outlive the receiver
        subscriber = lib.SVSubscriber_create(None, app_id)
        lib.SVSubscriber_setListener(subscriber, self._listener, None)
        lib.SVReceiver_addSubscriber(self._receiver, subscriber)  # owned (and destroyed) by the receiver

    def _on_asdu(self, _subscriber: int, _parameter: int, asdu: int) -> None:
        try:
            sv_id = (lib.SVSubscriber_ASDU_getSvId(asdu) or b"").decode(errors="replace")
            if self.sv_id is not None and sv_id != self.sv_id:
                return
            channels = lib.SVSubscriber_ASDU_getDataSize(asdu) // 8
            counts = np.fromiter((lib.SVSubscriber_ASDU_getINT32(asdu, 8 * i) for i in range(channels)), np.int32, channels)
            quality = np.fromiter((lib.SVSubscriber_ASDU_getQuality(asdu, 8 * i + 4) for i in range(channels)), np.uint16, channels)
            self.received += 1
            self.callback(sv_id, int(lib.SVSubscriber_ASDU_getSmpCnt(asdu)), counts, quality)
        except Exception:  # noqa: BLE001 - never raise into libiec61850's thread
            self.errors += 1
            log.exception("Sampled Values ASDU on %s not processed", self.interface)

    def start(self) -> SvSubscriber:
        lib.SVReceiver_setInterfaceId(self._receiver, self.interface.encode())
        lib.SVReceiver_start(self._receiver)
        if not lib.SVReceiver_isRunning(self._receiver):
            self.stop()
            raise SvError(f"cannot receive Sampled Values on {self.interface!r} (missing interface or no raw-socket permission)")
        return self

    def stop(self) -> None:
        if self._receiver:
            if lib.SVReceiver_isRunning(self._receiver):
                lib.SVReceiver_stop(self._receiver)  # joins the receive thread
            lib.SVReceiver_destroy(self._receiver)
            self._receiver = None

    def __enter__(self) -> SvSubscriber:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class SvPhasorSubscriber:
    """Sampled Values → RMS and fundamental phasors per channel → measurement values.

    ``on_values(values, source_time)`` is called on the receive thread every ``report_cycles``
    cycles per svID with ``{"<prefix>/<channel>/rms" | "/mag" | "/ang_deg": float}``, ``prefix``
    being the svID; ``source_time`` is the start of the window (the current second, by the
    receiver's clock, + smpCnt / ``samples_per_second``). A Source hands these to its context.
    """

    def __init__(self, interface: str, on_values: Callable[[dict[str, float], float], None], *, app_id: int = 0x4000,
                 samples_per_cycle: int = 80, nominal_hz: int = 50, channels: Sequence[str] = _LE_CHANNELS,
                 scale: Sequence[float] | None = None, report_cycles: int = 1) -> None:
        from dms_pmu.sv import SvProcessor  # the DFT lives with the synchrophasors (plugin pmu)

        self._processor = lambda: SvProcessor(samples_per_cycle, channels, scale, report_cycles)
        self.channels = tuple(channels)
        self.samples_per_second = samples_per_cycle * nominal_hz
        self.on_values = on_values
        self.processors: dict[str, Any] = {}
        self.subscriber = SvSubscriber(interface, self._samples, app_id=app_id)

    def _samples(self, sv_id: str, smp_cnt: int, counts: np.ndarray, _quality: np.ndarray) -> None:
        processor = self.processors.get(sv_id)
        if processor is None:
            processor = self.processors[sv_id] = self._processor()
        for result in processor.push(counts[None, : len(self.channels)], smp_cnt, wrap=self.samples_per_second):
            second = math.floor(time.time())
            window = second + result.smp_cnt / self.samples_per_second
            if window > time.time() + 0.5:  # counter of the previous second
                window -= 1
            values: dict[str, float] = {}
            for index, channel in enumerate(self.channels):
                values[f"{sv_id}/{channel}/rms"] = float(result.rms[index])
                values[f"{sv_id}/{channel}/mag"] = float(result.magnitude[index])
                values[f"{sv_id}/{channel}/ang_deg"] = float(result.angle_deg[index])
            self.on_values(values, window)

    def start(self) -> SvPhasorSubscriber:
        self.subscriber.start()
        return self

    def stop(self) -> None:
        self.subscriber.stop()

    def __enter__(self) -> SvPhasorSubscriber:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def waveform_counts(signal: dict[str, list[list[float]]], smp_cnt: np.ndarray, samples_per_cycle: int,
                    channels: Sequence[str] = _LE_CHANNELS) -> np.ndarray:
    """INT32 counts (1 mA / 10 mV) of ``signal`` (``{channel: [[harmonic, peak, phase_deg], ...]}``) at ``smp_cnt``."""
    angle = 2 * np.pi * np.asarray(smp_cnt, dtype=float) / samples_per_cycle
    out = np.zeros((len(angle), len(channels)), dtype=np.int32)
    for index, channel in enumerate(channels):
        lsb = 0.001 if channel.startswith("I") else 0.01
        x = sum(a * np.cos(h * angle + np.radians(p)) for h, a, p in signal.get(channel, []))
        out[:, index] = np.round(np.asarray(x, dtype=float) / lsb) if signal.get(channel) else 0
    return out


def _publish_main(args: argparse.Namespace) -> None:
    signal = json.loads(args.signal)
    per_second = args.samples_per_cycle * args.nominal_hz
    with SvPublisher(args.interface, app_id=args.app_id, sv_id=args.sv_id, samples_per_second=per_second) as publisher:
        print(json.dumps({"ready": True}), flush=True)
        cycle = np.arange(args.samples_per_cycle)
        period = 1 / args.nominal_hz
        # start at the top of the next cycle of the wall clock; one cycle of frames per cycle
        start = math.ceil(time.time() * args.nominal_hz) / args.nominal_hz
        for index in range(args.cycles):
            due = start + index * period
            time.sleep(max(0.0, due - time.time()))
            first = round((due % 1) * per_second) % per_second
            counters = (first + cycle) % per_second
            for smp_cnt, counts in zip(counters, waveform_counts(signal, counters, args.samples_per_cycle), strict=True):
                publisher.publish(int(smp_cnt), counts)
        print(json.dumps({"published": publisher.published}), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dms_iec61850.sv", description="9-2LE Sampled Values test publisher")
    sub = parser.add_subparsers(dest="command", required=True)
    publish = sub.add_parser("publish", help="publish a waveform with harmonics in real time")
    publish.add_argument("--interface", required=True)
    publish.add_argument("--app-id", type=lambda text: int(text, 0), default=0x4000)
    publish.add_argument("--sv-id", default="MU01")
    publish.add_argument("--samples-per-cycle", type=int, default=80)
    publish.add_argument("--nominal-hz", type=int, default=50)
    publish.add_argument("--cycles", type=int, default=50)
    publish.add_argument("--signal", required=True, help='JSON {"UA": [[harmonic, peak, phase_deg], ...], ...}')
    args = parser.parse_args(argv)
    try:
        _publish_main(args)
    except SvError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
