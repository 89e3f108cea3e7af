"""Routing events to notifier instances through the outbox."""

from .runtime import *  # noqa: F403
