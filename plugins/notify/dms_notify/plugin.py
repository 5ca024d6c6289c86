"""Entry point of the ``notify`` plugin: registers the notifier types ``email`` and ``webhook``."""

from dms_hookspecs import hookimpl

from .mail import EmailNotifier
from .webhook import WebhookNotifier


@hookimpl
def dms_add_notifier_types(registry):
    registry.add("email", EmailNotifier)
    registry.add("webhook", WebhookNotifier)
