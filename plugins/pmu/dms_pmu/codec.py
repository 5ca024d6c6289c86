"""IEEE C37.118.2 frames through pyc37: configuration, data and command frames.

pyc37 (a maintained fork of pypmu) encodes and decodes the frames; this module only
adapts it to Leitstand and works around what it gets wrong:

* pyc37 1.0.2 gets the STAT word wrong both ways: ``DataFrame._int2stat`` raises
  ``KeyError`` for any word whose time-quality or unlocked-time bits are set, reads the
  2-bit data-error field as one bit and inverts the sync bit, and ``_stat2int`` shifts the
  data-error field one bit too far (0b01 lands in bit 15, 0b10 beyond bit 15). Decoding
  passes the STAT through ``_int2stat`` and then ``set_stat``, which stores an int as it is:
  :func:`_int2stat` is replaced by the identity, and Leitstand encodes STAT as an int and
  interprets the raw word itself (:mod:`.quality`). Never hand pyc37 a STAT tuple.
* ``FrameError`` derives from ``BaseException``: it is turned into :class:`MalformedFrame`.
* pyc37 has no configuration frame 3 (``ConfigFrame3`` is a stub, and decoding one
  recurses without end): CFG-3 frames are recognised by their SYNC word and refused here
  before pyc37 sees them. Sources request CFG-2.
* pyc37 treats a floating-point FREQ as a deviation from nominal; C37.118.2 says it is the
  actual frequency. :func:`decode_data` follows the standard (a float value below
  ``fnom / 2`` is taken as a deviation, for senders that made pyc37's choice). The
  simulator sends FREQ/DFREQ as 16-bit integers (mHz deviation, 0.01 Hz/s), which both read alike.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

import attrs
from pyc37.frame import CommandFrame, CommonFrame, ConfigFrame2, DataFrame, FrameError, HeaderFrame

__all__ = [
    "SYNC_BYTE",
    "FRAME_DATA",
    "FRAME_HEADER",
    "FRAME_CFG1",
    "FRAME_CFG2",
    "FRAME_COMMAND",
    "FRAME_CFG3",
    "MalformedFrame",
    "UnsupportedFrame",
    "PhasorChannel",
    "StreamConfig",
    "Sample",
    "frame_type",
    "decode_config",
    "decode_data",
    "decode_command",
    "command",
    "encode_config",
    "encode_data",
    "encode_header",
]

SYNC_BYTE = 0xAA
FRAME_DATA, FRAME_HEADER, FRAME_CFG1, FRAME_CFG2, FRAME_COMMAND, FRAME_CFG3 = 0, 1, 2, 3, 4, 5
MIN_FRAME_SIZE = 18  # SYNC, FRAMESIZE, IDCODE, SOC, FRACSEC, CHK + at least 2 bytes of payload


class MalformedFrame(ValueError):
    """A frame that does not decode: bad SYNC, size, CRC or content."""


class UnsupportedFrame(ValueError):
    """A well-formed frame this implementation does not handle (CFG-3, extended commands)."""


def _int2stat(stat: int) -> int:
    """Keep the STAT word as it is: pyc37's ``DataFrame.set_stat`` stores an int unchanged."""
    return stat


DataFrame._int2stat = staticmethod(_int2stat)  # see the module docstring


@attrs.frozen
class PhasorChannel:
    """One phasor channel of a stream: name, voltage or current, PHUNIT scale (V or A per bit × 1e-5)."""

    name: str
    kind: str = "v"
    scale: int = 1


@attrs.frozen
class StreamConfig:
    """What a CFG-2 says about one PMU data stream (what the source needs to read its data)."""

    id_code: int
    station: str
    phasors: tuple[PhasorChannel, ...]
    analogs: tuple[str, ...]
    fnom_hz: float
    data_rate: int
    polar: bool
    phasor_float: bool
    freq_float: bool


@attrs.frozen
class Sample:
    """One PMU's values at one timestamp.

    :param id_code: the stream's IDCODE.
    :param timestamp: SOC + FRACSEC / TIME_BASE (seconds since the epoch).
    :param stat: the raw 16-bit STAT word.
    :param phasors: ``(magnitude, angle_rad)`` per channel, magnitude in V or A.
    :param freq_hz: frequency.
    :param rocof_hz_s: rate of change of frequency.
    :param analogs: analog values.
    """

    id_code: int
    timestamp: float
    stat: int
    phasors: tuple[tuple[float, float], ...]
    freq_hz: float
    rocof_hz_s: float
    analogs: tuple[float, ...] = ()


