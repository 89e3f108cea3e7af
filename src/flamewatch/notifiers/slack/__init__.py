"""The Slack notifier plugin: ``type = "slack"`` posts Block Kit messages via a webhook or a bot token.

See docs/notifiers/slack.md for the options and example configs.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import SlackNotifier, SlackOptions, SlackPermanentError

__all__ = ["SlackNotifier", "SlackOptions", "SlackPermanentError", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``slack`` notifier type."""
    return [SlackNotifier]
