"""IEC 61850-6 SCL (ICD/CID) fragments for PTOC/PIOC settings, with setting groups.

Export writes one ``LDevice`` per device (``inst`` from the device's ``ied`` logical device name,
``desc="device=<mRID>"``), an ``LN0`` with ``SettingControl numOfSGs/actSG``, and per PTOC/PIOC an
``LN`` whose ``DOI``/``DAI`` carry one ``Val sGroup="n"`` per setting group:

* PTOC: ``StrVal.setMag.f`` (A primary), ``TmMult.setMag.f``, ``OpDlTmms.setVal`` (ms),
  ``TmACrv.setCharact`` (IEC 61850-7-3 curve enumeration);
* PIOC: ``StrVal.setMag.f``, ``OpDlTmms.setVal``.

Import reads the same structure back (other LNs and attributes are ignored).
"""

from __future__ import annotations

from collections.abc import Mapping

from lxml import etree

from .settings import DeviceSettings, Instantaneous, Overcurrent

__all__ = ["SCL_NS", "CHARACTERISTICS", "export_scl", "import_scl", "SclError"]

SCL_NS = "http://www.iec.ch/61850/2003/SCL"
_N = f"{{{SCL_NS}}}"

#: curve name -> IEC 61850-7-3 ``setCharact`` (CURVE CDC) enumeration
CHARACTERISTICS = {
    "ieee_extremely_inverse": 1,
    "ieee_very_inverse": 2,
    "ieee_moderately_inverse": 4,
    "iec_standard_inverse": 9,
    "iec_very_inverse": 10,
    "iec_extremely_inverse": 12,
    "iec_long_time_inverse": 14,
    "definite_time": 15,
}
_CURVE_OF = {code: name for name, code in CHARACTERISTICS.items()}


class SclError(ValueError):
    """An SCL fragment this module cannot read."""


def _sub(parent: etree._Element, tag: str, **attributes: str) -> etree._Element:
    return etree.SubElement(parent, _N + tag, {k: str(v) for k, v in attributes.items()})


def _values(parent: etree._Element, path: list[str], per_group: Mapping[int, float | int]) -> None:
    element = parent
    for depth, name in enumerate(path):
        tag = "DOI" if depth == 0 else ("DAI" if depth == len(path) - 1 else "SDI")
        found = element.find(f"{_N}{tag}[@name='{name}']")
        element = found if found is not None else _sub(element, tag, name=name)
    for group, value in sorted(per_group.items()):
        val = _sub(element, "Val", sGroup=str(group))
        val.text = f"{value:g}" if isinstance(value, float) else str(value)


def export_scl(groups: Mapping[str, Mapping[int, DeviceSettings]], active: Mapping[str, int] | None = None,
               *, ied: str = "IED1", num_groups: int | None = None) -> bytes:
    """An SCL document holding the PTOC/PIOC settings of every device and group.

    :param groups: device mRID -> {group: settings}.
    :param active: device mRID -> active group (default 1).
    :param ied: the IED name; a device's ``ied`` logical device name that starts with it gives the
        LDevice ``inst`` (``IED1LD0`` -> ``LD0``).
    """
    active = active or {}
    root = etree.Element(_N + "SCL", nsmap={None: SCL_NS}, version="2007", revision="B")
    _sub(root, "Header", id="leitstand-protection", toolID="Leitstand dms-protection")
    server = _sub(_sub(_sub(root, "IED", name=ied), "AccessPoint", name="AP1"), "Server")
    _sub(server, "Authentication")
    for number, (device, by_group) in enumerate(sorted(groups.items()), start=1):
        if not by_group:
            continue
        first = by_group[min(by_group)]
        ld = first.ied or f"{ied}LD{number}"
        inst = ld[len(ied):] if ld.startswith(ied) and len(ld) > len(ied) else ld
        ldevice = _sub(server, "LDevice", inst=inst, desc=f"device={device}")
        ln0 = _sub(ldevice, "LN0", lnClass="LLN0", inst="", lnType="LLN0")
        _sub(ln0, "SettingControl", numOfSGs=str(num_groups or max(by_group)), actSG=str(active.get(device, 1)))
        lns: dict[tuple[str, str], etree._Element] = {}

        def ln(name: str) -> etree._Element:
            cls, inst_ = name[:4], name[4:] or "1"
            if (cls, inst_) not in lns:
                lns[(cls, inst_)] = _sub(ldevice, "LN", lnClass=cls, inst=inst_, lnType=cls, prefix="")
            return lns[(cls, inst_)]

        names = {f.name for s in by_group.values() for f in s.overcurrent} | {f.name for s in by_group.values() for f in s.instantaneous}
        for name in sorted(names):
            element = ln(name)
            functions = {g: next((f for f in (*s.overcurrent, *s.instantaneous) if f.name == name), None) for g, s in by_group.items()}
            functions = {g: f for g, f in functions.items() if f is not None}
            _values(element, ["StrVal", "setMag", "f"], {g: float(f.pickup_a) for g, f in functions.items()})
            if name.startswith("PTOC"):
                _values(element, ["TmMult", "setMag", "f"], {g: float(f.multiplier) for g, f in functions.items()})
                _values(element, ["OpDlTmms", "setVal"], {g: round(f.definite_s * 1000) for g, f in functions.items()})
                _values(element, ["TmACrv", "setCharact"], {g: CHARACTERISTICS[f.curve] for g, f in functions.items()})
            else:
                _values(element, ["OpDlTmms", "setVal"], {g: round(f.delay_s * 1000) for g, f in functions.items()})
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _read(ln: etree._Element, path: list[str]) -> dict[int, str]:
    element = ln
    for depth, name in enumerate(path):
        tag = "DOI" if depth == 0 else ("DAI" if depth == len(path) - 1 else "SDI")
        element = element.find(f"{_N}{tag}[@name='{name}']")
        if element is None:
            return {}
    return {int(v.get("sGroup", "1")): (v.text or "").strip() for v in element.findall(_N + "Val")}


