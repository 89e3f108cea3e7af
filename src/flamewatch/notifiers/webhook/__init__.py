"""The webhook notifier plugin: signed JSON POSTs following the Standard Webhooks spec.

See docs/notifiers/webhook.md for the body schema, the headers and how receivers verify them.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import WebhookNotifier, WebhookOptions
from .signing import message_id, parse_secrets, sign

__all__ = ["WebhookNotifier", "WebhookOptions", "message_id", "parse_secrets", "sign"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``webhook`` notifier type."""
    return [WebhookNotifier]
