"""Frames through pyc37 (round trip, fuzzed decoding), the concentrator's alignment, the limit detector."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dms_pmu import codec
from dms_pmu.events import LimitDetector
from dms_pmu.pdc import Aligner

CFG = codec.encode_config(7, "PMU7", [codec.PhasorChannel("VA"), codec.PhasorChannel("VB"), codec.PhasorChannel("VC")], data_rate=50)
CFG_BYTES = CFG.convert2bytes()
DECODED_CFG, STREAMS = codec.decode_config(CFG_BYTES)
FRAME = codec.encode_data(CFG, 1_700_000_000.02, [(11547.0, 0.1), (11500.0, -2.0), (11600.0, 2.2)], 50.012, -0.31, stat=0x2000 | (5 << 6))


def test_config_and_data_round_trip():
    assert codec.frame_type(CFG_BYTES) == codec.FRAME_CFG2
    (stream,) = STREAMS
    assert (stream.id_code, stream.station, stream.fnom_hz, stream.data_rate) == (7, "PMU7", 50.0, 50)
    assert [c.name for c in stream.phasors] == ["VA", "VB", "VC"]
    (sample,) = codec.decode_data(FRAME, DECODED_CFG, STREAMS)
    assert sample.timestamp == pytest.approx(1_700_000_000.02, abs=1e-6)
    assert sample.stat == 0x2000 | (5 << 6)  # raw word survives pyc37
    assert sample.phasors[0] == pytest.approx((11547.0, 0.1), rel=1e-6)
    assert sample.phasors[2][1] == pytest.approx(2.2, rel=1e-6)
    assert sample.freq_hz == pytest.approx(50.012)
    assert sample.rocof_hz_s == pytest.approx(-0.31)
    assert codec.decode_command(codec.command(7, "cfg2")) == (7, "cfg2")


def test_cfg3_refused_before_pyc37_sees_it():
    frame = bytearray(CFG_BYTES)
    frame[1] = (frame[1] & 0x0F) | (codec.FRAME_CFG3 << 4)
    from pyc37.frame import CommonFrame
    from pyc37.utils import crc16xmodem

    frame[-2:] = crc16xmodem(bytes(frame[:-2]), 0xFFFF).to_bytes(2, "big")
    assert CommonFrame._check_crc(bytes(frame))
    with pytest.raises(codec.UnsupportedFrame):
        codec.decode_config(bytes(frame))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_frames_raise_only_malformed(data):
    """Bit flips, truncation, extension and random bytes: decoding raises MalformedFrame or returns a sample, nothing else."""
    original = bytearray(data.draw(st.sampled_from([FRAME, CFG_BYTES])))
    mutation = data.draw(st.sampled_from(["flip", "truncate", "extend", "random", "flip_fix_crc"]))
    if mutation in ("flip", "flip_fix_crc"):
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(original) - 1))
            original[index] ^= 1 << data.draw(st.integers(0, 7))
        if mutation == "flip_fix_crc":  # a valid CRC over damaged content: pyc37 itself must be kept in check
            from pyc37.utils import crc16xmodem

            original[-2:] = crc16xmodem(bytes(original[:-2]), 0xFFFF).to_bytes(2, "big")
    elif mutation == "truncate":
        original = original[: data.draw(st.integers(0, len(original) - 1))]
    elif mutation == "extend":
        original += data.draw(st.binary(min_size=1, max_size=20))
    else:
        original = bytearray(data.draw(st.binary(min_size=0, max_size=120)))
    frame = bytes(original)
    try:
        kind = codec.frame_type(frame)
        if kind == codec.FRAME_DATA:
            samples = codec.decode_data(frame, DECODED_CFG, STREAMS)
            assert len(samples) == 1
        elif kind in (codec.FRAME_CFG1, codec.FRAME_CFG2):
            codec.decode_config(frame)
        else:
            codec.decode_command(frame)
    except (codec.MalformedFrame, codec.UnsupportedFrame):
        pass


def sample(ts):
    (s,) = codec.decode_data(codec.encode_data(CFG, ts, [(1.0, 0.0)] * 3, 50.0, 0.0), DECODED_CFG, STREAMS)
    return s


def test_aligner_waits_for_live_pmus_and_counts_missing_and_late():
    now = [0.0]
    aligner = Aligner(["a", "b"], wait_window_s=0.1, clock=lambda: now[0])
    aligner.set_live("a", True)
    aligner.set_live("b", True)
    assert aligner.add("a", sample(10.00)) == []  # waits for b
    (complete,) = aligner.add("b", sample(10.00))
    assert set(complete.samples) == {"a", "b"} and complete.missing == ()
    assert aligner.add("a", sample(10.02)) == []
    now[0] = 0.05
    assert aligner.poll() == []
    now[0] = 0.11  # wait window over: released without b
    (partial,) = aligner.poll()
    assert partial.timestamp == pytest.approx(10.02) and partial.missing == ("b",)
    assert aligner.counters["b"].missing == 1
    assert aligner.add("b", sample(10.02)) == []  # too late: dropped and counted
    assert aligner.counters["b"].late == 1
    # b not live (stalled): a is released at once
    aligner.set_live("b", False)
    (alone,) = aligner.add("a", sample(10.04))
    assert alone.missing == ()
    # a group waiting only for a PMU that goes down is released then
    aligner.set_live("b", True)
    assert aligner.add("a", sample(10.06)) == []
    (released,) = aligner.set_live("b", False)
    assert released.timestamp == pytest.approx(10.06)


def test_aligner_releases_in_timestamp_order():
    now = [0.0]
    aligner = Aligner(["a", "b"], wait_window_s=0.1, clock=lambda: now[0])
    aligner.set_live("a", True)
    aligner.set_live("b", True)
    aligner.add("a", sample(1.00))
    aligner.add("a", sample(1.02))
    out = aligner.add("b", sample(1.02))  # completes 1.02: 1.00 goes first, with b missing
    assert [round(s.timestamp, 2) for s in out] == [1.00, 1.02]
    assert out[0].missing == ("b",)


def test_limit_detector_on_delay():
    detector = LimitDetector(limit=0.2, on_delay_s=0.5, reference=50.0)
    assert detector.update(50.3, 0.0) is None
    assert detector.update(50.3, 0.4) is None
    assert detector.update(50.0, 0.45) is None  # back inside before the delay: nothing
    assert detector.update(50.3, 1.0) is None
    assert detector.update(50.3, 1.5) == "raised"
    assert detector.update(49.9, 1.6) is None
    assert detector.update(49.9, 2.1) == "cleared"
    assert not math.isnan(detector.worst)
