"""The example third-party plugin (examples/thirdparty-plugin), installed like a vendor's package.

The distribution is built and installed once per module with pip into a private ``--target``
directory. Every check runs the kernel in a subprocess whose ``PYTHONPATH`` holds only that
directory, so the kernel can know the plugin only through the ``dms.plugins`` entry point
in the installed ``.dist-info`` — never through an import the test did.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from dms_hookspecs import Command, CommandStatus

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "thirdparty-plugin"
EXAMPLE_DEPLOYMENT = EXAMPLE / "deployment.toml"  # the one docs/plugin-guide.md walks through
PROJECT = tomllib.loads((EXAMPLE / "pyproject.toml").read_text(encoding="utf-8"))["project"]
DISTRIBUTION = PROJECT["name"]
VERSION = PROJECT["version"]
PLUGIN = "example_interlock"
MODULE = "leitstand_example_interlock.plugin"
HOOKS = ["dms_settings_schema", "dms_shutdown", "dms_startup", "dms_veto_command"]

# random_walk source "rtu1" with prefix S1/F1/U: analogue points S1/F1/U0..2 and the
# controllable set-points S1/F1/USP0 (blocked below) and S1/F1/USP1.
SOURCES = """
[[sources]]
name = "rtu1"
type = "random_walk"
settings = { points = 3, period_s = 0.1, prefix = "S1/F1/U", nominal = 10.5, unit = "kV", controls = 2, seed = 7 }
"""
INTERLOCK_SETTINGS = """
[settings.example_interlock]
max_setpoint = 11.0
min_setpoint = 9.5
blocked_points = ["S1/F1/USP0"]
"""

# Runs in the subprocess: build the kernel from the deployment file exactly as `leitstand run`
# does (entry points loaded, [plugins] honoured), start it and send commands through it.
COMMAND_SCRIPT = """
import asyncio, json, sys

from dms_hookspecs import Command
from dms_kernel import Kernel, load_deployment

COMMANDS = {
    "above_max": ("S1/F1/USP1", 12.5),
    "within": ("S1/F1/USP1", 10.8),
    "below_min": ("S1/F1/USP1", 9.0),
    "blocked": ("S1/F1/USP0", 10.0),
}

async def main(path):
    kernel = Kernel(load_deployment(path))
    report = {}
    async with kernel:
        report["plugins"] = kernel.host.plugin_names()
        report["distribution"] = kernel.host.distribution_of("example_interlock")
        for label, (target, value) in COMMANDS.items():
            result = await kernel.execute(Command(target, value, originator="operator:test"))
            report[label] = {"status": result.status.value, "step": result.step, "reason": result.reason}
    print(json.dumps(report))

