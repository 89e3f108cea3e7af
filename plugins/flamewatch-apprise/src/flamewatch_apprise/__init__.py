"""flamewatch-apprise: HN alerts through Apprise to 100+ services, as an installable flamewatch plugin.

Installing the distribution is enough: its ``flamewatch`` entry point names this module, whose
``flamewatch_notifier_types`` hook offers ``type = "apprise"``.
"""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import AppriseNotifier, AppriseOptions

__all__ = ["AppriseNotifier", "AppriseOptions", "flamewatch_notifier_types"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Offer the ``apprise`` notifier type."""
    return [AppriseNotifier]
