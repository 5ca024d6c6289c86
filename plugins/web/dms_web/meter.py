"""Meter readings after IEC 61968-9 (``MeterReadings`` message), as XML or JSON.

A *meter* is a source whose name matches ``[settings.web] meter_sources`` (default
``meter*``); its points are its registers. Each point's unit selects the CIM
``ReadingType`` — the 18-field code of IEC 61968-9 Annex C (macroPeriod, aggregate,
measuringPeriod, accumulation, flowDirection, commodity, measurementKind, interharmonic
(2), argument (2), TOU, cpp, consumptionTier, phases, multiplier, unit, currency).
Points with a unit outside the table are reported with ``reading_type = null`` in JSON and
left out of the XML.
"""

from __future__ import annotations

import fnmatch
import math
from datetime import datetime, timezone
from typing import Any
from xml.etree import ElementTree as ET

__all__ = ["READING_TYPES", "reading_type", "meter_points", "to_xml", "NAMESPACE"]

NAMESPACE = "http://iec.ch/TC57/2011/MeterReadings#"

#: unit → (accumulation, flowDirection, measurementKind, multiplier, unit) — commodity 1 (electricity, secondary metered)
READING_TYPES: dict[str, tuple[int, int, int, int, int]] = {
    "Wh": (1, 1, 12, 0, 72), "kWh": (1, 1, 12, 3, 72), "MWh": (1, 1, 12, 6, 72),   # bulk energy register, forward
    "varh": (1, 1, 12, 0, 73), "kvarh": (1, 1, 12, 3, 73),
    "W": (12, 1, 37, 0, 38), "kW": (12, 1, 37, 3, 38), "MW": (12, 1, 37, 6, 38),    # instantaneous power
    "var": (12, 1, 37, 0, 63), "kvar": (12, 1, 37, 3, 63), "Mvar": (12, 1, 37, 6, 63),
    "V": (6, 0, 54, 0, 29), "kV": (6, 0, 54, 3, 29),                                 # indicating voltage
    "A": (6, 0, 4, 0, 5), "kA": (6, 0, 4, 3, 5),                                     # indicating current
}


def reading_type(unit: str) -> str | None:
    """The ReadingType mRID for ``unit``, e.g. ``kWh`` → ``0.0.0.1.1.1.12.0.0.0.0.0.0.0.0.3.72.0``."""
    code = READING_TYPES.get(unit.strip())
    if code is None:
        return None
    accumulation, flow, kind, multiplier, uom = code
    return f"0.0.0.{accumulation}.{flow}.1.{kind}.0.0.0.0.0.0.0.0.{multiplier}.{uom}.0"


def meter_points(kernel: Any, globs: tuple[str, ...], only: str | None = None) -> dict[str, list[str]]:
    """``{meter (source) name: [point names]}`` for sources matching ``globs``."""
    database = kernel.points
    meters: dict[str, list[str]] = {}
    for number, name in enumerate(database.names):
        owner = database.owner(number)
        if only is not None and owner != only:
            continue
        if any(fnmatch.fnmatchcase(owner, g) for g in globs):
            meters.setdefault(owner, []).append(str(name))
    return meters


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def to_xml(document: dict[str, Any]) -> bytes:
    """The JSON form (``{"MeterReadings": {"MeterReading": [...]}}``) as IEC 61968-9 XML."""
    ET.register_namespace("m", NAMESPACE)

    def q(tag: str) -> str:
        return f"{{{NAMESPACE}}}{tag}"

    root = ET.Element(q("MeterReadings"))
    for reading in document["MeterReadings"]["MeterReading"]:
        mr = ET.SubElement(root, q("MeterReading"))
        interval = ET.SubElement(mr, q("valuesInterval"))
        ET.SubElement(interval, q("end")).text = reading["valuesInterval"]["end"]
        ET.SubElement(interval, q("start")).text = reading["valuesInterval"]["start"]
        meter = ET.SubElement(mr, q("Meter"))
        ET.SubElement(meter, q("mRID")).text = reading["Meter"]["mRID"]
        names = ET.SubElement(meter, q("Names"))
        ET.SubElement(names, q("name")).text = reading["Meter"]["name"]
        for r in reading["Readings"]:
            if r["ReadingType"] is None or r["value"] is None:
                continue
            element = ET.SubElement(mr, q("Readings"))
            ET.SubElement(element, q("timeStamp")).text = r["timeStamp"]
            ET.SubElement(element, q("value")).text = repr(float(r["value"]))
            quality = ET.SubElement(element, q("ReadingQualities"))
            ET.SubElement(quality, q("ReadingQualityType"), ref=r["quality"])
            ET.SubElement(element, q("ReadingType"), ref=r["ReadingType"])
            names = ET.SubElement(element, q("Names"))
            ET.SubElement(names, q("name")).text = r["point"]
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def quality_code(bits: int) -> str:
    """ReadingQualityType code (Annex D: system.category.subCategory): 1.0.0 valid, 1.5.257 suspect (validation failed)."""
    return "1.0.0" if int(bits) == 0 else "1.5.257"


def reading(point: str, unit: str, t: float, value: float, bits: int) -> dict[str, Any]:
    return {"point": point, "unit": unit, "ReadingType": reading_type(unit), "timeStamp": iso(t),
            "value": float(value) if math.isfinite(value) else None, "quality": quality_code(bits)}
