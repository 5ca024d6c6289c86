"""Unknown classes, dangling references, broken files, and the plugin hooks."""

from __future__ import annotations

import logging
import zipfile

import pytest

from dms_cim import CimError, plugin, read_cim, write_cim
from dms_kernel.model import ModelError
from dms_kernel.model import elements as el

HEADER = '<?xml version="1.0" encoding="utf-8"?>\n<rdf:RDF xmlns:cim="{ns}" xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">\n'
CIM16 = "http://iec.ch/TC57/2013/CIM-schema-cim16#"


def _file(tmp_path, body, ns=CIM16, name="m.xml"):
    path = tmp_path / name
    path.write_text(HEADER.format(ns=ns) + body + "</rdf:RDF>\n")
    return path


NODE_AND_LOAD = """
<cim:ConnectivityNode rdf:ID="_n1"><cim:IdentifiedObject.name>N1</cim:IdentifiedObject.name></cim:ConnectivityNode>
<cim:EnergyConsumer rdf:ID="_ld"><cim:IdentifiedObject.name>LD</cim:IdentifiedObject.name></cim:EnergyConsumer>
<cim:Terminal rdf:ID="_t1">
  <cim:Terminal.ConductingEquipment rdf:resource="#_ld"/>
  <cim:Terminal.ConnectivityNode rdf:resource="#{node}"/>
  <cim:ACDCTerminal.sequenceNumber>1</cim:ACDCTerminal.sequenceNumber>
</cim:Terminal>
"""


def test_unknown_classes_are_counted_and_skipped(tmp_path, caplog):
    body = NODE_AND_LOAD.format(node="_n1") + """
<cim:SeriesCompensator rdf:ID="_sc1"><cim:IdentifiedObject.name>SC</cim:IdentifiedObject.name></cim:SeriesCompensator>
<cim:Terminal rdf:ID="_sc1_t"><cim:Terminal.ConductingEquipment rdf:resource="#_sc1"/>
  <cim:Terminal.ConnectivityNode rdf:resource="#_n1"/></cim:Terminal>
<cim:SeriesCompensator rdf:ID="_sc2"/>
<cim:Bay rdf:ID="_bay"><cim:Bay.VoltageLevel rdf:resource="#_vl"/></cim:Bay>
<cim:VoltageLevel rdf:ID="_vl"><cim:IdentifiedObject.name>VL</cim:IdentifiedObject.name></cim:VoltageLevel>
<cim:Breaker rdf:ID="_br"><cim:Equipment.EquipmentContainer rdf:resource="#_bay"/>
  <cim:Switch.normalOpen>true</cim:Switch.normalOpen></cim:Breaker>
<cim:Breaker rdf:about="#_br"><cim:Switch.open>true</cim:Switch.open></cim:Breaker>
"""
    with caplog.at_level(logging.INFO, logger="dms_cim"):
        model = read_cim(_file(tmp_path, body))
    assert model.unknown_classes == {"SeriesCompensator": 2, "Bay": 1}
    assert "_sc1" not in model and "_sc1_t" not in model  # its terminal went with it
    assert model.get("_br", el.Breaker).container == "_vl"  # Bay -> its VoltageLevel
    assert model.get("_br", el.Breaker).open is True
    assert model.get("_ld", el.EnergyConsumer).terminals == ["_t1"]
    summary = [r.getMessage() for r in caplog.records if "unknown classes" in r.getMessage()]
    assert len(summary) == 1 and "SeriesCompensator 2" in summary[0] and "Bay 1" in summary[0]


def test_dangling_reference_names_mrid_and_referrer(tmp_path):
    path = _file(tmp_path, NODE_AND_LOAD.format(node="_nowhere"))
    with pytest.raises(ModelError) as caught:
        read_cim(path)
    message = str(caught.value)
    assert "'_nowhere'" in message and "Terminal('_t1'" in message and "connectivity_node" in message