def frame_type(frame: bytes) -> int:
    """Frame type from the SYNC word (0 data, 1 header, 2 CFG-1, 3 CFG-2, 4 command, 5 CFG-3)."""
    if len(frame) < MIN_FRAME_SIZE or frame[0] != SYNC_BYTE:
        raise MalformedFrame("no SYNC word")
    return (frame[1] >> 4) & 0x7


def _check(frame: bytes) -> int:
    kind = frame_type(frame)
    size = int.from_bytes(frame[2:4], "big")
    if size != len(frame):
        raise MalformedFrame(f"FRAMESIZE {size} but {len(frame)} bytes")
    if not CommonFrame._check_crc(frame):
        raise MalformedFrame("CRC mismatch")
    if kind == FRAME_CFG3:
        raise UnsupportedFrame("configuration frame 3 (pyc37 has no CFG-3 decoder)")
    if kind > FRAME_CFG3:
        raise MalformedFrame(f"frame type {kind} is reserved")
    return kind


def _as_list(value, n: int) -> list:
    return list(value) if n > 1 else [value]


def decode_config(frame: bytes) -> tuple[ConfigFrame2, list[StreamConfig]]:
    """A CFG-1 or CFG-2 frame → pyc37's frame (needed to decode data) and one config per stream."""
    kind = _check(frame)
    if kind not in (FRAME_CFG1, FRAME_CFG2):
        raise MalformedFrame(f"frame type {kind} is not a configuration frame")
    try:
        cfg = ConfigFrame2.convert2frame(frame)
        if cfg is None:
            raise MalformedFrame("pyc37 could not decode the configuration frame")
        n = cfg.get_num_pmu()
        if not 1 <= n <= 64:
            raise MalformedFrame(f"NUM_PMU {n}")
        streams = []
        for i, (id_code, station, fmt, n_ph, n_an, units, fnom, names) in enumerate(
            zip(
                _as_list(cfg.get_stream_id_code(), n),
                _as_list(cfg.get_station_name(), n),
                _as_list(cfg.get_data_format(), n),
                _as_list(cfg.get_phasor_num(), n),
                _as_list(cfg.get_analog_num(), n),
                _as_list(cfg.get_ph_units(), n),
                _as_list(cfg.get_fnom(), n),
                _as_list(cfg.get_channel_names(), n),
                strict=True,
            )
        ):
            names = [str(name).strip() for name in names]
            units = list(units) if isinstance(units, list) else [units]
            phasors = tuple(PhasorChannel(names[k], units[k][1], units[k][0]) for k in range(n_ph))
            streams.append(
                StreamConfig(
                    id_code=int(id_code),
                    station=str(station).strip(),
                    phasors=phasors,
                    analogs=tuple(names[n_ph : n_ph + n_an]),
                    fnom_hz=float(fnom),
                    data_rate=int(cfg.get_data_rate()),
                    polar=bool(fmt[0]),
                    phasor_float=bool(fmt[1]),
                    freq_float=bool(fmt[3]),
                )
            )
            del i
        return cfg, streams
    except (MalformedFrame, UnsupportedFrame):
        raise
    except (FrameError, Exception) as exc:  # pyc37 raises FrameError, ValueError, IndexError, …
        raise MalformedFrame(f"configuration frame: {type(exc).__name__}: {exc}") from None


def _phasor(raw: Sequence[float], stream: StreamConfig, channel: PhasorChannel) -> tuple[float, float]:
    a, b = float(raw[0]), float(raw[1])
    if stream.polar:
        if stream.phasor_float:
            return a, b
        return a * channel.scale * 1e-5, b * 1e-4  # 16-bit: magnitude × PHUNIT, angle in 1e-4 rad
    if not stream.phasor_float:
        a, b = a * channel.scale * 1e-5, b * channel.scale * 1e-5
    return math.hypot(a, b), math.atan2(b, a)


def _frequency(raw: float, stream: StreamConfig) -> float:
    if stream.freq_float:
        return raw if abs(raw) >= stream.fnom_hz / 2 else stream.fnom_hz + raw
    return stream.fnom_hz + raw / 1000.0


