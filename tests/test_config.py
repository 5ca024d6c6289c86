"""Deployment file validation: every error names file, table and key."""

from __future__ import annotations

import pytest

import plugins_for_tests as p
from dms_hookspecs import REQUIRED, PointSpec, Setting, SettingsSchema, hookimpl
from dms_kernel import ConfigError, load_deployment
from subprocess_helpers import REPO, run_leitstand


def write(tmp_path, text):
    path = tmp_path / "deployment.toml"
    path.write_text(text)
    return path


def test_example_deployment_is_valid():
    deployment = load_deployment(REPO / "examples/minimal/deployment.toml")
    assert deployment.name == "Minimal demo"
    assert [s.name for s in deployment.sources] == ["rtu1", "rtu2"]


@pytest.mark.parametrize(
    ("text", "table", "key", "problem"),
    [
        ('[deployment]\nname = "x"\ncolour = "red"\n', "deployment", "colour", "unknown key"),
        ("[deployment]\nname = 5\n", "deployment", "name", "expected string, got int 5"),
        ("[deployment]\n", "deployment", "name", "missing required key"),
        ('[deployment]\nname = "x"\n[[sources]]\nname = "a"\n', "sources[0]", "type", "missing required key"),
        ('[deployment]\nname = "x"\n[[jobs]]\nstudy = "pf"\nperiod_s = 0\n', "jobs[0]", "period_s", "must be positive"),
        (
            '[deployment]\nname = "x"\n[[sinks]]\nname = "a"\ntype = "t"\n[[sinks]]\nname = "a"\ntype = "t"\n',
            "sinks[1]",
            "name",
            "duplicate sink name 'a'",
        ),
        ('[deployment]\nname = "x"\n[plugins]\ndisable = [1]\n', "plugins", "disable", "array of plugin names"),
    ],
)
def test_structure_errors(tmp_path, text, table, key, problem):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_deployment(path)
    error = info.value
    assert (error.file, error.table, error.key) == (str(path), table, key)
    assert problem in error.problem
    assert str(path) in str(error) and f"[{table}]" in str(error) and repr(key) in str(error)


def test_toml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, '[deployment]\nname = "x\n')
    with pytest.raises(ConfigError, match=r"invalid TOML: .*line 2"):
        load_deployment(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_deployment(tmp_path / "nope.toml")


async def test_instance_settings_validated_against_type_schema(make_kernel):
    kernel = make_kernel(p.test_types, deployment=p.deployment(sources="settings = { points = 2.5 }"))
    with pytest.raises(ConfigError) as info:
        await kernel.prepare()
    assert info.value.table == "sources[0].settings"
    assert info.value.key == "points"
    assert "expected integer, got float 2.5" in info.value.problem


async def test_unknown_instance_setting(make_kernel):
    kernel = make_kernel(p.test_types, deployment=p.deployment(sinks="settings = { delay = 1 }"))
    with pytest.raises(ConfigError, match=r"\[sinks\[0\].settings\] key 'delay': unknown key \(allowed: delay_s\)"):
        await kernel.prepare()


async def test_unknown_type_lists_registered_types(make_kernel):
    kernel = make_kernel(p.test_types, deployment=p.deployment().replace('type = "manual"', 'type = "iec104"'))
    with pytest.raises(ConfigError, match=r"key 'type': unknown source type 'iec104' \(registered: manual\)"):
        await kernel.prepare()


async def test_unknown_study(make_kernel):
    text = p.deployment() + '[[jobs]]\nstudy = "power_flow"\nperiod_s = 1\n'
    kernel = make_kernel(p.test_types, p.default_solver, deployment=text)
    with pytest.raises(ConfigError, match=r"no loaded plugin provides study 'power_flow' \(provided: mean_value\)"):
        await kernel.prepare()


class with_settings:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_settings_schema():
        return SettingsSchema((Setting("api_key", str, REQUIRED), Setting("retries", int, 3)))


async def test_plugin_settings_validated_and_defaults_filled(make_kernel):
    kernel = make_kernel(("vendor", with_settings), deployment='[deployment]\nname = "t"\n[settings.vendor]\napi_key = "k"\n')
    await kernel.prepare()
    assert kernel.settings_for("vendor") == {"api_key": "k", "retries": 3}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ("", r"\[settings.vendor\] key 'api_key': missing required key"),
        ('api_key = "k"\nretry = 1', r"key 'retry': unknown key \(allowed: api_key, retries\)"),
        ('api_key = "k"\nretries = "3"', r"key 'retries': expected integer, got str '3'"),
    ],
)
async def test_plugin_settings_errors(make_kernel, settings, message):
    kernel = make_kernel(("vendor", with_settings), deployment=f'[deployment]\nname = "t"\n[settings.vendor]\n{settings}\n')
    with pytest.raises(ConfigError, match=message):
        await kernel.prepare()


async def test_settings_for_unknown_plugin(make_kernel):
    kernel = make_kernel(deployment='[deployment]\nname = "t"\n[settings.ghost]\nx = 1\n')
    with pytest.raises(ConfigError, match="no loaded plugin named 'ghost'"):
        await kernel.prepare()


class FixedNames(p.ManualSource):
    def points(self):
        return [PointSpec("S1/U")]


class fixed_names:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_source_types(registry):
        registry.add("fixed", FixedNames)


async def test_duplicate_point_names_both_sources(make_kernel):
    text = '[deployment]\nname = "t"\n[[sources]]\nname = "a"\ntype = "fixed"\n[[sources]]\nname = "b"\ntype = "fixed"\n'
    kernel = make_kernel(fixed_names, deployment=text)
    with pytest.raises(ConfigError, match="point 'S1/U' is declared by both 'a' and 'b'"):
        await kernel.prepare()


def test_cli_check_reports_error_without_traceback(tmp_path):
    path = write(tmp_path, '[deployment]\nname = "x"\n[[sources]]\nname = "rtu1"\ntype = "random_walk"\nsettings = { points = "ten" }\n')
    result = run_leitstand(["check", str(path)])
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}: [sources[0].settings] key 'points': expected integer, got str 'ten'" in result.stderr


def test_cli_check_ok():
    result = run_leitstand(["check", "examples/minimal/deployment.toml"])
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "32 points" in result.stdout


async def test_model_nobody_can_load(make_kernel):
    kernel = make_kernel(deployment='[deployment]\nname = "t"\nmodel = "grid.xml"\n')
    with pytest.raises(ConfigError, match=r"\[deployment\] key 'model': no loaded plugin can load model 'grid.xml'"):
        await kernel.prepare()


async def test_model_loaded_through_hook_relative_to_deployment(make_kernel, tmp_path):
    class loader:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_load_model(location, base_dir):
            path = base_dir / location
            return {"loaded": str(path)} if path.suffix == ".xml" else None

    kernel = make_kernel(("loader", loader), deployment='[deployment]\nname = "t"\nmodel = "grid.xml"\n')
    await kernel.prepare()
    assert kernel.model == {"loaded": str(tmp_path / "grid.xml")}