def import_scl(data: bytes | str) -> tuple[dict[str, dict[int, DeviceSettings]], dict[str, int]]:
    """PTOC/PIOC settings of every LDevice: ``({device: {group: settings}}, {device: active group})``.

    The device is the mRID in the LDevice's ``desc="device=…"`` (else the LD name); its ``ied`` is
    the IED name + LDevice ``inst``.

    :raises SclError: not an SCL document, or a value that is not a number.
    """
    try:
        root = etree.fromstring(data.encode() if isinstance(data, str) else data)
    except etree.XMLSyntaxError as exc:
        raise SclError(f"not an XML document: {exc}") from exc
    if root.tag != _N + "SCL":
        raise SclError(f"not an SCL document (root element {root.tag!r})")
    result: dict[str, dict[int, DeviceSettings]] = {}
    active: dict[str, int] = {}
    for ied in root.iter(_N + "IED"):
        ied_name = ied.get("name", "")
        for ldevice in ied.iter(_N + "LDevice"):
            ld = ied_name + ldevice.get("inst", "")
            desc = ldevice.get("desc", "")
            device = desc[len("device="):] if desc.startswith("device=") else ld
            control = ldevice.find(f"{_N}LN0/{_N}SettingControl")
            if control is not None:
                active[device] = int(control.get("actSG", "1"))
            by_group: dict[int, dict[str, list]] = {}
            try:
                for ln in ldevice.findall(_N + "LN"):
                    cls, inst = ln.get("lnClass"), ln.get("inst", "1")
                    name = f"{cls}{inst}"
                    pickups = _read(ln, ["StrVal", "setMag", "f"])
                    delays = _read(ln, ["OpDlTmms", "setVal"])
                    if cls == "PTOC":
                        mults = _read(ln, ["TmMult", "setMag", "f"])
                        curves = _read(ln, ["TmACrv", "setCharact"])
                        for group, pickup in pickups.items():
                            curve = _CURVE_OF.get(int(curves.get(group, "15")), "definite_time")
                            function = Overcurrent(float(pickup), curve, float(mults.get(group, "1")), int(delays.get(group, "0")) / 1000, name)
                            by_group.setdefault(group, {"overcurrent": [], "instantaneous": []})["overcurrent"].append(function)
                    elif cls == "PIOC":
                        for group, pickup in pickups.items():
                            function = Instantaneous(float(pickup), int(delays.get(group, "0")) / 1000, name)
                            by_group.setdefault(group, {"overcurrent": [], "instantaneous": []})["instantaneous"].append(function)
            except ValueError as exc:
                raise SclError(f"LDevice {ld!r}: {exc}") from exc
            if by_group:
                result[device] = {g: DeviceSettings(device, "relay", ied=ld, **functions) for g, functions in sorted(by_group.items())}
    return result, active
