"""The plugin API: value types and the documentation of every hook."""

from __future__ import annotations

import inspect
import itertools

import attrs
import pytest

import dms_hookspecs
from dms_hookspecs import (
    GOOD,
    Command,
    Detail,
    Measurement,
    PointId,
    PointSpec,
    Quality,
    QualitySource,
    Validity,
)


def test_quality_bits_round_trip_for_every_combination():
    details = [flag for flag in Detail if flag]
    assert len(details) == 8
    seen = set()
    for validity in (Validity.GOOD, Validity.INVALID, Validity.QUESTIONABLE):
        for count in range(len(details) + 1):
            for flags in itertools.combinations(details, count):
                detail = Detail.NONE
                for flag in flags:
                    detail |= flag
                for source, test, blocked in itertools.product(QualitySource, (False, True), (False, True)):
                    quality = Quality(validity, detail, source, test, blocked)
                    bits = quality.to_bits()
                    assert 0 <= bits < 2**13
                    assert Quality.from_bits(bits) == quality
                    seen.add(bits)
    assert len(seen) == 3 * 2**8 * 2**3  # every combination packs to distinct bits


def test_quality_follows_iec_61850_8_1_bit_positions():
    assert Quality(Validity.INVALID).to_bits() == 0b01
    assert Quality(Validity.QUESTIONABLE).to_bits() == 0b11
    assert Quality(detail=Detail.OVERFLOW).to_bits() == 1 << 2
    assert Quality(detail=Detail.INACCURATE).to_bits() == 1 << 9
    assert Quality(source=QualitySource.SUBSTITUTED).to_bits() == 1 << 10
    assert Quality(test=True).to_bits() == 1 << 11
    assert Quality(operator_blocked=True).to_bits() == 1 << 12
    assert str(Quality(Validity.QUESTIONABLE, Detail.OLD_DATA | Detail.FAILURE)) == "questionable|failure|old_data"
    assert GOOD.is_good and not Quality(detail=Detail.INACCURATE).is_good


@pytest.mark.parametrize(
    "value",
    [GOOD, PointId("a"), PointSpec("a"), Measurement(PointId("a"), 1.0), Command("a", 1.0)],
)
def test_values_are_frozen(value):
    field = attrs.fields(type(value))[0].name
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(value, field, None)


def test_values_validate():
    with pytest.raises(ValueError):
        PointId("")
    with pytest.raises(ValueError):
        PointSpec("a", deadband=-1)
    with pytest.raises(ValueError):
        Command("a", 1, timeout_s=0)
    assert Command("a", 1).target == PointId("a")
    assert Command("a", 1).id != Command("a", 1).id


def all_hookspecs():
    for module in dms_hookspecs.HOOK_MODULES:
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if name.startswith("dms_"):
                yield name, function


def test_hook_groups_are_present():
    names = {name for name, _ in all_hookspecs()}
    assert {
        "dms_settings_schema", "dms_configure", "dms_startup", "dms_shutdown",
        "dms_add_source_types", "dms_studies", "dms_run_study",
        "dms_propose_actions", "dms_authorize_command", "dms_veto_command", "dms_add_sink_types",
        "dms_add_notifier_types",
    } <= names


@pytest.mark.parametrize(("name", "function"), list(all_hookspecs()))
def test_every_hook_is_documented_like_an_api_reference(name, function):
    doc = inspect.getdoc(function)
    assert doc, f"{name} has no docstring"
    for parameter in inspect.signature(function).parameters:
        assert f":param {parameter}:" in doc, f"{name}: parameter {parameter!r} undocumented"
    options = getattr(function, "dms_spec")
    if options.get("firstresult"):
        assert "firstresult" in doc
    if options.get("historic"):
        assert "Historic" in doc
    if inspect.signature(function).return_annotation not in ("None", None):
        assert ":return:" in doc, f"{name}: return value undocumented"


def test_api_package_depends_on_pluggy_and_attrs_only():
    from importlib.metadata import requires

    names = {requirement.split(">")[0].split("=")[0].split("<")[0].strip() for requirement in requires("dms-hookspecs")}
    assert names == {"pluggy", "attrs"}
