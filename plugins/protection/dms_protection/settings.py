"""Protection settings of one device: its functions (IEC 61850 logical nodes) and how fast it operates.

A *device* is a switch of the network model (mRID): a breaker with a relay, a recloser, a fuse.
Currents are primary amperes; times seconds (``OpDlTmms`` milliseconds only on the wire).

=====================  ===============================================================
class                  IEC 61850 LN / meaning
=====================  ===============================================================
:class:`Overcurrent`   PTOC: time-overcurrent, IEC 60255 / IEEE C37.112 curve or definite time
:class:`Instantaneous` PIOC: instantaneous overcurrent (optional fixed delay)
:class:`DistanceZone`  PDIS: one zone, reach (ohm, primary) and delay
:class:`Recloser`      RREC + fast/slow PTOC: shots, fast shots, dead times
:class:`FuseCurves`    fuse melting and clearing curves (tables, log-log)
=====================  ===============================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import attrs

from .curves import CURVES, CurveError, TableCurve, inverse_time

__all__ = ["Overcurrent", "Instantaneous", "DistanceZone", "Recloser", "FuseCurves", "DeviceSettings", "DEVICE_KINDS"]

DEVICE_KINDS = ("relay", "recloser", "fuse")


def _curve_name(_instance: object, _attribute: object, value: str) -> None:
    if value not in CURVES:
        raise CurveError(f"unknown curve {value!r} (known: {', '.join(CURVES)})")


@attrs.frozen
class Overcurrent:
    """PTOC: ``pickup_a`` (StrVal), ``curve``, ``multiplier`` (TMS/TD, TmMult), ``definite_s`` (OpDlTmms)."""

    pickup_a: float
    curve: str = attrs.field(default="iec_standard_inverse", validator=_curve_name)
    multiplier: float = 0.1
    definite_s: float = 0.0
    name: str = "PTOC1"

    def time(self, current_a: float) -> float:
        return inverse_time(self.curve, current_a, self.pickup_a, self.multiplier, self.definite_s)


@attrs.frozen
class Instantaneous:
    """PIOC: operates ``delay_s`` after the current exceeds ``pickup_a``."""

    pickup_a: float
    delay_s: float = 0.0
    name: str = "PIOC1"

    def time(self, current_a: float) -> float:
        return self.delay_s if current_a > self.pickup_a else math.inf


@attrs.frozen
class DistanceZone:
    """PDIS: zone ``zone`` reaches ``reach_ohm`` (primary, positive sequence) at ``angle_deg`` and trips after ``delay_s``."""

    zone: int
    reach_ohm: float
    delay_s: float
    angle_deg: float = 75.0
    name: str = ""


@attrs.frozen
class Recloser:
    """A recloser sequence: ``fast_shots`` trips on the fast curve, the rest on the slow curve,
    ``shots`` trips in all (lockout after the last), ``dead_times_s`` between them."""

    fast: Overcurrent
    slow: Overcurrent
    shots: int = 4
    fast_shots: int = 1
    dead_times_s: tuple[float, ...] = attrs.field(default=(0.5, 5.0, 15.0), converter=tuple)

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.shots <= 5:
            raise ValueError(f"a recloser sequence has 1..5 shots, got {self.shots}")
        if not 0 <= self.fast_shots <= self.shots:
            raise ValueError(f"fast_shots ({self.fast_shots}) must be between 0 and shots ({self.shots})")
        if len(self.dead_times_s) < self.shots - 1:
            raise ValueError(f"{self.shots} shots need {self.shots - 1} dead times, got {len(self.dead_times_s)}")


@attrs.frozen
class FuseCurves:
    """A fuse link of ``rating_a`` with its minimum melting and total clearing curves."""

    rating_a: float
    melting: TableCurve
    clearing: TableCurve
    name: str = ""

    def __attrs_post_init__(self) -> None:
        for current, _ in self.clearing.points:
            if self.clearing.time(current) < self.melting.time(current):
                raise CurveError(f"fuse {self.name or self.rating_a}: clearing time below melting time at {current:g} A")


@attrs.frozen
class DeviceSettings:
    """All settings of one device (one setting group).

    :param device: mRID of the switch in the network model.
    :param kind: ``relay``, ``recloser`` or ``fuse``.
    :param ied: logical device of the IED holding the settings (``IED1LD0``), for MMS distribution.
    """

    device: str
    kind: str = attrs.field(default="relay", validator=attrs.validators.in_(DEVICE_KINDS))
    overcurrent: tuple[Overcurrent, ...] = attrs.field(default=(), converter=tuple)
    instantaneous: tuple[Instantaneous, ...] = attrs.field(default=(), converter=tuple)
    distance: tuple[DistanceZone, ...] = attrs.field(default=(), converter=tuple)
    recloser: Recloser | None = None
    fuse: FuseCurves | None = None
    ied: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind == "fuse" and self.fuse is None:
            raise ValueError(f"device {self.device!r}: a fuse needs its curves")
        if self.kind == "recloser" and self.recloser is None:
            raise ValueError(f"device {self.device!r}: a recloser needs its sequence")
        if self.kind == "relay" and not (self.overcurrent or self.instantaneous or self.distance):
            raise ValueError(f"device {self.device!r}: a relay needs at least one protection function")

    # -- operate times ---------------------------------------------------------------------------

    def _relay_time(self, current_a: float) -> float:
        times = [f.time(current_a) for f in self.overcurrent] + [f.time(current_a) for f in self.instantaneous]
        return min(times, default=math.inf)

    def fastest_time(self, current_a: float) -> float:
        """The earliest the device acts: fuse melting, recloser fast curve, relay trip."""
        if self.kind == "fuse":
            return self.fuse.melting.time(current_a)
        if self.kind == "recloser":
            curve = self.recloser.fast if self.recloser.fast_shots else self.recloser.slow
            return min(curve.time(current_a), self._relay_time(current_a))
        return self._relay_time(current_a)

    def clearing_time(self, current_a: float) -> float:
        """When the device has finally cleared a permanent fault: fuse total clearing, recloser slow
        curve (the last trip before lockout), relay trip."""
        if self.kind == "fuse":
            return self.fuse.clearing.time(current_a)
        if self.kind == "recloser":
            return min(self.recloser.slow.time(current_a), self._relay_time(current_a))
        return self._relay_time(current_a)

    def backup_time(self, current_a: float) -> float:
        """The time an *upstream* device must stay above the downstream one: fuse melting,
        recloser slow curve, relay trip."""
        if self.kind == "fuse":
            return self.fuse.melting.time(current_a)
        return self.clearing_time(current_a)

    @property
    def pickup_a(self) -> float:
        """The lowest current the device responds to."""
        if self.kind == "fuse":
            return self.fuse.melting.min_current_a
        if self.kind == "recloser":
            return min(self.recloser.fast.pickup_a, self.recloser.slow.pickup_a)
        pickups = [f.pickup_a for f in self.overcurrent] + [f.pickup_a for f in self.instantaneous]
        return min(pickups, default=math.inf)

    # -- serialisation ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        def curve(table: TableCurve) -> list[list[float]]:
            return [list(p) for p in table.points]

        data: dict[str, Any] = {
            "device": self.device,
            "kind": self.kind,
            "ied": self.ied,
            "overcurrent": [attrs.asdict(f) for f in self.overcurrent],
            "instantaneous": [attrs.asdict(f) for f in self.instantaneous],
            "distance": [attrs.asdict(f) for f in self.distance],
        }
        if self.recloser is not None:
            r = self.recloser
            data["recloser"] = {"fast": attrs.asdict(r.fast), "slow": attrs.asdict(r.slow), "shots": r.shots,
                                "fast_shots": r.fast_shots, "dead_times_s": list(r.dead_times_s)}
        if self.fuse is not None:
            f = self.fuse
            data["fuse"] = {"rating_a": f.rating_a, "name": f.name, "melting": curve(f.melting), "clearing": curve(f.clearing)}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeviceSettings:
        recloser = data.get("recloser")
        fuse = data.get("fuse")
        return cls(
            device=data["device"],
            kind=data.get("kind", "relay"),
            ied=data.get("ied"),
            overcurrent=[Overcurrent(**f) for f in data.get("overcurrent", ())],
            instantaneous=[Instantaneous(**f) for f in data.get("instantaneous", ())],
            distance=[DistanceZone(**f) for f in data.get("distance", ())],
            recloser=None if recloser is None else Recloser(
                fast=Overcurrent(**recloser["fast"]), slow=Overcurrent(**recloser["slow"]), shots=recloser.get("shots", 4),
                fast_shots=recloser.get("fast_shots", 1), dead_times_s=recloser.get("dead_times_s", (0.5, 5.0, 15.0)),
            ),
            fuse=None if fuse is None else FuseCurves(
                rating_a=fuse["rating_a"], name=fuse.get("name", ""),
                melting=TableCurve(fuse["melting"]), clearing=TableCurve(fuse["clearing"]),
            ),
        )


def fuse_link(rating_a: float, name: str = "") -> FuseCurves:
    """A generic expulsion fuse link (K-type-like shape) of ``rating_a``: melting from 2× rating
    (300 s) to 25× (0.013 s); clearing 10 % more current-time plus 10 ms arc time."""
    melting = [(2.0, 300.0), (3.0, 10.0), (5.0, 1.0), (10.0, 0.1), (15.0, 0.04), (25.0, 0.013)]
    melt = TableCurve([(rating_a * m, t) for m, t in melting])
    clear = TableCurve([(rating_a * m, t * 1.1 + 0.01) for m, t in melting])
    return FuseCurves(rating_a, melt, clear, name or f"{rating_a:g}K")


__all__.append("fuse_link")
