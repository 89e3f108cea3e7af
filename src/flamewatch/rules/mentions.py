"""The ``mention`` rule: ``[[rules.mentions]]`` tables, each a set of terms looked for in every new HN item.

Each table names a mention (``name``), its ``terms`` (phrases, case-insensitive, whole words unless
``whole_word = false``; ``re:...`` or ``regex = true`` for regular expressions; ``-term`` excludes an item),
where to look (``scopes``: ``title``, ``url``, ``domain``, ``text``) and optional ``authors`` / ``domains``
filters. The rule sees every new item from the stream, so it covers all of HN, not only watched threads.

Patterns run on RE2 (the ``google-re2`` package): its matching time is linear in the text, whatever the
pattern, so a pathological pattern such as ``(a+)+$`` cannot stall the event loop. RE2 has no
backreferences or lookaround; such a pattern is refused at ``check`` with one line naming the mention.
Whole words are tested in the same RE2 pass (``\\b``, exact on ASCII text) and confirmed on each match
in Python for any script (see :mod:`flamewatch.rules.termmatch`); for a regular expression the test
applies to the match RE2 found.

Speed: all mentions' positive terms are also compiled into one prefilter per scope, so an item that
mentions nothing (nearly every item) costs one search per scope, whatever the number of mentions. One
item's time is bounded: at most :data:`MAX_SCANNED_BYTES` of its text are searched, and a search gives
up after :data:`~flamewatch.rules.termmatch.MAX_REJECTED` matches that were not whole words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from flamewatch import LevelOrder, Item, ItemContext, ItemMatch, Rule, Wording, hookimpl
from flamewatch.hn.item import domain_of, on_domain
from flamewatch.text import html_to_text

from .termmatch import TermPrograms, as_characters, compile_terms, find_spans

__all__ = ["MentionRule", "MentionSpec", "Scope", "compile_terms", "find_spans", "snippet_around"]

Scope = Literal["title", "url", "domain", "text"]


#: Characters of context kept on each side of the first match in a snippet.
SNIPPET_CONTEXT = 60

#: At most this much of an item's plain text is searched (HN's longest comments are about 15,000
#: characters): with MAX_REJECTED, the bound on the time one item can take.
MAX_SCANNED_BYTES = 64 * 1024

@dataclass(frozen=True)
class MentionSpec:
    """One ``[[rules.mentions]]`` table."""

    name: str
    terms: tuple[str, ...]
    scopes: tuple[Scope, ...] = ("title", "text")
    authors: tuple[str, ...] = ()  #: only items by these users (any case); empty: anyone
    domains: tuple[str, ...] = ()  #: only stories linking to these domains (or subdomains), and comments on them
    regex: bool = False  #: every term is a regular expression (without it, prefix one with ``re:``)
    whole_word: bool = True

    def __post_init__(self) -> None:
        if not self.name.strip() or ":" in self.name:
            raise ValueError("name: must be a non-empty name without ':' (it is part of the event key)")
        if not any(t.strip() and not t.startswith("-") for t in self.terms):
            raise ValueError("terms: needs at least one term that is not an exclusion ('-term')")
        if not self.scopes:
            raise ValueError("scopes: needs at least one of title, url, domain, text")
        # Hosts are compared in lower case and without "www.", as domain_of gives them.
        domains = tuple(d.strip().lower().removeprefix("www.").rstrip(".") for d in self.domains)
        if not all(domains):
            raise ValueError("domains: an element is empty")
        object.__setattr__(self, "domains", domains)
        for i, term in enumerate(self.terms):
            body = term[1:] if term.startswith("-") else term
            if not body.strip() or body.strip() == "re:":
                raise ValueError(f"terms: element {i} is empty")
            try:
                compile_terms([body], regex=self.regex)
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
class _Mention:
    index: int
    spec: MentionSpec
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
    level_order = LevelOrder.NONE  # the level is the mention's name

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
        specs = self.options.mentions
        self._mentions = [_Mention(i, spec, frozenset(a.casefold() for a in spec.authors))
                          for i, spec in enumerate(specs)]
        # Two compilations: whole words fully in RE2 for ASCII text (most items), partly for the rest.
        self._ascii = TermPrograms(specs, ascii_text=True)
        self._unicode = TermPrograms(specs, ascii_text=False)

    def is_active(self) -> bool:
        return bool(self._mentions)

    def describe(self) -> str:
        return f"mentions {[m.name for m in self.options.mentions]}"

    def observe_item(self, item: Item, ctx: ItemContext) -> list[ItemMatch]:
        if item.deleted or item.dead:
            return []
        texts = self._scoped_texts(item)
        programs = self._ascii if all(text.isascii() for text in texts.values()) else self._unicode
        hit = programs.hit(texts)
        if not hit:
            return []
        chosen = programs.candidates(texts, hit)
        # A comment links to nothing itself: its `domains` test is on its thread's story, which the core
        # knows only once it has found the thread (for matches alone: a request, sometimes).
        in_thread = item.type == "comment"
        host = domain_of(item.url)
        out = []
        for mention in self._mentions if chosen is None else (self._mentions[i] for i in chosen):
            spec = mention.spec
            if mention.authors and (item.by or "").casefold() not in mention.authors:
                continue
            if spec.domains and not in_thread and not on_domain(host, spec.domains):
                continue
            found = self._find(programs, mention, texts, hit)
            if found is not None:
                out.append(self._match(item, spec, found, thread_domains=spec.domains if in_thread else ()))
        return out

    def _scoped_texts(self, item: Item) -> dict[str, bytes]:
        """The item's text for each scope any mention looks at: plain text (HN's HTML decoded once), as UTF-8.

        RE2 works on bytes; handing it ``str`` costs a conversion of the whole text (and of every offset)
        on each search, several times the search itself. Offsets become characters only for a snippet.
        """
        texts: dict[str, bytes] = {}
        scopes = self._ascii.prefilter
        if "title" in scopes and item.title:
            texts["title"] = item.title.encode("utf-8", "replace")
        if "url" in scopes and item.url:
            texts["url"] = item.url.encode("utf-8", "replace")
        if "domain" in scopes and (host := domain_of(item.url)):
            texts["domain"] = host.encode("utf-8", "replace")
        if "text" in scopes and item.text:
            texts["text"] = html_to_text(item.text).encode("utf-8", "replace")[:MAX_SCANNED_BYTES]
        return texts

    @staticmethod
    def _find(programs: TermPrograms, mention: _Mention, texts: dict[str, bytes],
              hit: Sequence[str]) -> _Found | None:
        """Where ``mention`` matches the item (first scope in its order), or None (no match, or excluded)."""
        spec = mention.spec
        whole = spec.whole_word
        negative, positive = programs.negative[mention.index], programs.positive[mention.index]
        if negative is not None and any(
            find_spans(negative, texts[scope], whole, limit=1) for scope in spec.scopes if scope in texts
        ):
            return None
        for scope in spec.scopes:
            if scope not in hit:
                continue
            raw = texts[scope]
            spans = find_spans(positive, raw, whole)
            if spans:
                return _Found(scope, *as_characters(raw, spans))
        return None

    @staticmethod
    def _match(item: Item, spec: MentionSpec, found: _Found, *, thread_domains: tuple[str, ...]) -> ItemMatch:
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
        return ItemMatch(level=spec.name, wording=wording, qualifier=spec.name, thread_domains=thread_domains)


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [MentionRule]
