"""Round trips: read -> write -> read gives the same objects, attribute values and power flow."""

from __future__ import annotations

import importlib.util

import pytest
from cim_models import assert_same_model, build_full_model

from dms_cim import read_cim, write_cim
from dms_kernel.model import elements as el


def test_full_model_covers_every_element_class(full_model):
    concrete = {cls for cls in vars(el).values() if isinstance(cls, type) and issubclass(cls, el.IdentifiedObject)}
    abstract = {el.IdentifiedObject, el.ConductingEquipment, el.PowerElectronicsUnit, el.Measurement, el.MeasurementValue}
    present = {type(obj) for obj in full_model}
    assert concrete - abstract - present == set()


@pytest.mark.parametrize("profile, suffix", [("cim100", ".xml"), ("cgmes", ".zip"), ("cgmes", ".xml")])
def test_round_trip_every_class(tmp_path, full_model, profile, suffix):
    path = write_cim(full_model, tmp_path / f"model{suffix}", profile=profile)
    copy = read_cim(path)
    assert copy.unknown_classes == {}
    assert_same_model(full_model, copy)
    # and a second generation is identical too
    again = read_cim(write_cim(copy, tmp_path / f"again{suffix}", profile=profile))
    assert_same_model(copy, again, tol=1e-12)


def test_cgmes_zip_holds_profiles_and_reads_as_file_list(tmp_path, full_model):
    import zipfile

    path = write_cim(full_model, tmp_path / "grid.zip", profile="cgmes")
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        archive.extractall(tmp_path / "x")
    assert names == ["grid_EQ.xml", "grid_SSH.xml", "grid_SV.xml", "grid_TP.xml"]
    # SSH carries the switch states and loads as rdf:about additions to EQ objects
    ssh = (tmp_path / "x" / "grid_SSH.xml").read_text()
    assert 'rdf:about="#_brk"' in ssh and "Switch.open" in ssh and "EnergyConsumer.p>" in ssh
    eq = (tmp_path / "x" / "grid_EQ.xml").read_text()
    assert "Switch.open" not in eq and "EnergyConsumer.p>" not in eq
    copy = read_cim([tmp_path / "x" / name for name in names])
    assert_same_model(full_model, copy)


def test_cgmes_units_and_signs(tmp_path, full_model):
    from lxml import etree

    path = write_cim(full_model, tmp_path / "grid.xml", profile="cgmes")
    root = etree.parse(str(path)).getroot()
    ns = {"cim": "http://iec.ch/TC57/2013/CIM-schema-cim16#", "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"}
    assert root.xpath("//cim:EnergyConsumer[@rdf:ID='_ld1']/cim:EnergyConsumer.p/text()", namespaces=ns) == ["0.3"]
    # CGMES uses the load sign convention for machines: a generator produces negative p
    assert root.xpath("//cim:SynchronousMachine[@rdf:ID='_gen']/cim:RotatingMachine.p/text()", namespaces=ns) == ["-1.5"]
    assert root.xpath("//cim:ACLineSegment[@rdf:ID='_l1']/cim:Conductor.length/text()", namespaces=ns) == ["2.5"]
    cim100 = etree.parse(str(write_cim(full_model, tmp_path / "grid100.xml"))).getroot()
    ns["cim"] = "http://iec.ch/TC57/CIM100#"
    assert cim100.xpath("//cim:EnergyConsumer[@rdf:about='#ld1']/cim:EnergyConsumer.p/text()", namespaces=ns) == ["300000"]
    assert cim100.xpath("//cim:SynchronousMachine[@rdf:about='#gen']/cim:RotatingMachine.p/text()", namespaces=ns) == ["1500000"]
    assert cim100.xpath("//cim:ACLineSegment[@rdf:about='#l1']/cim:Conductor.length/text()", namespaces=ns) == ["2500"]


def _balanced_model():
    """The full model without the elements a balanced solver cannot take (single-phase parts)."""
    model = build_full_model()
    drop = {"reg", "ct", "l3", "ld2", "ld4", "cap2", "m_tap"}
    for obj in list(model):
        owner = getattr(obj, "conducting_equipment", None) or getattr(obj, "power_transformer", None)
        owner = owner or getattr(obj, "line", None) or getattr(obj, "consumer", None) or getattr(obj, "shunt_compensator", None)
        if obj.mrid in drop or owner in drop:
            del model.objects[obj.mrid]
    for changer in model.of_type(el.RatioTapChanger):
        if changer.transformer_end not in model.objects:
            del model.objects[changer.mrid]
    model.invalidate()
    model.validate()
    return model


@pytest.mark.skipif(importlib.util.find_spec("dms_pandapower") is None, reason="dms_pandapower (helper B's plugin) is not installed")
@pytest.mark.parametrize("profile, suffix", [("cim100", ".xml"), ("cgmes", ".zip")])
def test_round_trip_same_power_flow(tmp_path, profile, suffix):
    from dms_pandapower.convert import to_pandapower
    import pandapower as pp

    original = _balanced_model()
    copy = read_cim(write_cim(original, tmp_path / f"m{suffix}", profile=profile))
    results = []
    for model in (original, copy):
        converted = to_pandapower(model)
        pp.runpp(converted.net, calculate_voltage_angles=True, tolerance_mva=1e-10)
        results.append(converted.net.res_bus.sort_index())
    assert len(results[0]) > 5
    assert (results[0].vm_pu - results[1].vm_pu).abs().max() < 1e-9
    assert (results[0].va_degree - results[1].va_degree).abs().max() < 1e-7


@pytest.mark.parametrize("profile, suffix", [("cim100", ".xml"), ("cgmes", ".zip")])
def test_remote_source_addresses_round_trip(tmp_path, full_model, profile, suffix):
    """RemoteUnit/RemoteSource protocol addresses survive import -> export -> import, as point maps."""
    from dms_hookspecs import PointKind
    from dms_hookspecs.pointmap import PointMapEntry
    from dms_kernel.model.addresses import connections, point_map_from_model

    expected = [PointMapEntry("F1.P", "1:1001", PointKind.ANALOG, 1.0), PointMapEntry("CB1 pos", "1:2001", PointKind.DOUBLE, 1.0)]
    assert point_map_from_model(full_model, "RTU1") == expected
    copy = read_cim(write_cim(full_model, tmp_path / f"model{suffix}", profile=profile))
    again = read_cim(write_cim(copy, tmp_path / f"again{suffix}", profile=profile))
    for model in (copy, again):
        assert connections(model) == ["RTU1"]
        assert point_map_from_model(model, "RTU1") == expected
        assert point_map_from_model(model, "ru1") == expected  # the mRID names the connection too
        assert model.get("rs_p").remote_unit == "ru1" and model.get("ru1").remote_unit_type == "RTU"
    assert point_map_from_model(again, "RTU9") == []
