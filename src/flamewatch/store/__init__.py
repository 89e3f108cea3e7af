"""Where flamewatch keeps what must survive a restart (SQLite by default)."""

from .sqlite import *  # noqa: F403
