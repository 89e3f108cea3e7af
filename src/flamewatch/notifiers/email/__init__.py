"""The email notifier plugin: alerts and digests by SMTP (aiosmtplib), plain text and HTML.

    [[notifiers]]
    name = "oncall-mail"
    type = "email"
    host = "smtp.example.com"
    sender = "flamewatch <alerts@example.com>"
    to = ["oncall@example.com"]
    username = "alerts@example.com"
    password = { env = "SMTP_PASSWORD" }

See docs/notifiers/email.md for every option.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .compose import MailSettings, build_digest_message, build_event_message
from .notifier import EmailNotifier
from .options import EmailOptions

__all__ = ["EmailNotifier", "EmailOptions", "MailSettings", "build_digest_message", "build_event_message"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``email`` notifier type."""
    return [EmailNotifier]
