"""HN's comment HTML as plain text: kept here for imports that predate :mod:`flamewatch.text`, which holds
the one implementation (with every other cleaning of untrusted HN text)."""

from __future__ import annotations

from ..text import excerpt, html_to_text

__all__ = ["excerpt", "html_to_text"]
