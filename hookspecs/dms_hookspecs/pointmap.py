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

Point maps from the network model: CIM measurements can carry their protocol address
(``RemoteSource`` → ``MeasurementValue`` → ``Analog``/``Discrete``, the ``RemoteSource``'s
``RemotePoint.RemoteUnit`` naming the connection; see :mod:`dms_kernel.model.addresses`). A
source that calls :func:`load_point_map` with its settings gets the CSV map (``points_file``) or,
with ``point_map = "cim"`` (or ``"auto"`` and no ``points_file``), the entries the kernel built from
the deployment's model for the source's connection (``connection``, default: the source name).
The kernel provides them through :data:`MODEL_POINT_MAPS` while it creates the sources.
"""

from __future__ import annotations

import csv
import contextvars
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs

from dms_hookspecs import PointKind

__all__ = [
    "PointMapEntry",
    "PointMapError",
    "read_point_map",
    "write_point_map",
    "load_point_map",
    "point_map_settings",
    "MODEL_POINT_MAPS",
    "POINT_MAP_MODES",
]

POINT_MAP_MODES = ("auto", "csv", "cim")


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


#: Set by the kernel while it creates the sources of a deployment with a network model: a function
#: ``connection name -> point map entries`` built from the model's RemoteUnit/RemoteSource objects
#: (:func:`dms_kernel.model.addresses.point_map_from_model`). Unset (None) without a model.
MODEL_POINT_MAPS: contextvars.ContextVar[Callable[[str], list[PointMapEntry]] | None] = contextvars.ContextVar(
    "MODEL_POINT_MAPS", default=None
)


def point_map_settings(points_file_required: bool = False) -> tuple:
    """The settings every protocol source accepts for its point map (``points_file``, ``point_map``, ``connection``)."""
    from dms_hookspecs import Setting

    return (
        Setting("points_file", str, None, "point map CSV: point,address,kind,scale"
                + (" (required unless point_map = 'cim')" if points_file_required else "")),
        Setting("point_map", str, "auto", "where the point map comes from: 'csv' (points_file), 'cim' (the model's "
                "RemoteSource addresses of this connection), 'auto' (points_file if set, else the model)"),
        Setting("connection", str, "", "name of the model's RemoteUnit this source talks to (default: the source name)"),
    )


def load_point_map(settings: Mapping[str, Any], source_name: str) -> list[PointMapEntry]:
    """The point map of a source: from ``points_file`` or from the deployment's model.

    :param settings: the source's validated settings (``points_file``, ``point_map``, ``connection``).
    :param source_name: the source's name, the default connection name.
    :raises PointMapError: bad mode, no CSV and no model, no addresses in the model for the connection.
    """
    mode = settings.get("point_map") or "auto"
    if mode not in POINT_MAP_MODES:
        raise PointMapError(f"point_map must be one of {POINT_MAP_MODES}, not {mode!r}")
    path = settings.get("points_file")
    if mode == "csv" or (mode == "auto" and path):
        if not path:
            raise PointMapError("point_map = 'csv' needs points_file")
        return read_point_map(path)
    connection = settings.get("connection") or source_name
    provider = MODEL_POINT_MAPS.get()
    if provider is None:
        raise PointMapError(f"no points_file and no network model with addresses for connection {connection!r}"
                            " (set points_file, or a deployment model with RemoteUnit/RemoteSource)")
    entries = provider(connection)
    if not entries:
        raise PointMapError(f"the network model has no RemoteSource addresses for RemoteUnit {connection!r}")
    return entries
