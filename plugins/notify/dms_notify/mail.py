"""``email``: notifications as plain-text e-mail over SMTP (stdlib :mod:`smtplib` in a worker thread)."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from dms_hookspecs import REQUIRED, Notification, Notifier, Setting, SettingsSchema

__all__ = ["EmailNotifier"]


class EmailNotifier(Notifier):
    """Sends each notification as one e-mail to ``to``.

    A refused recipient, a refused sender, a lost connection or a timeout raises, so the alarm
    manager retries with backoff and audits the failure.
    """

    settings_schema = SettingsSchema(
        (
            Setting("host", str, "localhost", "SMTP server"),
            Setting("port", int, 25, "SMTP port (587 with starttls, 465 with tls)"),
            Setting("sender", str, REQUIRED, "From: address"),
            Setting("to", list, REQUIRED, "recipient addresses"),
            Setting("security", str, "none", "none, starttls or tls", choices=("none", "starttls", "tls")),
            Setting("username", str, None, "login user (with password)"),
            Setting("password", str, None, "login password"),
            Setting("timeout_s", float, 10.0, "connect and command timeout"),
            Setting("subject_prefix", str, "[Leitstand] ", "put before every subject"),
        )
    )

    def __init__(self, name, settings):
        super().__init__(name, settings)
        to = settings["to"]
        if not to or not all(isinstance(address, str) and "@" in address for address in to):
            raise ValueError(f"'to' must be a non-empty list of e-mail addresses, got {to!r}")
        if "@" not in settings["sender"]:
            raise ValueError(f"'sender' is not an e-mail address: {settings['sender']!r}")
        if (settings["username"] is None) != (settings["password"] is None):
            raise ValueError("give both username and password, or neither")

    def message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings["sender"]
        message["To"] = ", ".join(self.settings["to"])
        message["Subject"] = self.settings["subject_prefix"] + notification.subject
        message["Date"] = formatdate(notification.created, localtime=True)
        message["Message-ID"] = make_msgid(domain=self.settings["sender"].rsplit("@", 1)[1])
        message["X-Leitstand-Alarm"] = notification.alarm_id
        message["X-Priority"] = "1" if notification.priority.value <= 2 else "3"
        message.set_content(notification.body)
        return message

    def _send(self, message: EmailMessage) -> str:
        settings = self.settings
        host, port, timeout = settings["host"], settings["port"], settings["timeout_s"]
        if settings["security"] == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(host, port, timeout=timeout, context=ssl.create_default_context())
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            if settings["security"] == "starttls":
                client.starttls(context=ssl.create_default_context())
            if settings["username"] is not None:
                client.login(settings["username"], settings["password"])
            refused = client.send_message(message)
        accepted = [address for address in settings["to"] if address not in refused]
        if refused:  # some recipients refused: delivered to the others, say so
            return f"accepted by {host}:{port} for {', '.join(accepted)}; refused: {', '.join(refused)}"
        return f"accepted by {host}:{port} for {', '.join(accepted)}"

    async def send(self, notification: Notification) -> str:
        return await asyncio.to_thread(self._send, self.message(notification))
