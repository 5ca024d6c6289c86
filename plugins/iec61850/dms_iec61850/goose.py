"""IEC 61850 GOOSE publisher and subscriber (libiec61850 through ctypes).

GOOSE (IEC 61850-8-1 clause 18) is a multicast Ethernet frame (EtherType 0x88B8, optionally
VLAN-tagged) that carries a data set. Each change of the data set starts a new state
(``stNum`` + 1, ``sqNum`` = 0); the state is repeated (``sqNum`` + 1) at growing intervals up to a
heartbeat; ``timeAllowedToLive`` tells the subscriber when to expect the next frame at the latest.

Leitstand uses it for the fast part of FLISR isolation: a data set ``[trip, block]`` (two
booleans) published to an IED's GOOSE subscription (``trip`` opens the switch, ``block`` blocks
its reclosing). :class:`GooseTripBlock` holds one publisher per configured switch; the ``flisr``
plugin calls it from ``Runner.execute`` when ``[settings.flisr] goose`` names the switch.

The calls go to the same bundled ``libiec61850`` shared object as :mod:`dms_iec61850.native`
(ctypes releases the GIL around every foreign call; the subscriber's listener is a ``CFUNCTYPE``
that holds the GIL only while it decodes a message on libiec61850's receive thread). Raw
Ethernet needs root or ``CAP_NET_RAW``. Declarations follow libiec61850 1.6 (``goose_publisher.h``,
``goose_subscriber.h``, ``goose_receiver.h``).

``python -m dms_iec61850.goose listen --interface eth1 --go-cb-ref REF`` prints every received
message as one JSON line (a simulated IED for tests and commissioning).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from ctypes import POINTER, c_bool, c_char_p, c_int, c_int32, c_uint8, c_uint16, c_uint32, c_uint64, c_void_p
from typing import Any

import attrs

from . import native
from .native import lib

__all__ = [
    "DEFAULT_MAC", "GooseError", "GooseMessage", "GoosePublisher", "GooseReceiver", "GooseTripBlock", "parse_mac",
]

log = logging.getLogger("leitstand.iec61850.goose")

#: First address of the IEC 61850-8-1 GOOSE multicast range (01-0C-CD-01-00-00 … 01-0C-CD-01-01-FF).
DEFAULT_MAC = "01:0C:CD:01:00:01"


class CommParameters(ctypes.Structure):
    """``CommParameters`` of ``goose_publisher.h``."""

    _fields_ = [("vlanPriority", c_uint8), ("vlanId", c_uint16), ("appId", c_uint16), ("dstAddress", c_uint8 * 6)]


#: ``void (*GooseListener)(GooseSubscriber subscriber, void* parameter)``
GOOSE_LISTENER = ctypes.CFUNCTYPE(None, c_void_p, c_void_p)

_SIGNATURES = {
    "GoosePublisher_createEx": (c_void_p, POINTER(CommParameters), c_char_p, c_bool),
    "GoosePublisher_destroy": (None, c_void_p),
    "GoosePublisher_publish": (c_int, c_void_p, c_void_p),
    "GoosePublisher_setGoID": (None, c_void_p, c_char_p),
    "GoosePublisher_setGoCbRef": (None, c_void_p, c_char_p),
    "GoosePublisher_setDataSetRef": (None, c_void_p, c_char_p),
    "GoosePublisher_setConfRev": (None, c_void_p, c_uint32),
    "GoosePublisher_setTimeAllowedToLive": (None, c_void_p, c_uint32),
    "GoosePublisher_setSimulation": (None, c_void_p, c_bool),
    "GoosePublisher_setNeedsCommission": (None, c_void_p, c_bool),
    "GoosePublisher_increaseStNum": (c_uint64, c_void_p),
    "GooseReceiver_create": (c_void_p,),
    "GooseReceiver_setInterfaceId": (None, c_void_p, c_char_p),
    "GooseReceiver_addSubscriber": (None, c_void_p, c_void_p),
    "GooseReceiver_start": (None, c_void_p),
    "GooseReceiver_stop": (None, c_void_p),
    "GooseReceiver_isRunning": (c_bool, c_void_p),
    "GooseReceiver_destroy": (None, c_void_p),
    "GooseSubscriber_create": (c_void_p, c_char_p, c_void_p),
    "GooseSubscriber_setAppId": (None, c_void_p, c_uint16),
    "GooseSubscriber_setDstMac": (None, c_void_p, POINTER(c_uint8 * 6)),
    "GooseSubscriber_setListener": (None, c_void_p, GOOSE_LISTENER, c_void_p),
    "GooseSubscriber_isValid": (c_bool, c_void_p),
    "GooseSubscriber_getParseError": (c_int, c_void_p),
    "GooseSubscriber_getAppId": (c_int32, c_void_p),
    "GooseSubscriber_getGoId": (c_char_p, c_void_p),
    "GooseSubscriber_getGoCbRef": (c_char_p, c_void_p),
    "GooseSubscriber_getDataSet": (c_char_p, c_void_p),
    "GooseSubscriber_getStNum": (c_uint32, c_void_p),
    "GooseSubscriber_getSqNum": (c_uint32, c_void_p),
    "GooseSubscriber_isTest": (c_bool, c_void_p),
    "GooseSubscriber_getConfRev": (c_uint32, c_void_p),
    "GooseSubscriber_needsCommission": (c_bool, c_void_p),
    "GooseSubscriber_getTimeAllowedToLive": (c_uint32, c_void_p),
    "GooseSubscriber_getTimestamp": (c_uint64, c_void_p),
    "GooseSubscriber_getDataSetValues": (c_void_p, c_void_p),
    "LinkedList_create": (c_void_p,),
    "LinkedList_add": (None, c_void_p, c_void_p),
    "LinkedList_destroyStatic": (None, c_void_p),
    "MmsValue_newFloat": (c_void_p, ctypes.c_float),
    "MmsValue_getBitStringBit": (c_bool, c_void_p, c_int),
}
for _name, (_restype, *_argtypes) in _SIGNATURES.items():
    if _name in native._SIGNATURES:  # noqa: SLF001 - declared there already, identically
        continue
    _function = getattr(lib, _name)
    _function.restype = _restype
    _function.argtypes = _argtypes

MMS_ARRAY, MMS_STRUCTURE, MMS_BOOLEAN, MMS_BIT_STRING, MMS_INTEGER, MMS_UNSIGNED, MMS_FLOAT, MMS_UTC_TIME = (
    0, 1, 2, 3, 4, 5, 6, 14)  # MmsType of mms_common.h (checked against the SWIG constants in the tests)


class GooseError(RuntimeError):
    """A GOOSE publisher or receiver could not be created (interface, permissions)."""


def parse_mac(text: str) -> bytes:
    """``"01:0C:CD:01:00:01"`` (``:`` or ``-``) -> 6 bytes."""
    parts = text.replace("-", ":").split(":")
    if len(parts) != 6:
        raise ValueError(f"not a MAC address: {text!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {text!r}") from None


@attrs.frozen
class GooseMessage:
    """One received GOOSE message (decoded on the receive thread)."""

    received: float  #: ``time.monotonic()`` when the listener was called
    go_cb_ref: str
    go_id: str
    data_set: str
    app_id: int
    st_num: int
    sq_num: int
    time_allowed_to_live_ms: int
    timestamp_ms: int  #: the publisher's time of the last state change (ms since 1970)
    conf_rev: int
    values: tuple[Any, ...]
    valid: bool  #: parsed against the subscriber's data set, and not a stale/repeated sqNum
    parse_error: int
    test: bool
    needs_commission: bool

    @property
    def trip(self) -> bool:
        """The first data-set member of a Leitstand trip/block data set."""
        return bool(self.values[0]) if self.values else False

    @property
    def block(self) -> bool:
        """The second data-set member of a Leitstand trip/block data set."""
        return bool(self.values[1]) if len(self.values) > 1 else False

    def as_dict(self) -> dict[str, Any]:
        return {**attrs.asdict(self), "values": list(self.values), "trip": self.trip, "block": self.block}


def _decode(value: int | None) -> Any:
    if not value:
        return None
    kind = lib.MmsValue_getType(value)
    if kind == MMS_BOOLEAN:
        return bool(lib.MmsValue_getBoolean(value))
    if kind == MMS_INTEGER:
        return int(lib.MmsValue_toInt64(value))
    if kind == MMS_UNSIGNED:
        return int(lib.MmsValue_toUint32(value))
    if kind == MMS_FLOAT:
        return float(lib.MmsValue_toDouble(value))
    if kind == MMS_UTC_TIME:
        return int(lib.MmsValue_getUtcTimeInMs(value))
    if kind in (MMS_ARRAY, MMS_STRUCTURE):
        return [_decode(lib.MmsValue_getElement(value, i)) for i in range(lib.MmsValue_getArraySize(value))]
    if kind == MMS_BIT_STRING:  # e.g. a quality: the bits as an integer, bit 0 first
        size = lib.MmsValue_getBitStringSize(value)
        return sum(1 << i for i in range(size) if lib.MmsValue_getBitStringBit(value, i))
    return None


def _text(raw: bytes | None) -> str:
    return raw.decode("utf-8", "replace") if raw else ""


def _message(subscriber: int, received: float) -> GooseMessage:
    values = _decode(lib.GooseSubscriber_getDataSetValues(subscriber))
    return GooseMessage(
        received=received,
        go_cb_ref=_text(lib.GooseSubscriber_getGoCbRef(subscriber)),
        go_id=_text(lib.GooseSubscriber_getGoId(subscriber)),
        data_set=_text(lib.GooseSubscriber_getDataSet(subscriber)),
        app_id=int(lib.GooseSubscriber_getAppId(subscriber)),
        st_num=int(lib.GooseSubscriber_getStNum(subscriber)),
        sq_num=int(lib.GooseSubscriber_getSqNum(subscriber)),
        time_allowed_to_live_ms=int(lib.GooseSubscriber_getTimeAllowedToLive(subscriber)),
        timestamp_ms=int(lib.GooseSubscriber_getTimestamp(subscriber)),
        conf_rev=int(lib.GooseSubscriber_getConfRev(subscriber)),
        values=tuple(values) if isinstance(values, list) else (() if values is None else (values,)),
        valid=bool(lib.GooseSubscriber_isValid(subscriber)),
        parse_error=int(lib.GooseSubscriber_getParseError(subscriber)),
        test=bool(lib.GooseSubscriber_isTest(subscriber)),
        needs_commission=bool(lib.GooseSubscriber_needsCommission(subscriber)),
    )


class GooseReceiver:
    """Receives GOOSE on one interface for any number of subscriptions (a libiec61850 receiver thread).

    ``subscribe(go_cb_ref, callback, app_id=..., dst_mac=...)`` before :meth:`start`; frames with
    another GoCB reference, APPID or destination MAC are dropped by libiec61850. ``callback(message)``
    runs on the receive thread; exceptions are logged. ``only_valid`` (default) drops messages that
    did not parse against the data set of earlier messages (libiec61850 ``isValid``: also a repeated
    or older ``sqNum`` of the same state).
    """

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self._receiver: int | None = lib.GooseReceiver_create()
        if not self._receiver:
            raise GooseError("GooseReceiver_create failed")
        lib.GooseReceiver_setInterfaceId(self._receiver, interface.encode())
        self._listeners: list[Any] = []  # CFUNCTYPE objects: must outlive the receiver
        self.dropped = 0  # invalid messages not passed on
        self.running = False

    def subscribe(self, go_cb_ref: str, callback: Callable[[GooseMessage], None], *, app_id: int | None = None,
                  dst_mac: str | None = None, only_valid: bool = True) -> None:
        if self.running:
            raise GooseError("subscribe before start(): libiec61850 sets the multicast filter at start")
        subscriber = lib.GooseSubscriber_create(go_cb_ref.encode(), None)
        if not subscriber:
            raise GooseError(f"GooseSubscriber_create({go_cb_ref!r}) failed")
        if app_id is not None:
            lib.GooseSubscriber_setAppId(subscriber, app_id)
        if dst_mac is not None:
            lib.GooseSubscriber_setDstMac(subscriber, (c_uint8 * 6)(*parse_mac(dst_mac)))

        def listener(handle: int, _parameter: int) -> None:
            received = time.monotonic()
            try:
                message = _message(handle, received)
                if only_valid and not message.valid:
                    self.dropped += 1
                    return
                callback(message)
            except Exception:  # noqa: BLE001 - never let an exception unwind into C
                log.exception("GOOSE listener for %s failed", go_cb_ref)

        function = GOOSE_LISTENER(listener)
        self._listeners.append(function)
        lib.GooseSubscriber_setListener(subscriber, function, None)
        lib.GooseReceiver_addSubscriber(self._receiver, subscriber)  # owned (and destroyed) by the receiver

    def start(self) -> GooseReceiver:
        lib.GooseReceiver_start(self._receiver)
        if not lib.GooseReceiver_isRunning(self._receiver):
            raise GooseError(f"cannot receive GOOSE on {self.interface!r}: no such interface, or no raw-socket "
                             "permission (root or CAP_NET_RAW)")
        self.running = True
        return self

    def stop(self) -> None:
        if self._receiver:
            if self.running:
                lib.GooseReceiver_stop(self._receiver)  # joins the receive thread
            lib.GooseReceiver_destroy(self._receiver)
            self._receiver = None
            self.running = False

    def __enter__(self) -> GooseReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class GoosePublisher:
    """Publishes one GOOSE control block's data set on one interface.

    :meth:`publish` sends the data set; a value different from the last one starts a new state
    (``stNum`` + 1, ``sqNum`` 0), the same values are a retransmission (``sqNum`` + 1).
    With ``retransmit=True`` a background thread repeats the current state after ``min_time_ms``,
    doubling the interval up to ``max_time_ms`` (the heartbeat), as an IED does.
    """

    def __init__(self, interface: str, *, app_id: int, dst_mac: str = DEFAULT_MAC, vlan_id: int = 0,
                 vlan_priority: int = 4, use_vlan: bool = True, go_cb_ref: str = "LEITSTAND/LLN0$GO$gcbFLISR",
                 data_set_ref: str = "LEITSTAND/LLN0$dsFLISR", go_id: str | None = None, conf_rev: int = 1,
                 time_allowed_to_live_ms: int = 2000, retransmit: bool = False, min_time_ms: int = 4,
                 max_time_ms: int = 1000, simulation: bool = False) -> None:
        if not 0 <= app_id <= 0xFFFF:
            raise ValueError(f"app_id {app_id} out of range 0..65535")
        params = CommParameters(vlanPriority=vlan_priority, vlanId=vlan_id, appId=app_id)
        params.dstAddress[:] = list(parse_mac(dst_mac))
        self.interface, self.app_id, self.go_cb_ref = interface, app_id, go_cb_ref
        self._publisher: int | None = lib.GoosePublisher_createEx(ctypes.byref(params), interface.encode(), use_vlan)
        if not self._publisher:
            raise GooseError(f"cannot publish GOOSE on {interface!r}: no such interface, or no raw-socket "
                             "permission (root or CAP_NET_RAW)")
        lib.GoosePublisher_setGoCbRef(self._publisher, go_cb_ref.encode())
        lib.GoosePublisher_setDataSetRef(self._publisher, data_set_ref.encode())
        lib.GoosePublisher_setGoID(self._publisher, (go_id or go_cb_ref).encode())
        lib.GoosePublisher_setConfRev(self._publisher, conf_rev)
        lib.GoosePublisher_setTimeAllowedToLive(self._publisher, time_allowed_to_live_ms)
        lib.GoosePublisher_setSimulation(self._publisher, simulation)
        self.time_allowed_to_live_ms = time_allowed_to_live_ms
        self.min_time_ms, self.max_time_ms = min_time_ms, max_time_ms
        self.values: tuple[Any, ...] | None = None
        self.st_num, self.sq_num = 1, 0  # of the next frame
        self.sent = 0
        self._lock = threading.Lock()
        self._changed = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        if retransmit:
            self._thread = threading.Thread(target=self._repeat, name=f"goose-{go_cb_ref}", daemon=True)
            self._thread.start()

    def publish(self, values: Sequence[bool | int | float], *, new_state: bool = False) -> tuple[int, int]:
        """Send ``values``; returns the (stNum, sqNum) sent. ``new_state`` forces a new stNum."""
        values = tuple(values)
        with self._lock:
            if self._publisher is None:
                raise GooseError("publisher closed")
            if self.values is not None and (values != self.values or new_state):
                lib.GoosePublisher_increaseStNum(self._publisher)
                self.st_num, self.sq_num = self.st_num + 1, 0
            self.values = values
            sent = self._send(values)
        self._changed.set()
        return sent

    def retransmit(self) -> tuple[int, int]:
        """Send the current state again (``sqNum`` + 1)."""
        with self._lock:
            if self._publisher is None or self.values is None:
                raise GooseError("nothing published yet" if self._publisher else "publisher closed")
            return self._send(self.values)

    def _send(self, values: tuple[Any, ...]) -> tuple[int, int]:
        members = []
        dataset = lib.LinkedList_create()
        try:
            for value in values:
                if isinstance(value, bool):
                    member = lib.MmsValue_newBoolean(value)
                elif isinstance(value, int):
                    member = lib.MmsValue_newIntegerFromInt32(value)
                elif isinstance(value, float):
                    member = lib.MmsValue_newFloat(value)
                else:
                    raise TypeError(f"GOOSE data-set member must be bool, int or float, not {type(value).__name__}")
                members.append(member)
                lib.LinkedList_add(dataset, member)
            if lib.GoosePublisher_publish(self._publisher, dataset) != 0:
                raise GooseError(f"GoosePublisher_publish failed on {self.interface!r}")
        finally:
            lib.LinkedList_destroyStatic(dataset)
            for member in members:
                lib.MmsValue_delete(member)
        sent = (self.st_num, self.sq_num)
        self.sq_num += 1  # libiec61850 wraps to 1, never 0
        if self.sq_num > 0xFFFFFFFF:
            self.sq_num = 1
        self.sent += 1
        return sent

    def _repeat(self) -> None:
        interval = self.max_time_ms
        while not self._closed:
            if self._changed.wait(interval / 1000):
                self._changed.clear()
                interval = self.min_time_ms
                continue
            if self._closed:
                return
            try:
                if self.values is not None:
                    self.retransmit()
            except GooseError:
                return
            except Exception:  # noqa: BLE001
                log.exception("GOOSE retransmission of %s failed", self.go_cb_ref)
            interval = min(interval * 2, self.max_time_ms)

    def close(self) -> None:
        self._closed = True
        self._changed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2)
        with self._lock:
            if self._publisher:
                lib.GoosePublisher_destroy(self._publisher)
                self._publisher = None

    def __enter__(self) -> GoosePublisher:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class GooseTripBlock:
    """FLISR's GOOSE fast path: one ``[trip, block]`` publisher per configured switch.

    ``config`` is ``[settings.flisr] goose``: ``{switch name: {interface, app_id, mac, vlan_id,
    vlan_priority, go_cb_ref, data_set_ref, time_allowed_to_live_ms}}`` (``interface`` and
    ``app_id`` required). Publishers are created on first use and retransmit (4 ms doubling to 1 s).
    """

    def __init__(self, config: Mapping[str, Mapping[str, Any]]) -> None:
        for name, entry in config.items():
            if not isinstance(entry, Mapping) or "interface" not in entry or "app_id" not in entry:
                raise ValueError(f"flisr goose: switch {name!r} needs a table with interface and app_id")
            parse_mac(str(entry.get("mac", DEFAULT_MAC)))
        self.config = {name: dict(entry) for name, entry in config.items()}
        self.publishers: dict[str, GoosePublisher] = {}
        self.state: dict[str, list[bool]] = {}
        self.sent: list[tuple[str, str, int, int, float]] = []  # (switch, what, stNum, sqNum, monotonic)

    def __contains__(self, name: object) -> bool:
        return name in self.config

    def _publisher(self, name: str) -> GoosePublisher:
        publisher = self.publishers.get(name)
        if publisher is None:
            entry = self.config[name]
            publisher = GoosePublisher(
                str(entry["interface"]), app_id=int(entry["app_id"]), dst_mac=str(entry.get("mac", DEFAULT_MAC)),
                vlan_id=int(entry.get("vlan_id", 0)), vlan_priority=int(entry.get("vlan_priority", 4)),
                use_vlan=bool(entry.get("vlan", True)),
                go_cb_ref=str(entry.get("go_cb_ref", "LEITSTAND/LLN0$GO$gcbFLISR")),
                data_set_ref=str(entry.get("data_set_ref", "LEITSTAND/LLN0$dsFLISR")),
                time_allowed_to_live_ms=int(entry.get("time_allowed_to_live_ms", 2000)), retransmit=True)
            self.publishers[name] = publisher
            self.state[name] = [False, False]
            publisher.publish(self.state[name])  # the initial state: stNum 1
        return publisher

    def _send(self, name: str, index: int, on: bool, what: str) -> tuple[int, int]:
        publisher = self._publisher(name)
        self.state[name][index] = on
        st, sq = publisher.publish(self.state[name], new_state=True)
        self.sent.append((name, what, st, sq, time.monotonic()))
        log.info("GOOSE %s %s (APPID 0x%04X, stNum %d)", what, name, publisher.app_id, st)
        return st, sq

    def trip(self, name: str) -> tuple[int, int]:
        """Publish ``trip = true`` to the IED of switch ``name``."""
        return self._send(name, 0, True, "trip")

    def block(self, name: str, on: bool = True) -> tuple[int, int]:
        """Publish ``block = on`` (block reclosing) to the IED of switch ``name``."""
        return self._send(name, 1, on, "block" if on else "unblock")

    def close(self) -> None:
        for publisher in self.publishers.values():
            publisher.close()
        self.publishers.clear()


# -- command line: a simulated IED that prints what it receives --------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dms_iec61850.goose", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    listen = sub.add_parser("listen", help="print received GOOSE messages as JSON lines")
    listen.add_argument("--interface", required=True)
    listen.add_argument("--go-cb-ref", required=True, action="append", help="repeatable")
    listen.add_argument("--app-id", type=lambda s: int(s, 0))
    listen.add_argument("--mac")
    listen.add_argument("--seconds", type=float, default=60.0, help="stop after this long, or at end of stdin")
    args = parser.parse_args(argv)
    out_lock = threading.Lock()

    def show(message: GooseMessage) -> None:
        line = json.dumps(message.as_dict())
        with out_lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()

    receiver = GooseReceiver(args.interface)
    for reference in args.go_cb_ref:
        receiver.subscribe(reference, show, app_id=args.app_id, dst_mac=args.mac)
    with receiver:
        with out_lock:
            sys.stdout.write(json.dumps({"ready": True, "interface": args.interface}) + "\n")
            sys.stdout.flush()
        done = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
        done.wait(args.seconds)
    with out_lock:
        sys.stdout.write(json.dumps({"stopped": True, "dropped": receiver.dropped}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