def decode_data(frame: bytes, cfg: ConfigFrame2, streams: Sequence[StreamConfig]) -> list[Sample]:
    """A data frame → one :class:`Sample` per stream, decoded with the stream's CFG-2."""
    kind = _check(frame)
    if kind != FRAME_DATA:
        raise MalformedFrame(f"frame type {kind} is not a data frame")
    try:
        data = DataFrame.convert2frame(frame, cfg)
        n = len(streams)
        soc = data.get_soc()
        fracsec = data.get_frasec()[0]
        timestamp = soc + fracsec / cfg.get_time_base()
        stats = _as_list(data._stat, n)  # the raw word (pyc37 keeps it as int)
        phasors = _as_list(data.get_phasors(convert2polar=False), n)
        freqs = _as_list(data.get_freq(), n)
        dfreqs = _as_list(data.get_dfreq(), n)
        analogs = _as_list(data.get_analog(), n)
        samples = []
        for stream, stat, ph, freq, dfreq, an in zip(streams, stats, phasors, freqs, dfreqs, analogs, strict=True):
            rocof = float(dfreq) if stream.freq_float else float(dfreq) / 100.0
            values = tuple(_phasor(p, stream, channel) for p, channel in zip(ph, stream.phasors, strict=True))
            sample = Sample(stream.id_code, timestamp, int(stat), values, _frequency(float(freq), stream), rocof, tuple(float(v) for v in an))
            if not all(math.isfinite(v) for pair in sample.phasors for v in pair) and not stat >> 14:
                raise MalformedFrame("non-finite phasor in a frame flagged as good")
            samples.append(sample)
        return samples
    except MalformedFrame:
        raise
    except (FrameError, Exception) as exc:
        raise MalformedFrame(f"data frame: {type(exc).__name__}: {exc}") from None


def decode_command(frame: bytes) -> tuple[int, str]:
    """A command frame → ``(IDCODE, command word)`` (``"start"``, ``"stop"``, ``"cfg2"``, …)."""
    kind = _check(frame)
    if kind != FRAME_COMMAND:
        raise MalformedFrame(f"frame type {kind} is not a command frame")
    try:
        cmd = CommandFrame.convert2frame(frame)
        word = cmd.get_command()
        return cmd.get_id_code(), word if isinstance(word, str) else CommandFrame.COMMAND_WORDS.get(int(word), "extended")
    except (FrameError, Exception) as exc:
        raise MalformedFrame(f"command frame: {type(exc).__name__}: {exc}") from None


def command(id_code: int, word: str) -> bytes:
    """A command frame: ``word`` is ``"start"``, ``"stop"``, ``"header"``, ``"cfg1"``, ``"cfg2"``."""
    return CommandFrame(id_code, word).convert2bytes()


def _soc_fracsec(timestamp: float, time_base: int) -> tuple[int, int]:
    soc = int(math.floor(timestamp))
    fracsec = int(round((timestamp - soc) * time_base))
    if fracsec >= time_base:
        soc, fracsec = soc + 1, fracsec - time_base
    return soc, fracsec


TIME_BASE = 1_000_000


def encode_config(
    id_code: int, station: str, phasors: Sequence[PhasorChannel], *, fnom_hz: int = 50, data_rate: int = 50, cfg_count: int = 0,
    timestamp: float | None = None,
) -> ConfigFrame2:
    """The CFG-2 of a single-stream PMU: polar float phasors, 16-bit FREQ/DFREQ, no analogs or digitals."""
    soc, fracsec = _soc_fracsec(time.time() if timestamp is None else timestamp, TIME_BASE)
    return ConfigFrame2(
        id_code, TIME_BASE, 1, station[:16], id_code, (True, True, True, False), len(phasors), 0, 0,
        [p.name[:16] for p in phasors], [(p.scale, p.kind) for p in phasors], [], [], fnom_hz, cfg_count, data_rate,
        soc=soc, frasec=(fracsec, "+"),
    )


def encode_data(
    cfg: ConfigFrame2, timestamp: float, phasors: Sequence[tuple[float, float]], freq_hz: float, rocof_hz_s: float, stat: int = 0,
) -> bytes:
    """A data frame for the single-stream ``cfg`` (angles wrapped to ±π, FREQ in mHz, DFREQ in 0.01 Hz/s)."""
    soc, fracsec = _soc_fracsec(timestamp, cfg.get_time_base())
    wrapped = [(float(m), math.remainder(float(a), 2 * math.pi)) for m, a in phasors]
    wrapped = [(m, max(-3.1415926, min(3.1415926, a))) for m, a in wrapped]
    dev = int(round((freq_hz - cfg.get_fnom()) * 1000))
    rocof = int(round(rocof_hz_s * 100))
    frame = DataFrame(
        cfg.get_id_code(), stat, wrapped, max(-32767, min(32767, dev)), max(-32767, min(32767, rocof)), [], [], cfg,
        soc=soc, frasec=(fracsec, "+"),
    )
    return frame.convert2bytes()


def encode_header(id_code: int, text: str) -> bytes:
    return HeaderFrame(id_code, text).convert2bytes()
