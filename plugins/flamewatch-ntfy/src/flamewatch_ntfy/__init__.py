"""flamewatch-ntfy: HN alerts as ntfy push notifications, as an installable flamewatch plugin.

Installing the distribution is enough: its ``flamewatch`` entry point names this module, whose
``flamewatch_notifier_types`` hook offers ``type = "ntfy"``.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import NtfyNotifier, NtfyOptions

__all__ = ["NtfyNotifier", "NtfyOptions", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Offer the ``ntfy`` notifier type."""
    return [NtfyNotifier]
