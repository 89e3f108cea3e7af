"""The ``mention`` rule: ``[[rules.mentions]]`` tables, each a set of terms looked for in every new HN item.

Each table names a mention (``name``), its ``terms`` (phrases, case-insensitive, whole words unless
``whole_word = false``; ``re:...`` or ``regex = true`` for regular expressions; ``-term`` excludes an item),
where to look (``scopes``: ``title``, ``url``, ``domain``, ``text``) and optional ``authors`` / ``domains``
filters. The rule sees every new item from the stream, so it covers all of HN, not only watched threads.

Patterns run on RE2 (the ``google-re2`` package): its matching time is linear in the text, whatever the
pattern, so a pathological pattern such as ``(a+)+$`` cannot stall the event loop. RE2 has no
backreferences or lookaround; such a pattern is refused at ``check`` with one line naming the mention.

Speed: all mentions' positive terms are also compiled into one prefilter per scope, so an item that
mentions nothing (nearly every item) costs one search per scope, whatever the number of mentions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import re2  # type: ignore[import-untyped]

from flamewatch import Item, ItemContext, ItemMatch, Rule, Wording, hookimpl
from flamewatch.hn.text import html_to_text

__all__ = ["MentionRule", "MentionSpec", "Scope", "compile_term", "snippet_around"]

Scope = Literal["title", "url", "domain", "text"]

#: Whole-word guards: the term starts at the text's start or after a character that is not a letter,
#: digit (any script) or "_", and ends likewise.
_BEFORE = r"(?:^|[^\p{L}\p{N}_])"
_AFTER = r"(?:[^\p{L}\p{N}_]|$)"

#: Characters of context kept on each side of the first match in a snippet.
SNIPPET_CONTEXT = 60

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would print parse errors to stderr; we report them as one line instead
_OPTIONS.max_mem = 8 << 20  # a huge alternation or repetition fails to compile instead of eating memory


def _compile(pattern: str) -> Any:
    """An RE2 program for ``pattern`` (ValueError with RE2's reason when it does not compile)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def term_source(term: str, *, regex: bool, whole_word: bool) -> str:
    """The pattern text of one term: group 1 is the part to mark.

    A term written ``re:...`` (or any term when ``regex``) is a regular expression, else a literal phrase
    (runs of spaces in it match any whitespace). Whole words wrap it in non-word guards that consume a
    character: RE2 has no lookbehind, and ``\\b`` would refuse ``C++`` before a space.
    """
    if term.startswith("re:"):
        body, regex = term[3:], True
    else:
        body = term
    if not regex:
        body = r"\s+".join(re2.escape(part) for part in body.split())
    if whole_word:
        return f"{_BEFORE}({body}){_AFTER}"
    return f"({body})"


def compile_term(term: str, *, regex: bool = False, whole_word: bool = True) -> Any:
    """One term as a case-insensitive RE2 program (ValueError when the pattern does not compile)."""
    return _compile("(?i)" + term_source(term, regex=regex, whole_word=whole_word))


@dataclass(frozen=True)
class MentionSpec:
    """One ``[[rules.mentions]]`` table."""

    name: str
    terms: tuple[str, ...]
    scopes: tuple[Scope, ...] = ("title", "text")
    authors: tuple[str, ...] = ()  #: only items by these users (any case); empty: anyone
    domains: tuple[str, ...] = ()  #: only stories linking to these domains or their subdomains
    regex: bool = False  #: every term is a regular expression (without it, prefix one with ``re:``)
    whole_word: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip() or ":" in self.name:
            raise ValueError("name: must be a non-empty name without ':' (it is part of the event key)")
        if not any(t.strip() and not t.startswith("-") for t in self.terms):
            raise ValueError("terms: needs at least one term that is not an exclusion ('-term')")
        if not self.scopes:
            raise ValueError("scopes: needs at least one of title, url, domain, text")
        for i, term in enumerate(self.terms):
            body = term[1:] if term.startswith("-") else term
            if not body.strip() or body.strip() == "re:":
                raise ValueError(f"terms: element {i} is empty")
            try:
                compile_term(body, regex=self.regex, whole_word=self.whole_word)
            except ValueError as exc:
                raise ValueError(f"terms: mention {self.name!r}: pattern {body!r} does not compile: {exc}") from None

    @property
    def positive(self) -> tuple[str, ...]:
        """The terms to look for."""
        return tuple(t for t in self.terms if not t.startswith("-"))

    @property
    def negative(self) -> tuple[str, ...]:
        """The exclusions, without their ``-``."""
        return tuple(t[1:] for t in self.terms if t.startswith("-"))


def domain_of(url: str | None) -> str | None:
    """The lower-case host of ``url`` without ``www.``, or None."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    if not host:
        return None
    return host[4:] if host.startswith("www.") else host


def _on_domain(host: str, domains: Sequence[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


def snippet_around(
    text: str, spans: Sequence[tuple[int, int]], context: int = SNIPPET_CONTEXT
) -> tuple[str, tuple[tuple[int, int], ...]]:
    """A one-line window of ``text`` around the first span, and the spans inside it (relative to it).

    The window is cut at spaces with ``…`` on a cut side, so the snippet never starts mid-word.
    """
    # Line breaks become spaces first (same length, so spans stay put): a snippet is one line everywhere.
    text = text.replace("\r", " ").replace("\n", " ")
    start, end = spans[0]
    lo, hi = max(0, start - context), min(len(text), end + context)
    if lo > 0 and " " in text[lo:start]:
        lo = text.index(" ", lo) + 1
    if hi < len(text) and " " in text[end:hi]:
        hi = text.rindex(" ", end, hi)
    prefix = "…" if lo > 0 else ""
    suffix = "…" if hi < len(text) else ""
    window = text[lo:hi]
    shift = len(prefix) - lo
    marks = tuple((s + shift, e + shift) for s, e in spans if s >= lo and e <= hi)
    return prefix + window + suffix, marks


@dataclass(frozen=True)
class _Compiled:
    spec: MentionSpec
    positive: Any  # one RE2 program for every positive term
    negative: Any | None
    authors: frozenset[str]


@dataclass(frozen=True)
class _Found:
    scope: Scope
    text: str
    spans: tuple[tuple[int, int], ...]


class MentionRule(Rule):
    """Fires once per mention and new item that matches it (level: the mention's name)."""

    name = "mention"
    description = "a new story or comment mentions a term"

    @dataclass(frozen=True)
    class Options:
        """``[[rules.mentions]]``: the mentions to look for (none, the default: the rule is off)."""

        mentions: tuple[MentionSpec, ...] = ()

        def __post_init__(self) -> None:
            names = [m.name for m in self.mentions]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"mentions: two mentions are named {dupes[0]!r} (names must be unique)")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self._mentions: list[_Compiled] = []
        by_scope: dict[str, list[str]] = {}
        for spec in self.options.mentions:
            sources = [term_source(t, regex=spec.regex, whole_word=spec.whole_word) for t in spec.positive]
            negative = [term_source(t, regex=spec.regex, whole_word=spec.whole_word) for t in spec.negative]
            self._mentions.append(_Compiled(
                spec=spec,
                positive=_compile("(?i)" + "|".join(f"(?:{s})" for s in sources)),
                negative=_compile("(?i)" + "|".join(f"(?:{s})" for s in negative)) if negative else None,
                authors=frozenset(a.casefold() for a in spec.authors),
            ))
            for scope in spec.scopes:
                by_scope.setdefault(scope, []).extend(sources)
        # One program per scope with every mention's terms: most items match none and stop here.
        self._prefilter = {
            scope: _compile("(?i)" + "|".join(f"(?:{s})" for s in sources)) for scope, sources in by_scope.items()
        }

    def is_active(self) -> bool:
        return bool(self._mentions)

    def describe(self) -> str:
        return f"mentions {[m.name for m in self.options.mentions]}"

    def observe_item(self, item: Item, ctx: ItemContext) -> list[ItemMatch]:
        if item.deleted or item.dead:
            return []
        texts = self._scoped_texts(item)
        hit = [scope for scope, text in texts.items() if self._prefilter[scope].search(text)]
        if not hit:
            return []
        host = domain_of(item.url)
        out = []
        for mention in self._mentions:
            spec = mention.spec
            if mention.authors and (item.by or "").casefold() not in mention.authors:
                continue
            if spec.domains and (host is None or not _on_domain(host, spec.domains)):
                continue
            found = self._find(mention, texts, hit)
            if found is not None:
                out.append(self._match(item, spec, found))
        return out

    def _scoped_texts(self, item: Item) -> dict[Scope, str]:
        """The item's text for each scope any mention looks at (plain text; HN's HTML decoded once)."""
        texts: dict[Scope, str] = {}
        if "title" in self._prefilter and item.title:
            texts["title"] = item.title
        if "url" in self._prefilter and item.url:
            texts["url"] = item.url
        if "domain" in self._prefilter and (host := domain_of(item.url)):
            texts["domain"] = host
        if "text" in self._prefilter and item.text:
            texts["text"] = html_to_text(item.text)
        return texts

    @staticmethod
    def _find(mention: _Compiled, texts: dict[Scope, str], hit: Sequence[Scope]) -> _Found | None:
        """Where ``mention`` matches the item (first scope in its order), or None (no match, or excluded)."""
        spec = mention.spec
        if mention.negative is not None and any(
            mention.negative.search(texts[scope]) for scope in spec.scopes if scope in texts
        ):
            return None
        for scope in spec.scopes:
            if scope not in hit:
                continue
            text = texts[scope]
            spans = _spans(mention.positive, text)
            if spans:
                return _Found(scope, text, spans)
        return None

    @staticmethod
    def _match(item: Item, spec: MentionSpec, found: _Found) -> ItemMatch:
        snippet, marks = snippet_around(found.text, found.spans)
        start, end = found.spans[0]
        term = found.text[start:end]
        kind = "comment" if item.type == "comment" else (item.type or "item")
        author = f" by {item.by}" if item.by else ""
        where = {"title": "title", "url": "link", "domain": "domain", "text": "text"}[found.scope]
        wording = Wording(
            summary=f"Mention: {spec.name}",
            headline=f"has a {kind}{author} mentioning {term!r} in its {where} (mention {spec.name})",
            detail=f"“{term}”",
            emoji="mag",
            snippet=snippet,
            marks=marks,
        )
        return ItemMatch(level=spec.name, wording=wording, key=f"{spec.name}:{item.id}")


def _spans(program: Any, text: str, limit: int = 20) -> tuple[tuple[int, int], ...]:
    """The spans to mark, in order. Each search resumes where the last marked part ended, not after the
    guard character it consumed, so "rust rust" marks both words."""
    spans: list[tuple[int, int]] = []
    pos = 0
    while len(spans) < limit and pos <= len(text):
        match = program.search(text, pos)
        if match is None:
            break
        start, end = _mark_span(match)
        spans.append((start, end))
        pos = max(end, start + 1)
    return tuple(spans)


def _mark_span(match: Any) -> tuple[int, int]:
    """The span to mark: the first group that took part (every term's pattern has its text in a group)."""
    for i in range(1, (match.re.groups or 0) + 1):
        start, end = match.span(i)
        if start >= 0:
            return start, end
    start, end = match.span()
    return int(start), int(end)


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [MentionRule]