asyncio.run(main(sys.argv[1]))
"""


# -- installation and subprocess helpers --------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example distribution, pip-installed into a private directory (once per module)."""
    root = tmp_path_factory.mktemp("thirdparty")
    # Build from a copy: setuptools builds in-tree (build/, *.egg-info) and must not litter the repository.
    source = root / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = root / "site"
    install = subprocess.run(
        [
            sys.executable, "-m", "pip", "install",
            "--no-deps", "--no-build-isolation", "--no-index", "--disable-pip-version-check", "--quiet",
            "--target", str(target), str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, f"pip install failed:\n{install.stdout}\n{install.stderr}"
    dist_info = target / f"{DISTRIBUTION.replace('-', '_')}-{VERSION}.dist-info"
    assert dist_info.is_dir(), f"no {dist_info.name} in {sorted(p.name for p in target.iterdir())}"
    assert f"{PLUGIN} = {MODULE}" in (dist_info / "entry_points.txt").read_text(encoding="utf-8")
    return target


def _env(site: Path | None, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "LEITSTAND_BLOCK_PLUGINS"}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # cwd is a temporary directory: nothing of the repository is importable from it.
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def _leitstand(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return _run(["-m", "dms_kernel", *args], env, cwd)


def _listed_plugins(env: dict[str, str], cwd: Path) -> dict[str, dict]:
    proc = _leitstand(["plugins", "--json"], env, cwd)
    assert proc.returncode == 0, proc.stderr
    return {entry["name"]: entry for entry in json.loads(proc.stdout)}


def _deployment(tmp_path: Path, body: str, name: str = "deployment.toml") -> Path:
    path = tmp_path / name
    path.write_text(f'[deployment]\nname = "third-party interlock test"\n{textwrap.dedent(body)}', encoding="utf-8")
    return path


def _run_commands(tmp_path: Path, deployment: Path, env: dict[str, str]) -> dict:
    script = tmp_path / "send_commands.py"
    script.write_text(COMMAND_SCRIPT, encoding="utf-8")
    proc = _run([str(script), str(deployment)], env, tmp_path)
    assert proc.returncode == 0, f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- discovery ------------------------------------------------------------------------------


def test_not_discovered_without_the_install(tmp_path: Path) -> None:
    """Control: the plugin is not part of the Leitstand environment (scripts/install skips examples/)."""
    try:
        importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        pytest.skip(f"{DISTRIBUTION} is installed in the test environment itself; the control is meaningless")
    plugins = _listed_plugins(_env(None), tmp_path)
    assert PLUGIN not in plugins
    assert "replay" in plugins  # the first-party plugins are there: the listing itself works


def test_plugins_lists_it_with_distribution_version_and_hooks(site: Path, tmp_path: Path) -> None:
    plugins = _listed_plugins(_env(site), tmp_path)
    assert PLUGIN in plugins, f"not discovered; listed: {sorted(plugins)}"
    info = plugins[PLUGIN]
    assert info["distribution"] == DISTRIBUTION
    assert info["version"] == VERSION
    assert info["module"] == MODULE
    assert info["hooks"] == HOOKS
    # first-party plugins are still discovered alongside it
    assert {"replay", "console"} <= set(plugins)


def test_plugins_human_readable_listing(site: Path, tmp_path: Path) -> None:
    proc = _leitstand(["plugins"], _env(site), tmp_path)
    assert proc.returncode == 0, proc.stderr
    (line,) = [line for line in proc.stdout.splitlines() if line.startswith(PLUGIN)]
    assert f"{DISTRIBUTION} {VERSION}" in line
    assert ", ".join(HOOKS) in line


# -- the hooks, through discovery --------------------------------------------------------------


@pytest.mark.parametrize("shipped", [False, True], ids=["written", "example-deployment"])
def test_veto_through_entry_point(site: Path, tmp_path: Path, shipped: bool) -> None:
    deployment = EXAMPLE_DEPLOYMENT if shipped else _deployment(tmp_path, INTERLOCK_SETTINGS + SOURCES)
    report = _run_commands(tmp_path, deployment, _env(site))

    assert PLUGIN in report["plugins"]
    assert report["distribution"] == f"{DISTRIBUTION} {VERSION}"

    above = report["above_max"]
    assert above["status"] == "vetoed"
    assert above["step"] == "interlock"
    assert above["reason"].startswith(f"{PLUGIN}: ")  # the command path names the vetoing plugin
    assert "12.5 kV" in above["reason"] and "above the limit 11 kV" in above["reason"]
    assert "max_setpoint" in above["reason"]

    below = report["below_min"]
    assert below["status"] == "vetoed"
    assert below["reason"].startswith(f"{PLUGIN}: ") and "below the limit 9.5 kV" in below["reason"]

    blocked = report["blocked"]
    assert blocked["status"] == "vetoed"
    assert blocked["reason"].startswith(f"{PLUGIN}: ") and "'S1/F1/USP0' is blocked" in blocked["reason"]

    # the interlock lets a safe set-point through to the owning source
    within = report["within"]
    assert within == {"status": "succeeded", "step": "operate", "reason": "set-point S1/F1/USP1 = 10.8"}


def test_cli_run_of_example_deployment_logs_startup_and_shutdown(site: Path, tmp_path: Path) -> None:
    proc = _leitstand(["run", str(EXAMPLE_DEPLOYMENT), "--duration", "1"], _env(site), tmp_path)
    assert proc.returncode == 0, proc.stderr
    (loaded,) = [line for line in proc.stderr.splitlines() if "plugins (" in line]
    assert PLUGIN in loaded
    assert "leitstand.example_interlock: interlock armed for 'Interlock demo'" in proc.stderr
    assert "set-points in [9.5, 11], 1 blocked point(s): S1/F1/USP0" in proc.stderr
    assert "interlock disarmed" in proc.stderr
    assert proc.stderr.index("interlock armed") < proc.stderr.index("stopping") < proc.stderr.index("interlock disarmed")


def test_settings_schema_is_enforced(site: Path, tmp_path: Path) -> None:
    """The kernel validates [settings.example_interlock] against the discovered plugin's schema."""
    env = _env(site)
    wrong_type = _deployment(tmp_path, '[settings.example_interlock]\nmax_setpoint = "high"\n' + SOURCES, "type.toml")
    proc = _leitstand(["check", str(wrong_type)], env, tmp_path)
    assert proc.returncode == 2
    assert "[settings.example_interlock] key 'max_setpoint': expected number, got str 'high'" in proc.stderr

    unknown = _deployment(tmp_path, "[settings.example_interlock]\nmax_setpiont = 11.0\n" + SOURCES, "unknown.toml")
    proc = _leitstand(["check", str(unknown)], env, tmp_path)
    assert proc.returncode == 2
    assert "key 'max_setpiont': unknown key (allowed: blocked_points, max_setpoint, min_setpoint)" in proc.stderr

    valid = _deployment(tmp_path, INTERLOCK_SETTINGS + SOURCES, "valid.toml")
    proc = _leitstand(["check", str(valid)], env, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout


def test_startup_error_names_plugin_and_distribution(site: Path, tmp_path: Path) -> None:
    deployment = _deployment(tmp_path, "[settings.example_interlock]\nmax_setpoint = 10.0\nmin_setpoint = 12.0\n" + SOURCES)
    proc = _leitstand(["run", str(deployment), "--duration", "1"], _env(site), tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert (
        f"leitstand: error: plugin '{PLUGIN}' (distribution {DISTRIBUTION} {VERSION}) failed in dms_startup: "
        "ValueError: min_setpoint (12) is above max_setpoint (10)"
    ) in proc.stderr
    assert "ready in" not in proc.stderr


# -- blocking -----------------------------------------------------------------------------------


def test_env_var_blocks_it(site: Path, tmp_path: Path) -> None:
    env = _env(site, LEITSTAND_BLOCK_PLUGINS=f"some_other_plugin, {PLUGIN}")
    plugins = _listed_plugins(env, tmp_path)
    assert PLUGIN not in plugins
    assert {"replay", "console"} <= set(plugins)

    # Without the plugin nothing vetoes: the set-point above its limit reaches the source.
    report = _run_commands(tmp_path, _deployment(tmp_path, SOURCES), env)
    assert PLUGIN not in report["plugins"]
    assert report["above_max"]["status"] == "succeeded"
    assert report["blocked"]["status"] == "succeeded"


@pytest.mark.parametrize(
    "plugins_table",
    [f'[plugins]\ndisable = ["{PLUGIN}"]\n', '[plugins]\nenable = ["replay"]\n'],
    ids=["disable", "enable-others-only"],
)
def test_deployment_plugins_table_blocks_it(site: Path, tmp_path: Path, plugins_table: str) -> None:
    env = _env(site)
    assert PLUGIN in _listed_plugins(env, tmp_path)  # installed and discoverable ...
    report = _run_commands(tmp_path, _deployment(tmp_path, plugins_table + SOURCES), env)
    assert PLUGIN not in report["plugins"]  # ... but not loaded for this deployment
    assert "replay" in report["plugins"]
    assert report["distribution"] is None
    assert report["above_max"]["status"] == "succeeded"
    assert report["blocked"]["status"] == "succeeded"


# -- in process, as the plugin guide shows -----------------------------------------------------


@pytest.fixture
def interlock_plugin(site: Path, monkeypatch: pytest.MonkeyPatch):
    """The installed plugin module, imported for an in-process test (sys.path restored afterwards)."""
    monkeypatch.syspath_prepend(str(site))
    module = importlib.import_module(MODULE)
    assert Path(module.__file__).is_relative_to(site)
    yield module
    for name in [name for name in sys.modules if name.split(".")[0] == MODULE.split(".")[0]]:
        del sys.modules[name]


async def test_in_process_with_make_kernel(make_kernel, hook_recorder, interlock_plugin) -> None:
    import dms_replay.plugin

    kernel = make_kernel(
        ("replay", dms_replay.plugin),
        (PLUGIN, interlock_plugin),  # registered under its entry-point name, as [settings.<name>] expects
        deployment='[deployment]\nname = "in process"\n' + INTERLOCK_SETTINGS + SOURCES,
        recorder=hook_recorder,
    )
    await kernel.prepare()
    # fail safe: prepared but not started, the interlock is not armed and vetoes everything
    early = await kernel.execute(Command("S1/F1/USP1", 10.0, originator="test"))
    assert early.status is CommandStatus.VETOED
    assert "not armed" in early.reason

    async with kernel:
        assert kernel.settings_for(PLUGIN) == {
            "max_setpoint": 11.0,
            "min_setpoint": 9.5,
            "blocked_points": ["S1/F1/USP0"],
        }
        vetoed = await kernel.execute(Command("S1/F1/USP1", 11.5, originator="test"))
        allowed = await kernel.execute(Command("S1/F1/USP1", 11.0, originator="test"))
    assert vetoed.status is CommandStatus.VETOED
    assert vetoed.reason == f"{PLUGIN}: set-point 11.5 kV on 'S1/F1/USP1' is above the limit 11 kV (max_setpoint)"
    assert allowed.ok, allowed.reason

    names = hook_recorder.names()
    assert names.index("dms_settings_schema") < names.index("dms_configure") < names.index("dms_startup")
    vetoes = [index for index, name in enumerate(names) if name == "dms_veto_command"]
    assert vetoes[0] < names.index("dms_startup") < vetoes[1] < vetoes[2] < names.index("dms_shutdown")
    veto_calls = hook_recorder.assert_called("dms_veto_command", times=3)
    assert [call.kwargs["command"].value for call in veto_calls] == [10.0, 11.5, 11.0]
    assert veto_calls[1].kwargs["point"].controllable
    hook_recorder.assert_called("dms_shutdown", times=1)
