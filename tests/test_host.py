"""Plugin loading: discovery through entry points, blocking, and every broken-plugin case."""

from __future__ import annotations

import pytest

from dms_hookspecs import Setting, SettingsSchema, hookimpl
from dms_kernel import PluginError
from dms_kernel.host import BLOCK_ENV, PluginHost
from subprocess_helpers import run_leitstand

GOOD = """
from dms_hookspecs import hookimpl

@hookimpl
def dms_studies():
    return ["good_study"]
"""


def test_entry_point_plugin_is_discovered_with_distribution(fake_distribution):
    fake_distribution("goodplug", GOOD, version="2.3")
    host = PluginHost()
    info = {i.name: i for i in host.plugins()}["goodplug"]
    assert info.distribution == "goodplug"
    assert info.version == "2.3"
    assert info.hooks == ("dms_studies",)


def test_each_host_has_its_own_plugin_manager():
    import plugins_for_tests as p

    first = PluginHost([("types", p.test_types)], load_entry_points=False)
    second = PluginHost(load_entry_points=False)
    assert first.plugin_names() == ["types"]
    assert second.plugin_names() == []


def test_blocked_by_environment(fake_distribution, monkeypatch):
    fake_distribution("goodplug", GOOD)
    monkeypatch.setenv(BLOCK_ENV, "other, goodplug")
    assert "goodplug" not in PluginHost().plugin_names()


def test_blocked_and_enabled_by_argument(fake_distribution):
    fake_distribution("goodplug", GOOD)
    assert "goodplug" not in PluginHost(blocked=["goodplug"]).plugin_names()
    assert "goodplug" not in PluginHost(enabled=["something_else"]).plugin_names()
    assert "goodplug" in PluginHost(enabled=["goodplug"]).plugin_names()


def test_import_error_names_plugin_distribution_and_cause(fake_distribution):
    fake_distribution("brokenimport", "import module_that_does_not_exist\n", version="0.9")
    with pytest.raises(PluginError) as info:
        PluginHost()
    message = str(info.value)
    assert "plugin 'brokenimport'" in message
    assert "distribution brokenimport 0.9" in message
    assert "import" in message
    assert "No module named 'module_that_does_not_exist'" in message


def test_wrong_signature_names_hook_and_argument(fake_distribution):
    fake_distribution(
        "badsig",
        """
        from dms_hookspecs import hookimpl

        @hookimpl
        def dms_startup(kernel, extra_argument):
            pass
        """,
    )
    with pytest.raises(PluginError) as info:
        PluginHost()
    assert info.value.plugin == "badsig"
    assert info.value.hook == "dms_startup"
    assert "extra_argument" in info.value.cause
    assert "distribution badsig 1.0" in str(info.value)


def test_misspelled_hook_is_caught_with_suggestion(fake_distribution):
    fake_distribution("typo", "def dms_startp(kernel):\n    pass\n")
    with pytest.raises(PluginError) as info:
        PluginHost()
    assert info.value.hook == "dms_startp"
    assert "unknown hook" in info.value.cause
    assert "did you mean 'dms_startup'" in info.value.cause


def test_hook_wrappers_are_refused(fake_distribution):
    fake_distribution(
        "wrapper",
        """
        from dms_hookspecs import hookimpl

        @hookimpl(wrapper=True)
        def dms_studies():
            return (yield)
        """,
    )
    with pytest.raises(PluginError, match="hook wrappers are not supported"):
        PluginHost()


async def test_exception_in_startup_names_plugin_and_hook(fake_distribution, make_kernel):
    fake_distribution(
        "crashy",
        """
        def dms_startup(kernel):
            raise RuntimeError("licence file missing")
        """,
        version="4.1",
    )
    kernel = make_kernel(entry_points=True, deployment='[deployment]\nname = "t"\n[plugins]\nenable = ["crashy"]\n')
    with pytest.raises(PluginError) as info:
        await kernel.start()
    assert str(info.value) == "plugin 'crashy' (distribution crashy 4.1) failed in dms_startup: RuntimeError: licence file missing"


