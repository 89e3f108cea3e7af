"""The Slack notifier plugin: ``type = "slack"`` posts Block Kit messages via a webhook or a bot token.

Modules: :mod:`.options` (what users configure), :mod:`.notifier` (sending and live-count edits),
:mod:`.format` (Block Kit and escaping, no I/O) and :mod:`.errors` (Slack's answers mapped to delivery
errors); one message a second per channel is kept with :mod:`flamewatch.pacing`. See
docs/notifiers/slack.md for the options and example configs.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .errors import SlackPermanentError
from .notifier import SlackNotifier
from .options import SlackOptions

__all__ = ["SlackNotifier", "SlackOptions", "SlackPermanentError", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``slack`` notifier type."""
    return [SlackNotifier]
