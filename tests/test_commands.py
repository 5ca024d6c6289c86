"""Command path: authorisation, interlocks, select-before-operate, routing, timeout, audit."""

from __future__ import annotations

import pytest

import plugins_for_tests as p
from dms_hookspecs import AuditEntry, Command, CommandResult, CommandStatus, hookimpl


class operators_only:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_authorize_command(command):
        if not command.originator.startswith("operator:"):
            return f"{command.originator} has no operator role"
        return None


class earthing_interlock:  # noqa: N801
    """Vetoes closing CB0 while the measured value P0 is above 100 (e.g. earth switch closed)."""

    @staticmethod
    @hookimpl
    def dms_veto_command(command, point, snapshot):
        if point.id.name == "rtu/CB0" and command.value == 2 and snapshot.get("rtu/P0").value > 100:
            return "earthing switch rtu/P0 is closed"
        return None


class broken_interlock:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_veto_command(command, point, snapshot):
        raise ZeroDivisionError("division by zero")


async def started(make_kernel, *plugins, sources=""):
    kernel = make_kernel(p.test_types, *plugins, deployment=p.deployment(sources=sources + "\nsettings = { breakers = 2 }" if not sources else sources))
    await kernel.start()
    source = p.ManualSource.instances["rtu"]
    await source.ready.wait()
    return kernel, source


def audit_trail(kernel_sink, command):
    return [e.action for e in kernel_sink.of_type(AuditEntry) if command.id in e.detail]


async def test_successful_command_is_audited_step_by_step(make_kernel):
    kernel, source = await started(make_kernel)
    command = Command("rtu/CB0", 2, originator="operator:anna", reason="restore supply")
    result = await kernel.execute(command)
    await kernel.stop()
    assert result.status is CommandStatus.SUCCEEDED
    assert source.operated == [("rtu/CB0", 2)]
    sink = p.ListSink.instances["log"]
    assert audit_trail(sink, command) == [
        "command.received",
        "command.authorise",
        "command.interlock",
        "command.result",
    ]
    assert command in sink.of_type(Command)
    assert result in sink.of_type(CommandResult)
    assert {e.actor for e in sink.of_type(AuditEntry) if command.id in e.detail} == {"operator:anna"}


async def test_authorisation_denial_names_plugin(make_kernel):
    kernel, source = await started(make_kernel, ("rbac", operators_only))
    result = await kernel.execute(Command("rtu/CB0", 1, originator="guest"))
    await kernel.stop()
    assert result.status is CommandStatus.DENIED
    assert result.step == "authorise"
    assert result.reason == "rbac: guest has no operator role"
    assert source.operated == []


async def test_interlock_veto_with_reason(make_kernel):
    kernel, source = await started(make_kernel, ("earthing", earthing_interlock))
    source.publish([150.0])
    vetoed = await kernel.execute(Command("rtu/CB0", 2, originator="operator:anna"))
    allowed_open = await kernel.execute(Command("rtu/CB0", 1, originator="operator:anna"))
    source.publish([0.0])
    allowed_close = await kernel.execute(Command("rtu/CB0", 2, originator="operator:anna"))
    await kernel.stop()
    assert vetoed.status is CommandStatus.VETOED
    assert vetoed.reason == "earthing: earthing switch rtu/P0 is closed"
    assert allowed_open.ok and allowed_close.ok
    assert source.operated == [("rtu/CB0", 1), ("rtu/CB0", 2)]
    sink = p.ListSink.instances["log"]
    assert any(e.action == "command.result" and "vetoed at interlock" in e.detail for e in sink.of_type(AuditEntry))


async def test_failing_interlock_blocks_fail_safe(make_kernel):
    kernel, source = await started(make_kernel, ("flaky", broken_interlock))
    result = await kernel.execute(Command("rtu/CB0", 2, originator="operator:anna"))
    await kernel.stop()
    assert result.status is CommandStatus.VETOED
    assert "plugin 'flaky'" in result.reason and "ZeroDivisionError" in result.reason
    assert source.operated == []


async def test_select_before_operate(make_kernel):
    kernel, source = await started(make_kernel)
    # CB1 is declared select-before-operate; CB0 only when the command asks for it
    result_declared = await kernel.execute(Command("rtu/CB1", 1, originator="operator:anna"))
    result_requested = await kernel.execute(Command("rtu/CB0", 1, originator="operator:anna", select_before_operate=True))
    plain = await kernel.execute(Command("rtu/CB0", 2, originator="operator:anna"))
    await kernel.stop()
    assert result_declared.ok and result_requested.ok and plain.ok
    assert source.selected == ["rtu/CB1", "rtu/CB0"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [("rtu/CB9", "unknown point 'rtu/CB9'"), ("rtu/P0", "point 'rtu/P0' is not controllable")],
)
async def test_impossible_commands_are_rejected(make_kernel, target, reason):
    kernel, source = await started(make_kernel)
    result = await kernel.execute(Command(target, 1, originator="operator:anna"))
    await kernel.stop()
    assert result.status is CommandStatus.REJECTED
    assert result.step == "route"
    assert result.reason == reason


async def test_timeout(make_kernel):
    kernel, source = await started(make_kernel, sources="settings = { operate_delay_s = 5.0 }")
    result = await kernel.execute(Command("rtu/CB0", 1, originator="operator:anna", timeout_s=0.1))
    await kernel.stop()
    assert result.status is CommandStatus.TIMEOUT
    assert result.reason == "source 'rtu' did not answer operate within 0.1 s"
