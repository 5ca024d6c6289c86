"""E-mail and webhook notifiers against real local servers, alone and through alarm escalation."""

from __future__ import annotations

import asyncio
import time
from importlib.metadata import entry_points

import pytest

import dms_alarms.plugin
import dms_notify.plugin
from dms_alarms import IsaState, manager_for
from dms_hookspecs import Alarm, AlarmPriority, AuditEntry, Notification, Sink, hookimpl
from dms_kernel.errors import ConfigError, PluginError
from dms_notify import EmailNotifier, WebhookNotifier


class Recorder(Sink):
    instances: dict[str, Recorder] = {}

    def __init__(self, name, settings):
        super().__init__(name, settings)
        self.events = []
        Recorder.instances[name] = self

    async def write(self, events):
        self.events.extend(events)

    def audit(self, prefix):
        return [e for e in self.events if isinstance(e, AuditEntry) and e.action.startswith(prefix)]


class recorder_plugin:  # noqa: N801
    @staticmethod
    @hookimpl
    def dms_add_sink_types(registry):
        registry.add("recorder", Recorder)


def deployment(alarms: str) -> str:
    return f"""
[deployment]
name = "escalation test"

[settings.alarms]
tick_s = 0.02
{alarms}

[[sinks]]
name = "log"
type = "recorder"
"""


def kernel_with(make_kernel, alarms: str):
    return make_kernel(("alarms", dms_alarms.plugin), ("notify", dms_notify.plugin), recorder_plugin, deployment=deployment(alarms))


