"""GOOSE over a real veth pair into a network namespace (libiec61850 publisher and subscriber, no mocks).

The test creates a namespace and a veth pair, keeps one end here (the publisher: Leitstand) and
moves the other into the namespace, where a subprocess runs the GOOSE subscriber (a simulated
IED: ``python -m dms_iec61850.goose listen``, JSON lines). Needs root and ``ip``: skipped
otherwise, but with ``CI`` set it fails instead.
"""

from __future__ import annotations

import asyncio
import json
import queue
import socket
import statistics
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import pytest

REF = "LEITSTAND/LLN0$GO$gcbFLISR"
BLOCK_REF = "LEITSTAND/LLN0$GO$gcbBlock"
APP_ID = 0x3001
MAC = "01:0C:CD:01:00:01"


class Ied:
    """The GOOSE subscriber in the namespace (a subprocess); messages as dicts."""

    def __init__(self, veth, *references: str, app_id: int = APP_ID, mac: str = MAC) -> None:
        args = ["ip", "netns", "exec", veth.ns, sys.executable, "-m", "dms_iec61850.goose", "listen",
                "--interface", veth.inside, "--app-id", hex(app_id), "--mac", mac, "--seconds", "120"]
        for reference in references or (REF,):
            args += ["--go-cb-ref", reference]
        self.process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.next(30)
        assert ready.get("ready"), ready

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(json.loads(line))
        self.lines.put(None)

    def next(self, timeout: float = 2.0) -> dict:
        try:
            message = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"the IED received nothing within {timeout} s") from None
        if message is None:
            raise AssertionError(f"the IED process ended: {self.process.stderr.read()}")
        return message

    def nothing(self, seconds: float = 0.3) -> None:
        try:
            message = self.lines.get(timeout=seconds)
        except queue.Empty:
            return
        raise AssertionError(f"the IED should have ignored this: {message}")

    def stop(self) -> dict:
        self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        while True:
            message = self.lines.get(timeout=5)
            if message is None or message.get("stopped"):
                return message or {}


@pytest.fixture
def ied(veth):
    process = Ied(veth)
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.stop()


def test_constants_match_the_library():
    from dms_iec61850 import goose
    from dms_iec61850.lib import iec

    assert (goose.MMS_ARRAY, goose.MMS_STRUCTURE, goose.MMS_BOOLEAN, goose.MMS_BIT_STRING, goose.MMS_INTEGER,
            goose.MMS_UNSIGNED, goose.MMS_FLOAT, goose.MMS_UTC_TIME) == (
        iec.MMS_ARRAY, iec.MMS_STRUCTURE, iec.MMS_BOOLEAN, iec.MMS_BIT_STRING, iec.MMS_INTEGER,
        iec.MMS_UNSIGNED, iec.MMS_FLOAT, iec.MMS_UTC_TIME)
    assert goose.parse_mac("01-0c-cd-01-00-01") == bytes([1, 12, 205, 1, 0, 1])
    with pytest.raises(ValueError):
        goose.parse_mac("01:0C:CD")


def test_bad_interface_is_a_clear_error(veth):
    from dms_iec61850.goose import GooseError, GoosePublisher, GooseReceiver

    with pytest.raises(GooseError, match="no such interface"):
        GoosePublisher("nonexistent0", app_id=APP_ID)
    receiver = GooseReceiver("nonexistent0")
    receiver.subscribe(REF, lambda m: None)
    with pytest.raises(GooseError, match="no such interface"):
        receiver.start()
    receiver.stop()


