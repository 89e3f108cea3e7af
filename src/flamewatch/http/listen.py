"""Where the HTTP face listens: the parser lives with the config (:mod:`flamewatch.config.listen`)."""

from __future__ import annotations

from ..config.listen import is_loopback, listen_problem, parse_listen

__all__ = ["is_loopback", "listen_problem", "parse_listen"]
