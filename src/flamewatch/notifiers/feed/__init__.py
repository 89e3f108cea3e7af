"""The feed notifier plugin: events kept for the Atom and JSON feeds of the HTTP face (``/feeds/<name>``)."""

from __future__ import annotations

from flamewatch import Notifier, hookimpl

from .notifier import FeedNotifier, FeedOptions

__all__ = ["FeedNotifier", "FeedOptions"]


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``feed`` notifier type."""
    return [FeedNotifier]