def test_trip_block_numbering_and_latency(veth, ied):
    from dms_iec61850.goose import GoosePublisher

    with GoosePublisher(veth.outside, app_id=APP_ID, dst_mac=MAC, go_cb_ref=REF, time_allowed_to_live_ms=2000) as pub:
        assert pub.publish([False, False]) == (1, 0)  # initial state
        first = ied.next()
        assert (first["st_num"], first["sq_num"], first["trip"], first["block"]) == (1, 0, False, False)
        assert first["go_cb_ref"] == REF and first["app_id"] == APP_ID and first["time_allowed_to_live_ms"] == 2000
        assert first["data_set"] == "LEITSTAND/LLN0$dsFLISR" and first["valid"]

        sent = time.monotonic()
        pub.publish([True, False])  # trip: a change -> new state
        trip = ied.next()
        latency_ms = (trip["received"] - sent) * 1000
        print(f"\nGOOSE trip publish -> IED listener: {latency_ms:.2f} ms")
        assert trip["trip"] and not trip["block"]
        assert (trip["st_num"], trip["sq_num"]) == (2, 0)
        assert latency_ms < 50

        for sq in (1, 2, 3):  # retransmissions of the same state
            assert pub.retransmit() == (2, sq)
            repeat = ied.next()
            assert (repeat["st_num"], repeat["sq_num"], repeat["trip"]) == (2, sq, True)
            assert repeat["timestamp_ms"] == trip["timestamp_ms"]  # the time of the state change

        pub.publish([True, True])  # block reclosing
        block = ied.next()
        assert block["block"] and block["trip"] and (block["st_num"], block["sq_num"]) == (3, 0)
        assert block["timestamp_ms"] >= trip["timestamp_ms"]

        assert pub.publish([True, True], new_state=True) == (4, 0)  # an event without a value change
        assert ied.next()["st_num"] == 4

        # latency over many state changes
        latencies = []
        state = False
        for _ in range(100):
            state = not state
            sent = time.monotonic()
            pub.publish([state, False])
            message = ied.next()
            latencies.append((message["received"] - sent) * 1000)
            assert message["trip"] is state and message["sq_num"] == 0
            time.sleep(0.005)
        latencies.sort()
        p95 = latencies[int(0.95 * len(latencies)) - 1]
        print(f"GOOSE publish -> receive over {len(latencies)} state changes: min {latencies[0]:.2f} ms, "
              f"median {statistics.median(latencies):.2f} ms, p95 {p95:.2f} ms, max {latencies[-1]:.2f} ms")
        assert p95 < 50


def test_automatic_retransmission(veth, ied):
    from dms_iec61850.goose import GoosePublisher

    with GoosePublisher(veth.outside, app_id=APP_ID, go_cb_ref=REF, retransmit=True, min_time_ms=4,
                        max_time_ms=200) as pub:
        pub.publish([False, False])
        first = ied.next()
        assert first["sq_num"] == 0
        pub.publish([True, False])
        trip = ied.next()
        while trip["st_num"] == first["st_num"]:  # retransmissions of the first state sent before the change
            trip = ied.next()
        repeats = [ied.next() for _ in range(6)]
    assert trip["sq_num"] == 0
    assert [m["sq_num"] for m in repeats] == [1, 2, 3, 4, 5, 6]
    assert {m["st_num"] for m in repeats} == {trip["st_num"]}
    gaps = [(b["received"] - a["received"]) * 1000 for a, b in zip([trip, *repeats], repeats)]
    print(f"\nretransmission intervals (ms): {', '.join(f'{g:.1f}' for g in gaps)}")
    assert gaps[-1] > gaps[0]  # 4, 8, 16, ... ms: growing towards the heartbeat


def _capture(interface: str, send) -> bytes:
    """The next GOOSE frame that ``send()`` puts on ``interface`` (an AF_PACKET tap)."""
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)) as tap:  # ETH_P_ALL
        tap.bind((interface, 0x0003))
        tap.settimeout(2)
        send()
        while True:
            frame = tap.recv(2048)
            if b"\x88\xb8" in (frame[12:14], frame[16:18]):
                return frame


def test_foreign_and_malformed_frames_are_ignored(veth, ied):
    from dms_iec61850.goose import GoosePublisher

    with GoosePublisher(veth.outside, app_id=APP_ID, go_cb_ref=REF) as pub:
        pub.publish([False, False])
        assert ied.next()["st_num"] == 1

        with GoosePublisher(veth.outside, app_id=0x3999, go_cb_ref=REF) as foreign:  # other APPID
            foreign.publish([True, True])
            ied.nothing()
            for _ in range(40):  # a state number no message to the IED had yet
                foreign.publish([True, True], new_state=True)
            frame = _capture(veth.outside, lambda: foreign.publish([True, True], new_state=True))
        with GoosePublisher(veth.outside, app_id=APP_ID, go_cb_ref="OTHER/LLN0$GO$gcb1") as other:  # other GoCB
            other.publish([True, True])
        with GoosePublisher(veth.outside, app_id=APP_ID, dst_mac="01:0C:CD:01:00:02", go_cb_ref=REF) as other:
            other.publish([True, True])  # other destination MAC
        ied.nothing()

        header = 18 if frame[12:14] == b"\x81\x00" else 14  # VLAN tag kept by the tap or not
        assert frame[header - 2:header] == b"\x88\xb8" and frame[header:header + 2] == b"\x39\x99"
        assert frame[-8:-6] == b"\xab\x06" and frame[-6] == 0x83  # allData: two booleans
        ours = bytearray(frame)
        ours[header:header + 2] = APP_ID.to_bytes(2, "big")
        mismatch = bytearray(ours)
        mismatch[-6] = 0x85  # first member an integer: does not match the IED's data set
        garbage = bytes(ours[:header + 8]) + b"\x61\x05\xff\xff\xff\xff\xff" + bytes(len(ours) - header - 15)
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
            raw.bind((veth.outside, 0))
            raw.send(bytes(ours[:30]))  # truncated (length field larger than the frame)
            raw.send(garbage)  # not a GOOSE PDU
            raw.send(bytes(mismatch))  # data set type mismatch
        ied.nothing()

        pub.publish([True, False])  # the IED still listens, and saw nothing in between
        after = ied.next()
        assert after["trip"] and after["go_cb_ref"] == REF and after["app_id"] == APP_ID
        assert after["values"] == [True, False]
    stopped = ied.stop()
    assert stopped["dropped"] >= 1  # the type mismatch reached the subscriber and was dropped as invalid


