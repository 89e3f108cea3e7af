"""flamewatch-telegram: HN alerts to Telegram, as an installable flamewatch plugin.

Installing the distribution is enough: its ``flamewatch`` entry point names this module, whose
``flamewatch_notifier_types`` hook offers ``type = "telegram"``.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import TelegramNotifier
from .options import TelegramOptions

__all__ = ["TelegramNotifier", "TelegramOptions", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Offer the ``telegram`` notifier type."""
    return [TelegramNotifier]
