"""Notifier types for Leitstand's alarm escalation: ``email`` (SMTP) and ``webhook`` (HTTP)."""

from .mail import EmailNotifier
from .webhook import WebhookNotifier

__all__ = ["EmailNotifier", "WebhookNotifier"]
