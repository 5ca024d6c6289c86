"""Where things are and when crews work: haversine distance, shifts, locations from the model."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["EARTH_RADIUS_KM", "haversine_km", "parse_clock", "on_shift", "element_location", "find_element"]

EARTH_RADIUS_KM = 6371.0088
"""Mean Earth radius (IUGG)."""


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km between two WGS 84 positions given in degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def parse_clock(text: str) -> dt.time:
    """``"HH:MM"`` → :class:`datetime.time`. :raises ValueError: naming the text."""
    try:
        hours, minutes = str(text).split(":")
        return dt.time(int(hours), int(minutes))
    except ValueError:
        raise ValueError(f"shift time {text!r} is not HH:MM (00:00 to 23:59)") from None


def on_shift(shift_start: str, shift_end: str, when: float, zone: ZoneInfo) -> bool:
    """Whether the local time of ``when`` lies in ``[shift_start, shift_end)``.

    A shift ending before it starts runs over midnight (``22:00``–``06:00``); equal start and
    end mean around the clock.
    """
    start, end = parse_clock(shift_start), parse_clock(shift_end)
    local = dt.datetime.fromtimestamp(when, zone).time().replace(second=0, microsecond=0, tzinfo=None)
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


def find_element(model: Any, element: str) -> Any | None:
    """The model object with this mRID, else the conducting equipment with this name, else ``None``."""
    if model is None or not element:
        return None
    found = model.objects.get(element) if hasattr(model, "objects") else None
    if found is not None:
        return found
    from dms_kernel.model.elements import ConductingEquipment, Measurement

    lowered = element.lower()
    for obj in model.of_type(ConductingEquipment):
        if obj.name.lower() == lowered:
            return obj
    for measurement in model.of_type(Measurement):  # a SCADA point name
        if measurement.point_name == element:
            return measurement
    return None


def _equipment_of(model: Any, obj: Any) -> Any | None:
    from dms_kernel.model.elements import ConductingEquipment, Measurement, Terminal

    if isinstance(obj, ConductingEquipment):
        return obj
    if isinstance(obj, Measurement):
        if obj.power_system_resource and obj.power_system_resource in model.objects:
            return _equipment_of(model, model.objects[obj.power_system_resource])
        if obj.terminal and obj.terminal in model.objects:
            return _equipment_of(model, model.objects[obj.terminal])
    if isinstance(obj, Terminal) and obj.conducting_equipment in model.objects:
        return model.objects[obj.conducting_equipment]
    return None


def element_location(model: Any, element: str) -> tuple[str, float, float] | None:
    """``(equipment mRID, lat, lon)`` of an element from its CIM ``Location``, or ``None``.

    ``element`` is an mRID, an equipment name or a SCADA point name (through the model's
    ``Measurement``). Location points are ``(x, y)`` = ``(lon, lat)`` in WGS 84; for a line
    with several points the mean of its points is used.
    """
    from dms_kernel.model.elements import Location

    equipment = _equipment_of(model, find_element(model, element))
    if equipment is None or not equipment.location:
        return None
    location = model.objects.get(equipment.location)
    if not isinstance(location, Location) or not location.points:
        return None
    lon = sum(float(p[0]) for p in location.points) / len(location.points)
    lat = sum(float(p[1]) for p in location.points) / len(location.points)
    return equipment.mrid, lat, lon
