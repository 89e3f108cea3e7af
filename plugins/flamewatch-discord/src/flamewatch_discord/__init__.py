"""flamewatch-discord: HN alerts to Discord through an incoming webhook, as an installable flamewatch plugin.

Installing the distribution is enough: its ``flamewatch`` entry point names this module, whose
``flamewatch_notifier_types`` hook offers ``type = "discord"``.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import DiscordNotifier, DiscordOptions

__all__ = ["DiscordNotifier", "DiscordOptions", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Offer the ``discord`` notifier type."""
    return [DiscordNotifier]