async def test_async_and_sync_hooks_are_both_awaited(make_kernel, hook_recorder):
    calls = []

    class plugin:  # noqa: N801
        @staticmethod
        async def dms_startup(kernel):
            await __import__("asyncio").sleep(0)
            calls.append("async startup")

        @staticmethod
        def dms_shutdown(kernel):
            calls.append("sync shutdown")

    kernel = make_kernel(("p", plugin), recorder=hook_recorder)
    async with kernel:
        pass
    assert calls == ["async startup", "sync shutdown"]
    hook_recorder.assert_called("dms_startup", times=1)
    assert hook_recorder.names().index("dms_configure") < hook_recorder.names().index("dms_startup")


async def test_historic_configure_reaches_late_plugin(make_kernel):
    seen = []

    class late:  # noqa: N801
        @staticmethod
        def dms_configure(config):
            seen.append(config.name)

    kernel = make_kernel(deployment='[deployment]\nname = "Nord"\n')
    await kernel.prepare()
    assert seen == []
    kernel.host.register(late, "late")
    assert seen == ["Nord"]


def test_cli_reports_broken_plugin_in_one_line(fake_distribution):
    site = fake_distribution("brokenimport", "raise ValueError('bad vendor build')\n")
    result = run_leitstand(["plugins"], pythonpath=site)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "leitstand: error: plugin 'brokenimport' (distribution brokenimport 1.0) failed in import: "
        "cannot import 'brokenimport_plugin': ValueError: bad vendor build"
    ]
    assert "Traceback" not in result.stderr
    debug = run_leitstand(["--debug", "plugins"], pythonpath=site)
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr


def test_plugins_json_lists_first_party_plugins():
    import json

    result = run_leitstand(["plugins", "--json"])
    assert result.returncode == 0, result.stderr
    plugins = {p["name"]: p for p in json.loads(result.stdout)}
    assert plugins["replay"]["distribution"] == "dms-replay"
    assert plugins["replay"]["hooks"] == ["dms_add_source_types"]
    assert plugins["console"]["distribution"] == "dms-console"


async def test_failed_startup_still_shuts_down_started_plugins(make_kernel):
    calls = []

    class first:  # noqa: N801
        @staticmethod
        def dms_startup(kernel):
            calls.append("first startup")

        @staticmethod
        def dms_shutdown(kernel):
            calls.append("first shutdown")

    class second:  # noqa: N801
        @staticmethod
        def dms_startup(kernel):
            raise OSError("port 2404 in use")

    kernel = make_kernel(("second", second), ("first", first))  # hooks run last-registered first
    with pytest.raises(PluginError, match="plugin 'second' failed in dms_startup: OSError: port 2404 in use"):
        await kernel.start()
    assert calls == ["first startup", "first shutdown"]


async def test_duplicate_type_name_is_one_clear_message(make_kernel):
    import plugins_for_tests as p

    class copycat:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_add_source_types(registry):
            registry.add("manual", p.ManualSource)

    kernel = make_kernel(("copycat", copycat), ("types", p.test_types))  # "types" registers first (LIFO)
    with pytest.raises(PluginError) as info:
        await kernel.prepare()
    assert str(info.value) == (
        "plugin 'copycat' failed in dms_add_source_types: source type 'manual' is already registered by plugin 'types'"
    )


async def test_configure_receives_deployment_with_validated_settings(make_kernel):
    seen = []

    class configured:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_settings_schema():
            return SettingsSchema((Setting("limit", float, 1.0),))

        @staticmethod
        @hookimpl
        def dms_configure(config):
            seen.append((config.name, dict(config.plugin_settings["configured"])))

    kernel = make_kernel(("configured", configured), deployment='[deployment]\nname = "Süd"\n[settings.configured]\nlimit = 3\n')
    await kernel.prepare()
    assert seen == [("Süd", {"limit": 3.0})]


async def test_settings_of_a_blocked_plugin_are_ignored(make_kernel, caplog):
    kernel = make_kernel(deployment='[deployment]\nname = "t"\n[plugins]\ndisable = ["vendor"]\n[settings.vendor]\nx = 1\n')
    await kernel.prepare()
    assert "plugin 'vendor' is blocked: its [settings.vendor] table is ignored" in caplog.text
