"""Point maps: which SCADA point sits at which protocol address (shared by a protocol plugin's source and its simulator server).

One CSV file per protocol connection, shared by the source (client) and the simulator
server, so both sides agree::

    point,address,kind,scale
    Trafo_0-1/P,1:1001,analog,1.0
    switch_6/Pos,1:2001,double,1
    Trafo_0-1/Tap,1:3001,step,1

``address`` is protocol specific (IEC 104 ``<common address>:<IOA>``, DNP3 ``analog:3``,
IEC 61850 object references, OPC UA node ids, DLMS ``<logical name>:<attribute>``); each
protocol plugin parses its own. ``kind`` is a :class:`~dms_hookspecs.PointKind` value;
``scale`` multiplies the protocol value into engineering units (default 1).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import attrs

from dms_hookspecs import PointKind

__all__ = ["PointMapEntry", "PointMapError", "read_point_map", "write_point_map"]


class PointMapError(ValueError):
    """A point map cannot be used; names file and line."""


@attrs.frozen
class PointMapEntry:
    point: str
    address: str
    kind: PointKind = PointKind.ANALOG
    scale: float = 1.0


def read_point_map(path: str | Path) -> list[PointMapEntry]:
    """Read a point map CSV. :raises PointMapError: missing file/column, bad kind or scale, duplicates."""
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise PointMapError(f"cannot open point map {str(path)!r}: {exc.strerror}") from exc
    entries: list[PointMapEntry] = []
    seen_points: set[str] = set()
    seen_addresses: set[str] = set()
    with handle:
        reader = csv.DictReader(line for line in handle if not line.startswith("#"))
        missing = {"point", "address"} - set(reader.fieldnames or ())
        if missing:
            raise PointMapError(f"{path}: missing column(s) {sorted(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                entry = PointMapEntry(
                    row["point"].strip(),
                    row["address"].strip(),
                    PointKind((row.get("kind") or "analog").strip()),
                    float(row.get("scale") or 1.0),
                )
            except ValueError as exc:
                raise PointMapError(f"{path}:{line}: {exc}") from exc
            if not entry.point or not entry.address:
                raise PointMapError(f"{path}:{line}: empty point or address")
            if entry.point in seen_points:
                raise PointMapError(f"{path}:{line}: point {entry.point!r} mapped twice")
            if entry.address in seen_addresses:
                raise PointMapError(f"{path}:{line}: address {entry.address!r} used twice")
            seen_points.add(entry.point)
            seen_addresses.add(entry.address)
            entries.append(entry)
    return entries


def write_point_map(path: str | Path, entries: Iterable[PointMapEntry]) -> None:
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["point", "address", "kind", "scale"])
        for entry in entries:
            writer.writerow([entry.point, entry.address, entry.kind.value, f"{entry.scale:g}"])