async def until(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


NOTE = Notification("[CRITICAL] breaker 'F3/CB' tripped", "body text\n", "a1", AlarmPriority.CRITICAL, 0, {"state": "unacked-active"})


# -- the notifiers alone ------------------------------------------------------------------------


async def test_email_is_delivered_to_a_real_smtp_server(smtp_server):
    mailbox, port = smtp_server
    notifier = EmailNotifier("oncall", {**_email(port), "to": ["oncall@grid.example", "lead@grid.example"]})
    detail = await notifier.send(NOTE)
    assert detail == f"accepted by 127.0.0.1:{port} for oncall@grid.example, lead@grid.example"
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "dms@grid.example" and recipients == ["oncall@grid.example", "lead@grid.example"]
    assert message["Subject"] == "[Leitstand] [CRITICAL] breaker 'F3/CB' tripped"
    assert message["X-Leitstand-Alarm"] == "a1" and message["X-Priority"] == "1"
    assert message.get_payload().strip() == "body text"


async def test_email_refused_by_the_server_raises(smtp_server):
    mailbox, port = smtp_server
    mailbox.refuse = {"nobody@grid.example"}
    notifier = EmailNotifier("oncall", {**_email(port), "to": ["nobody@grid.example"]})
    with pytest.raises(Exception, match="mailbox unavailable"):
        await notifier.send(NOTE)
    assert mailbox.messages == []


async def test_webhook_posts_json_and_raises_on_server_errors(http_server):
    hook, url = http_server
    notifier = WebhookNotifier("chat", {"url": url, "method": "POST", "headers": {"Authorization": "Bearer t"}, "timeout_s": 5.0, "verify_tls": True})
    try:
        assert await notifier.send(NOTE) == f"HTTP 200 from {url}"
        hook.fail_first = 2
        with pytest.raises(RuntimeError, match="answered HTTP 503"):
            await notifier.send(NOTE)
    finally:
        await notifier.close()
    _, path, headers, body = hook.requests[0]
    assert path == "/hooks/alarms" and headers["Authorization"] == "Bearer t"
    assert body["subject"] == NOTE.subject and body["priority"] == "critical" and body["alarm"] == {"state": "unacked-active"}


# -- escalation through the alarm manager -----------------------------------------------------------


async def test_escalation_notifies_oncall_then_shift_lead_by_email_until_acknowledged(make_kernel, smtp_server):
    mailbox, port = smtp_server
    kernel = kernel_with(
        make_kernel,
        f"""
[settings.alarms.notifiers.oncall]
type = "email"
settings = {{ host = "127.0.0.1", port = {port}, sender = "dms@grid.example", to = ["oncall@grid.example"] }}
[settings.alarms.notifiers.shift_lead]
type = "email"
settings = {{ host = "127.0.0.1", port = {port}, sender = "dms@grid.example", to = ["lead@grid.example"] }}
[[settings.alarms.escalation]]
priority = "critical"
unacknowledged_for_s = 0.2
notify = ["oncall"]
[[settings.alarms.escalation]]
priority = "critical"
unacknowledged_for_s = 0.6
notify = ["shift_lead"]
""",
    )
    async with kernel:
        alarms = manager_for(kernel)
        kernel.emit(Alarm("breaker 'F3/CB' tripped", AlarmPriority.CRITICAL, source="rtu3", category="protection"))
        kernel.emit(Alarm("breaker 'F4/CB' tripped", AlarmPriority.CRITICAL, source="rtu4", category="protection"))
        kernel.emit(Alarm("PV inverter 'PV 3' offline", AlarmPriority.LOW, source="pv", category="comms"))
        await until(lambda: len(alarms) == 3)
        started = time.monotonic()
        f4 = next(a for a in alarms if "F4" in a.message)
        alarms.acknowledge(f4.id, "alice")  # acknowledged in time: never escalated
        await until(lambda: len(mailbox.messages) == 1)
        first = time.monotonic() - started
        await until(lambda: len(mailbox.messages) == 2)
        second = time.monotonic() - started
        f3 = next(a for a in alarms if "F3" in a.message)
        alarms.acknowledge(f3.id, "bob")
        await asyncio.sleep(0.3)
        sink = Recorder.instances["log"]
    assert 0.1 < first < 0.6 and 0.5 < second < 1.2
    assert [(rcpt, msg["Subject"]) for _, rcpt, msg in mailbox.messages] == [
        (["oncall@grid.example"], "[Leitstand] [CRITICAL] breaker 'F3/CB' tripped"),
        (["lead@grid.example"], "[Leitstand] [CRITICAL] breaker 'F3/CB' tripped"),
    ]
    body = mailbox.messages[0][2].get_payload()
    assert "critical alarm, unacknowledged for" in body and f"alarm id: {f3.id}" in body and "escalation step 1" in body
    sent = sink.audit("notify.")
    assert [(e.action, e.subject) for e in sent] == [("notify.sent", f3.id), ("notify.sent", f3.id)]
    assert "notifier 'oncall' (email), step 1, attempt 1/4: accepted by 127.0.0.1" in sent[0].detail
    assert "notifier 'shift_lead' (email), step 2" in sent[1].detail
    assert f3.state is IsaState.ACK_ACTIVE


async def test_webhook_is_retried_with_exponential_backoff_and_audited(make_kernel, http_server):
    hook, url = http_server
    hook.fail_first = 3
    kernel = kernel_with(
        make_kernel,
        f"""
notifiers = {{ chat = {{ type = "webhook", retries = 4, backoff_s = 0.05, settings = {{ url = "{url}" }} }} }}
escalation = [{{ priority = "high", unacknowledged_for_s = 0.0, notify = ["chat"] }}]
""",
    )
    async with kernel:
        kernel.emit(Alarm("IEC 104 link to 'rtu1' lost", AlarmPriority.HIGH, source="rtu1", category="comms"))
        await until(lambda: Recorder.instances["log"].audit("notify."))
        sink = Recorder.instances["log"]
    times = [t for t, *_ in hook.requests]
    assert len(times) == 4  # three 503s, then delivered
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095 and gaps[2] >= 0.195  # 0.05, 0.1, 0.2 s
    [entry] = sink.audit("notify.")
    assert entry.action == "notify.sent" and "attempt 4/5: HTTP 200" in entry.detail
    assert hook.requests[-1][3]["alarm"]["message"] == "IEC 104 link to 'rtu1' lost"


async def test_a_notification_that_keeps_failing_is_audited_and_alarmed(make_kernel, http_server):
    hook, url = http_server
    hook.fail_first = 100
    kernel = kernel_with(
        make_kernel,
        f"""
notifiers = {{ chat = {{ type = "webhook", retries = 1, backoff_s = 0.01, settings = {{ url = "{url}" }} }} }}
escalation = [{{ priority = "any", unacknowledged_for_s = 0.0, notify = ["chat"], category = "comms" }}]
""",
    )
    async with kernel:
        alarms = manager_for(kernel)
        kernel.emit(Alarm("link lost", AlarmPriority.MEDIUM, source="rtu1", category="comms"))
        await until(lambda: alarms.active(category="notification"))
        sink = Recorder.instances["log"]
        [failure] = alarms.active(category="notification")
    assert len(hook.requests) == 2
    [entry] = sink.audit("notify.")
    assert entry.action == "notify.failed" and "2 attempts failed, last: RuntimeError" in entry.detail and "HTTP 503" in entry.detail
    assert failure.priority is AlarmPriority.HIGH and "notification 'chat' failed after 2 attempts" in failure.message


async def test_unreachable_smtp_server_fails_after_retries(make_kernel, closed_port):
    port = closed_port
    kernel = kernel_with(
        make_kernel,
        f"""
notifiers = {{ oncall = {{ type = "email", retries = 2, backoff_s = 0.01, settings = {{ host = "127.0.0.1", port = {port}, sender = "dms@grid.example", to = ["oncall@grid.example"], timeout_s = 2.0 }} }} }}
escalation = [{{ priority = "high", unacknowledged_for_s = 0.0, notify = ["oncall"] }}]
""",
    )
    async with kernel:
        kernel.emit(Alarm("link lost", AlarmPriority.HIGH, source="rtu1", category="comms"))
        await until(lambda: Recorder.instances["log"].audit("notify."))
        [entry] = Recorder.instances["log"].audit("notify.")
    assert entry.action == "notify.failed" and "3 attempts failed, last: ConnectionRefusedError" in entry.detail


# -- configuration -------------------------------------------------------------------------------


async def test_notifier_settings_are_checked_against_the_type_schema(make_kernel):
    kernel = kernel_with(make_kernel, 'notifiers = { oncall = { type = "email", settings = { host = "x", to = ["a@b.c"] } } }')
    with pytest.raises(ConfigError) as caught:
        await kernel.start()
    assert caught.value.table == "settings.alarms.notifiers.oncall.settings" and caught.value.key == "sender"
    assert str(caught.value).endswith("key 'sender': missing required key")


async def test_a_bad_webhook_url_names_the_notify_plugin(make_kernel):
    kernel = kernel_with(make_kernel, 'notifiers = { chat = { type = "webhook", settings = { url = "ftp://x" } } }')
    with pytest.raises(PluginError) as caught:
        await kernel.start()
    assert caught.value.plugin == "notify" and "cannot create notifier 'chat'" in caught.value.cause
    assert "url must be http:// or https://" in caught.value.cause


async def test_a_notifier_type_registered_twice_names_both_plugins(make_kernel):
    class other:  # noqa: N801
        @staticmethod
        @hookimpl
        def dms_add_notifier_types(registry):
            registry.add("email", EmailNotifier)

    kernel = make_kernel(("alarms", dms_alarms.plugin), ("notify", dms_notify.plugin), ("other", other), recorder_plugin, deployment=deployment(""))
    with pytest.raises(PluginError, match="notifier type 'email' is already registered by plugin"):
        await kernel.start()


def test_the_distribution_registers_the_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="dms.plugins")}
    assert plugins["notify"] == "dms_notify.plugin"


def _email(port):
    return {
        "host": "127.0.0.1", "port": port, "sender": "dms@grid.example", "to": ["oncall@grid.example"], "security": "none",
        "username": None, "password": None, "timeout_s": 5.0, "subject_prefix": "[Leitstand] ",
    }