def test_flisr_isolation_publishes_goose_trip_and_block(veth):
    """``Runner.execute`` with ``[settings.flisr] goose``: block the tripped breaker, trip the isolating switch."""
    pytest.importorskip("dms_flisr")
    from dms_flisr.plugin import Runner
    from dms_hookspecs import CommandStatus

    ied = Ied(veth, REF, BLOCK_REF)
    commands = []

    class Kernel:
        async def execute(self, command):
            commands.append((command.target.name, command.value, time.monotonic()))
            await asyncio.sleep(0.02)  # the command path: select, operate, confirmation
            return SimpleNamespace(status=CommandStatus.SUCCEEDED, reason="")

        def emit(self, event):
            pass

    goose = {"S2": {"interface": veth.outside, "app_id": APP_ID, "mac": MAC, "go_cb_ref": REF},
             "CB1": {"interface": veth.outside, "app_id": APP_ID, "mac": MAC, "go_cb_ref": BLOCK_REF}}
    runner = Runner(Kernel(), {"mode": "automatic", "goose": goose})
    steps = [
        {"switch": "s2", "name": "S2", "action": "open", "purpose": "isolation", "point": "S2/Pos"},
        {"switch": "s3", "name": "S3", "action": "open", "purpose": "isolation", "point": "S3/Pos"},
        {"switch": "cb1", "name": "CB1", "action": "close", "purpose": "restore upstream", "point": "CB1/Pos"},
    ]
    result = SimpleNamespace(data={"steps": steps, "tripped_name": "CB1", "faulted": "section 2", "restored_mw": 1.0})
    try:
        assert asyncio.run(runner.execute(result, time.time()))
        got = {}  # (GoCB, stNum) -> first message of that state (a lost frame is made up by a repetition)
        deadline = time.monotonic() + 5
        while len(got) < 5 and time.monotonic() < deadline:  # initial states, block, trip, unblock
            message = ied.next()
            got.setdefault((message["go_cb_ref"], message["st_num"]), message)
    finally:
        if runner.goose is not None:
            runner.goose.close()
        ied.stop()
    assert [c[0] for c in commands] == ["S2/Pos", "S3/Pos", "CB1/Pos"]  # the command path still runs every step
    assert got[(BLOCK_REF, 2)]["block"] and not got[(BLOCK_REF, 2)]["trip"]  # block reclosing of CB1
    assert got[(REF, 2)]["trip"]  # fast trip of S2
    assert not got[(BLOCK_REF, 3)]["block"]  # released before CB1 is closed
    sent = {(name, what): at for name, what, _st, _sq, at in runner.goose.sent}
    command_at = {name: at for name, _value, at in commands}
    assert sent[("CB1", "block")] < sent[("S2", "trip")] < command_at["S2/Pos"]
    assert command_at["S3/Pos"] < sent[("CB1", "unblock")] < command_at["CB1/Pos"]
    trip_ms = (got[(REF, 2)]["received"] - sent[("S2", "trip")]) * 1000
    print(f"\nFLISR GOOSE trip S2: published -> IED {trip_ms:.2f} ms (sqNum {got[(REF, 2)]['sq_num']}), "
          f"before the command by {(command_at['S2/Pos'] - sent[('S2', 'trip')]) * 1000:.2f} ms")
    assert trip_ms < 100
