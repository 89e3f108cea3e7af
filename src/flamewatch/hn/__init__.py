"""Talking to the Hacker News API: the client (:mod:`.client`)."""

from .client import *  # noqa: F403
