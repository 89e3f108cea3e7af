"""How each decline event reads (see :mod:`.decline`): plain text, cleaned of HN's control and bidi
characters here, escaped by each channel as it escapes every wording."""

from __future__ import annotations

from ..events import Wording
from ..rules.rank import list_label
from ..text import clip, flatten

__all__ = ["dead", "deleted", "dropped", "flagged", "left", "retitled"]

#: The longest old title quoted in a retitle event (HN titles are at most 80 characters).
OLD_TITLE_MAX = 120


def left(list_name: str, best: int, last: int) -> Wording:
    """``Left the front page (best #3)`` / ``left the front page, after reaching #3 (last seen at #28)``."""
    where = list_label(list_name)
    return Wording(summary=f"Left {where} (best #{best})",
                   headline=f"left {where}, after reaching #{best} (last seen at #{last})",
                   detail=f"(last seen at #{last})", emoji="chart_with_downwards_trend")


def flagged(list_name: str, last: int) -> Wording:
    """A story gone from a high rank at once: what flags (or a moderator) do, not the slow slide."""
    where = list_label(list_name)
    return Wording(summary=f"Vanished from #{last} on {where}: likely flagged",
                   headline=f"vanished from #{last} on {where}, likely flagged or moderated (it is not dead)",
                   emoji="triangular_flag_on_post")


def dropped(list_name: str, best: int, now: int, within: float) -> Wording:
    """``Dropped from #2 to #31 on the front page``."""
    where = list_label(list_name)
    span = f"{within / 60:g} minutes" if within < 7200 else f"{within / 3600:g} hours"
    return Wording(summary=f"Dropped from #{best} to #{now} on {where}",
                   headline=f"dropped from #{best} to #{now} on {where} within {span}",
                   detail=f"({now - best} places)", emoji="small_red_triangle_down")


def dead() -> Wording:
    """The story was killed (by flags or a moderator): HN shows it only to those who turned on showdead."""
    return Wording(summary="Became dead", headline="is dead now (killed by flags or a moderator)",
                   emoji="skull")


def deleted() -> Wording:
    """The story was deleted (by its author, or by HN)."""
    return Wording(summary="Was deleted", headline="was deleted", emoji="wastebasket")


def retitled(old: str, new: str) -> Wording:
    """Old and new title, both untrusted: flattened here, escaped by the channel."""
    was = clip(flatten(old), OLD_TITLE_MAX)
    now = clip(flatten(new), OLD_TITLE_MAX)
    return Wording(summary=f"Retitled (was \u201c{was}\u201d)",
                   headline=f"was retitled; it was \u201c{was}\u201d",
                   detail=f"(now \u201c{now}\u201d)", emoji="pencil2")
