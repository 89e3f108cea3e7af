"""Rendering a snippet with marked spans (a mention's matched words) safely for any channel.

A :class:`~flamewatch.Wording` carries ``snippet`` (plain, untrusted text from HN) and ``marks`` (character
spans). Each notifier calls :func:`render_marked` with its own escaping and its own mark: Slack bold,
HTML ``<mark>``, plain text ``»…«``. The text between and inside marks is always escaped, and the mark
strings are ours, so a snippet full of markup or ``<!channel>`` stays inert.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["PLAIN_MARKS", "render_marked"]

#: The marks plain-text channels use (console, the text part of a mail).
PLAIN_MARKS = ("»", "«")


def render_marked(
    snippet: str,
    marks: Sequence[tuple[int, int]],
    escape: Callable[[str], str],
    open_mark: str,
    close_mark: str,
) -> str:
    """``snippet`` escaped piece by piece, each marked span wrapped in ``open_mark``/``close_mark``.

    Spans out of range, empty or overlapping an earlier one are ignored (marks come from stored JSON).
    """
    out: list[str] = []
    pos = 0
    for start, end in sorted(marks):
        if start < pos or end <= start or end > len(snippet):
            continue
        out.append(escape(snippet[pos:start]))
        out.append(open_mark + escape(snippet[start:end]) + close_mark)
        pos = end
    out.append(escape(snippet[pos:]))
    return "".join(out)
