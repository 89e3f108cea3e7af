"""Untrusted text from Hacker News, made safe in one place for every channel and the status page.

Titles, comments, user names and URLs come from the internet. Every notifier (built-in or a plugin) and
the page clean them with these functions, then add their own channel's escaping on top (Slack's ``&<>``
entities, HTML's :func:`escape_html`, a mail header's encoded words):

* :func:`html_to_text` and :func:`excerpt`: HN's comment HTML as plain text (tags dropped, paragraphs
  kept, entities decoded);
* :func:`flatten` and :func:`clip`: one line (a title in a chat message, a mail subject): control
  characters and line breaks become spaces, format characters go;
* :func:`printable`: the same for a terminal (nothing that could move the cursor or recolour it);
* :func:`safe_link`: a URL that may become a link (absolute http or https with a host), or None;
* :func:`escape_html`: text for HTML, quotes included;
* :func:`render_marked`: a :class:`~flamewatch.Wording`'s snippet with its marked spans (a mention's
  matched words), escaped by the caller's function and marked with the caller's strings.

Format characters (Unicode category Cf) are dropped everywhere: bidi overrides and isolates make text
read differently from what it says, and zero-width spaces and joiners hide a mention or a link inside a
harmless-looking word. Plugin authors: ``from flamewatch.text import flatten, safe_link``.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

__all__ = [
    "ELLIPSIS", "PLAIN_MARKS", "clip", "escape_html", "excerpt", "flatten", "html_to_text", "inline", "printable",
    "render_marked", "safe_link",
]

ELLIPSIS = "…"

#: Longest URL :func:`safe_link` accepts (after encoding): longer ones are not made into links.
URL_LIMIT = 3000

# Cc: C0/C1 controls (CR, LF, TAB, ESC, NUL...); Zl/Zp: U+2028/U+2029, which many renderers break on.
_BREAKING = frozenset(("Cc", "Zl", "Zp"))
_PARAGRAPH = re.compile(r"<\s*/?\s*p\s*/?\s*>", re.IGNORECASE)
_BREAK = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]*>")
_BLANKS = re.compile(r"\n{3,}")
_RUNS_OF_SPACES = re.compile(" {2,}")
_LINE_EDGES = re.compile(r"[^\S\n]*\n[^\S\n]*")


class _Invisible(dict[int, int | None]):
    """``str.translate`` table: code points of category C (but newline) map to None, others to themselves.

    Filled as characters are first seen, so the table holds only what texts contained and every later
    lookup is a dict hit in C (a ``unicodedata`` call per character in Python cost ~0.5 us each).
    """

    def __missing__(self, point: int) -> int | None:
        value = None if point != 10 and unicodedata.category(chr(point))[0] == "C" else point
        if len(self) < 65_536:  # a hostile text of every code point must not grow it without end
            self[point] = value
        return value


_INVISIBLE = _Invisible()


def html_to_text(text: str) -> str:
    """Plain text from HN's HTML: tags dropped, paragraphs as blank lines, entities decoded, no controls."""
    text = _PARAGRAPH.sub("\n\n", text)
    text = _BREAK.sub("\n", text)
    text = _TAG.sub("", text)
    text = html.unescape(text)
    # Cc (controls, but keep newlines: tabs go too), Cf (format: bidi overrides, zero-width), Co/Cs/Cn:
    # nothing to show. Every step below is a pass in C; a test before a substitution skips the pass
    # that would find nothing (most comments have no double space and no space at a line's edge).
    text = text.translate(_INVISIBLE)
    if "  " in text:
        text = _RUNS_OF_SPACES.sub(" ", text)
    # In ASCII text the only blanks left are single spaces and newlines; other Unicode spaces (no-break,
    # em...) must go from the edges of lines too.
    text = text.replace(" \n", "\n").replace("\n ", "\n") if text.isascii() else _LINE_EDGES.sub("\n", text)
    if "\n\n\n" in text:
        text = _BLANKS.sub("\n\n", text)
    return text.strip()


def excerpt(text: str | None, limit: int = 300) -> str:
    """The first ``limit`` characters of :func:`html_to_text`, cut at a word with an ellipsis."""
    if not text:
        return ""
    plain = html_to_text(text)
    if len(plain) <= limit:
        return plain
    cut = plain[:limit].rsplit(" ", 1)[0] if " " in plain[:limit] else plain[:limit]
    return cut.rstrip() + ELLIPSIS


def flatten(text: str) -> str:
    """``text`` on one line: controls and line breaks become single spaces, format characters are dropped,
    runs of whitespace collapse and the ends are trimmed."""
    return " ".join(inline(text).split())


def inline(text: str) -> str:
    """:func:`flatten` without collapsing or trimming spaces: for a piece of a longer line (a marked snippet
    keeps the spaces next to its marks)."""
    return "".join(
        "" if (category := unicodedata.category(ch)) == "Cf" else " " if category in _BREAKING else ch
        for ch in text
    )


def clip(text: str, limit: int) -> str:
    """:func:`flatten` of ``text``, at most ``limit`` characters, ending with an ellipsis when cut."""
    flat = flatten(text)
    if len(flat) <= limit:
        return flat
    return flat[: max(0, limit - len(ELLIPSIS))].rstrip() + ELLIPSIS


def printable(text: str, width: int | None = None, *, replacement: str = " ") -> str:
    """``text`` for a terminal, on one line: nothing unprintable (an escape sequence in a title or a
    server's error body must not move the cursor or recolour the screen). Format characters go; other
    unprintable ones become ``replacement`` (``"\ufffd"`` shows that something was there); cut to
    ``width`` when given."""
    shown = "".join(
        "" if unicodedata.category(ch) == "Cf" else ch if ch.isprintable() else replacement for ch in text
    )
    shown = " ".join(shown.split())
    return shown if width is None else shown[:width]


def safe_link(url: str | None) -> str | None:
    """``url`` if it may become a link, else None.

    Only an absolute http or https URL with a host qualifies: a ``javascript:`` or ``data:`` link must
    never be clickable. Whitespace, controls and format characters in it are percent-encoded (the link
    still works and can no longer break a line or hide what it is); one longer than :data:`URL_LIMIT`
    after that is refused. Escape the result for your channel as any other text (``&`` in HTML).
    """
    if not url or not url.strip():
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    encoded = "".join(
        "".join(f"%{b:02X}" for b in ch.encode("utf-8"))
        if ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") else ch
        for ch in url
    )
    return encoded if len(encoded) <= URL_LIMIT else None


def escape_html(text: object) -> str:
    """``text`` for HTML, in an element or an attribute: ``& < > " '`` escaped, format characters dropped."""
    return html.escape("".join(ch for ch in str(text) if unicodedata.category(ch) != "Cf"), quote=True)


#: The marks plain-text channels put around a marked span (console, the text part of a mail).
PLAIN_MARKS = ("»", "«")


def render_marked(
    snippet: str,
    marks: Sequence[tuple[int, int]],
    escape: Callable[[str], str],
    open_mark: str,
    close_mark: str,
) -> str:
    """``snippet`` escaped piece by piece, each marked span wrapped in ``open_mark``/``close_mark``.

    A :class:`~flamewatch.Wording` carries ``snippet`` (plain, untrusted text from HN) and ``marks``
    (character spans); each channel passes its own escaping and its own marks (Slack bold, HTML ``<mark>``,
    :data:`PLAIN_MARKS`). The text between and inside marks is always escaped and the mark strings are the
    caller's, so a snippet full of markup or ``<!channel>`` stays inert. Spans out of range, empty or
    overlapping an earlier one are ignored (marks come from stored JSON).
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