def test_references_to_unmodelled_asset_classes_are_not_dangling(tmp_path):
    body = NODE_AND_LOAD.format(node="_n1").replace(
        '<cim:IdentifiedObject.name>LD</cim:IdentifiedObject.name>',
        '<cim:IdentifiedObject.name>LD</cim:IdentifiedObject.name><cim:PowerSystemResource.AssetDatasheet rdf:resource="#_info"/>'
        '<cim:EnergyConsumer.LoadGroup rdf:resource="#_not_in_any_file"/>',
    )
    model = read_cim(_file(tmp_path, body))
    assert model.get("_ld").name == "LD"


def test_garbled_xml_names_the_file(tmp_path):
    path = tmp_path / "broken.xml"
    path.write_text(HEADER.format(ns=CIM16) + "<cim:Terminal rdf:ID='_t'><cim:IdentifiedObject.name>x</cim:Terminal>")
    with pytest.raises(CimError, match=r"broken\.xml: not well-formed XML"):
        read_cim(path)
    other = tmp_path / "other.xml"
    other.write_text("<html><body>no</body></html>")
    with pytest.raises(CimError, match=r"other\.xml: not a CIM RDF/XML file"):
        read_cim(other)
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("m_EQ.xml", HEADER.format(ns=CIM16) + "<cim:Terminal")
    with pytest.raises(CimError, match=r"bad\.zip:m_EQ\.xml: not well-formed XML"):
        read_cim(archive)
    with pytest.raises(CimError, match="missing.xml"):
        read_cim(tmp_path / "missing.xml")


def test_bad_value_names_file_and_object(tmp_path):
    body = NODE_AND_LOAD.format(node="_n1").replace(
        "<cim:IdentifiedObject.name>LD</cim:IdentifiedObject.name>", "<cim:EnergyConsumer.p>lots</cim:EnergyConsumer.p>")
    with pytest.raises(CimError, match=r"m\.xml: EnergyConsumer '_ld': EnergyConsumer\.p has a bad value 'lots'"):
        read_cim(_file(tmp_path, body))


def test_id_forms_resolve_to_one_object(tmp_path):
    """rdf:ID="_x", rdf:about="#_x", urn:uuid references and IdentifiedObject.mRID agree."""
    uid = "5f2e8b1c-0a4d-4c7e-9d8a-1b2c3d4e5f60"
    body = f"""
<cim:ConnectivityNode rdf:about="urn:uuid:{uid}"><cim:IdentifiedObject.mRID>{uid}</cim:IdentifiedObject.mRID></cim:ConnectivityNode>
<cim:EnergyConsumer rdf:ID="_ld"><cim:IdentifiedObject.mRID>ld-mrid</cim:IdentifiedObject.mRID></cim:EnergyConsumer>
<cim:EnergyConsumer rdf:about="#_ld"><cim:EnergyConsumer.p>2.5</cim:EnergyConsumer.p></cim:EnergyConsumer>
<cim:Terminal rdf:ID="_t1"><cim:Terminal.ConductingEquipment rdf:resource="#_ld"/>
  <cim:Terminal.ConnectivityNode rdf:resource="urn:uuid:{uid}"/></cim:Terminal>
"""
    model = read_cim(_file(tmp_path, body))
    load = model.get("ld-mrid", el.EnergyConsumer)
    assert load.p_mw == 2.5  # CGMES: MW
    assert model.nodes_of(load) == [uid]


def test_plugin_hooks(tmp_path, full_model):
    assert plugin.dms_load_model("grid.xml", tmp_path) is None  # does not exist
    assert plugin.dms_load_model("cigre_mv", tmp_path) is None  # a name, not a file
    assert plugin.dms_export_model(full_model, tmp_path / "x.json", "json") is None
    written = plugin.dms_export_model(full_model, tmp_path / "sub" / "grid.xml", "cim100")
    assert written == tmp_path / "sub" / "grid.xml"
    model = plugin.dms_load_model("sub/grid.xml", tmp_path)
    assert len(model) == len(full_model)
    plugin.dms_export_model(full_model, tmp_path / "grid.zip", "cgmes")
    assert len(plugin.dms_load_model(str(tmp_path / "grid.zip"), tmp_path / "elsewhere")) == len(full_model)
    with pytest.raises(ValueError, match="unknown CIM profile"):
        write_cim(full_model, tmp_path / "y.xml", profile="cim17")
