"""Protocol addresses carried by the network model, as point maps for protocol sources.

CIM (IEC 61970-301, SCADA package) says where a measurement's value comes from::

    RemoteUnit (name = the connection, e.g. "RTU_S1")
        ▲ RemotePoint.RemoteUnit
    RemoteSource (name = the protocol address at that unit, e.g. "1:1001")
        │ RemoteSource.MeasurementValue
        ▼
    AnalogValue / DiscreteValue ──AnalogValue.Analog / DiscreteValue.Discrete──▶ Analog / Discrete

:func:`point_map_from_model` turns the RemoteSources of one RemoteUnit into the same entries a
point map CSV gives (:class:`dms_hookspecs.pointmap.PointMapEntry`: the measurement's point name,
the RemoteSource's name — its mRID when it has none — as address, the point kind of the
measurement, scale 1). :func:`model_point_maps` makes them available to the protocol sources the
kernel creates (``point_map = "cim"`` in their settings, see :func:`dms_hookspecs.pointmap.load_point_map`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from dms_hookspecs import PointKind
from dms_hookspecs.pointmap import MODEL_POINT_MAPS, PointMapEntry, PointMapError

from .elements import Analog, Discrete, Measurement, MeasurementValue, RemoteSource, RemoteUnit

__all__ = ["point_map_from_model", "connections", "model_point_maps", "point_kind"]


def point_kind(measurement: Measurement) -> PointKind:
    """The SCADA point kind of a measurement (as :func:`dms_kernel.model.scada.measurement_points` declares it)."""
    if isinstance(measurement, Discrete):
        return PointKind.DOUBLE if measurement.measurement_type == "SwitchPosition" else PointKind.STEP
    return PointKind.ANALOG


def connections(model) -> list[str]:
    """Names of the RemoteUnits that have at least one RemoteSource."""
    units = {source.remote_unit for source in model.of_type(RemoteSource) if source.remote_unit}
    return sorted({(model.objects[unit].name or unit) for unit in units if unit in model.objects})


def point_map_from_model(model, connection: str) -> list[PointMapEntry]:
    """Point map entries of the RemoteUnit named (or with mRID) ``connection``, in model order.

    :raises PointMapError: a RemoteSource without a measurement, an address or point used twice.
    """
    units = {unit.mrid for unit in model.of_type(RemoteUnit) if connection in (unit.name, unit.mrid)}
    entries: list[PointMapEntry] = []
    points: set[str] = set()
    addresses: set[str] = set()
    for source in model.of_type(RemoteSource):
        if source.remote_unit not in units:
            continue
        value = model.objects.get(source.measurement_value or "")
        measurement = model.objects.get(value.measurement or "") if isinstance(value, MeasurementValue) else value
        if not isinstance(measurement, (Analog, Discrete)):
            raise PointMapError(f"RemoteSource {source.mrid!r} of {connection!r}: no Analog/Discrete behind "
                                f"MeasurementValue {source.measurement_value!r}")
        entry = PointMapEntry(measurement.point_name, source.name or source.mrid, point_kind(measurement), 1.0)
        if entry.point in points:
            raise PointMapError(f"RemoteUnit {connection!r}: point {entry.point!r} has two RemoteSources")
        if entry.address in addresses:
            raise PointMapError(f"RemoteUnit {connection!r}: address {entry.address!r} used twice")
        points.add(entry.point)
        addresses.add(entry.address)
        entries.append(entry)
    return entries


@contextlib.contextmanager
def model_point_maps(model) -> Iterator[None]:
    """While active, :func:`dms_hookspecs.pointmap.load_point_map` can build point maps from ``model``."""
    token = MODEL_POINT_MAPS.set((lambda connection: point_map_from_model(model, connection))
                                 if model is not None and hasattr(model, "of_type") else None)
    try:
        yield
    finally:
        MODEL_POINT_MAPS.reset(token)
