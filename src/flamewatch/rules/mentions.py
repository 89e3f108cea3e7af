"""The ``mention`` rule: ``[[rules.mentions]]`` tables, each a set of terms looked for in every new HN item.

Each table names a mention (``name``), its ``terms`` (phrases, case-insensitive, whole words unless
``whole_word = false``; ``re:...`` or ``regex = true`` for regular expressions; ``-term`` excludes an item),
where to look (``scopes``: ``title``, ``url``, ``domain``, ``text``) and optional ``authors`` / ``domains``
filters. The rule sees every new item from the stream, so it covers all of HN, not only watched threads.

Patterns run on RE2 (the ``google-re2`` package): its matching time is linear in the text, whatever the
pattern, so a pathological pattern such as ``(a+)+$`` cannot stall the event loop. RE2 has no
backreferences or lookaround; such a pattern is refused at ``check`` with one line naming the mention.
Whole words are checked on each match in Python (see :func:`find_spans`), which keeps the RE2 programs
small; for a regular expression the test applies to the match RE2 found.

Speed: all mentions' positive terms are also compiled into one prefilter per scope, so an item that
mentions nothing (nearly every item) costs one search per scope, whatever the number of mentions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import re2  # type: ignore[import-untyped]

from flamewatch import LevelOrder, Item, ItemContext, ItemMatch, Rule, Wording, hookimpl
from flamewatch.hn.item import domain_of, on_domain
from flamewatch.hn.text import html_to_text

__all__ = ["MentionRule", "MentionSpec", "Scope", "compile_terms", "find_spans", "snippet_around"]

Scope = Literal["title", "url", "domain", "text"]


#: Characters of context kept on each side of the first match in a snippet.
SNIPPET_CONTEXT = 60

def _options(max_mem: int, *, capture: bool) -> Any:
    options = re2.Options()
    # Without captures a search is one DFA pass; with them RE2 also runs a slower submatch engine.
    options.never_capture = not capture
    options.log_errors = False  # RE2 would print parse errors to stderr; we report them as one line instead
    options.max_mem = max_mem  # a huge alternation or repetition fails to compile instead of eating memory
    return options


#: One mention's terms get 8 MiB (RE2's default); the prefilter holding every mention's terms gets more.
#: Only whole-match spans are used, so no program needs captures.
_OPTIONS = _options(8 << 20, capture=False)
_PREFILTER_OPTIONS = _options(256 << 20, capture=False)


def _compile(pattern: str, options: Any = _OPTIONS) -> Any:
    """An RE2 program for ``pattern`` (ValueError with RE2's reason when it does not compile)."""
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def term_source(term: str, *, regex: bool) -> str:
    """The pattern text of one term, without the whole-word test (see :func:`find_spans`).

    A term written ``re:...`` (or any term when ``regex``) is a regular expression, else a literal phrase
    (runs of spaces in it match any whitespace).
    """
    if term.startswith("re:"):
        body, regex = term[3:], True
    else:
        body = term
    if not regex:
        body = r"\s+".join(re2.escape(part) for part in body.split())
    return body


def compile_terms(terms: Sequence[str], *, regex: bool = False, options: Any = None) -> Any:
    """Terms as one case-insensitive RE2 program (ValueError when a pattern does not compile)."""
    return _compile("(?i)" + "|".join(f"(?:{term_source(t, regex=regex)})" for t in terms), options or _OPTIONS)


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
        self._mentions: list[_Compiled] = []
        by_scope: dict[str, list[str]] = {}
        owners: dict[str, list[int]] = {}  # per scope: the mention of each term in by_scope's order
        for index, spec in enumerate(self.options.mentions):
            sources = [term_source(t, regex=spec.regex) for t in spec.positive]
            self._mentions.append(_Compiled(
                spec=spec,
                positive=compile_terms(spec.positive, regex=spec.regex),
                negative=compile_terms(spec.negative, regex=spec.regex) if spec.negative else None,
                authors=frozenset(a.casefold() for a in spec.authors),
            ))
            for scope in spec.scopes:
                by_scope.setdefault(scope, []).extend(sources)
                owners.setdefault(scope, []).extend([index] * len(sources))
        # One program per scope with every mention's terms: most items match none and stop here. It ignores
        # whole words (a superset test: cheap, one DFA pass without captures). Should it be too large, that
        # scope goes without (None): every mention is tried, just slower.
        self._prefilter: dict[str, Any] = {}
        # And per scope an RE2 set of the same terms, which says in one pass which terms occur: only their
        # mentions are tried. The prefilter stays the judge of "nothing here": a set whose DFA runs out of
        # memory answers "no match" where a regex falls back to a slower engine.
        self._sets: dict[str, tuple[Any, list[int]]] = {}
        for scope, sources in by_scope.items():
            try:
                self._prefilter[scope] = _compile("(?i)" + "|".join(f"(?:{s})" for s in sources), _PREFILTER_OPTIONS)
            except ValueError:
                self._prefilter[scope] = None
            term_set = _term_set(sources)
            if term_set is not None:
                self._sets[scope] = (term_set, owners[scope])

    def is_active(self) -> bool:
        return bool(self._mentions)

    def describe(self) -> str:
        return f"mentions {[m.name for m in self.options.mentions]}"

    def observe_item(self, item: Item, ctx: ItemContext) -> list[ItemMatch]:
        if item.deleted or item.dead:
            return []
        texts = self._scoped_texts(item)
        hit = [scope for scope, text in texts.items()
               if (prefilter := self._prefilter[scope]) is None or prefilter.search(text)]
        if not hit:
            return []
        # A comment links to nothing itself: its `domains` test is on its thread's story, which the core
        # knows only once it has found the thread (for matches alone: a request, sometimes).
        in_thread = item.type == "comment"
        host = domain_of(item.url)
        out = []
        for mention in self._candidates(texts, hit):
            spec = mention.spec
            if mention.authors and (item.by or "").casefold() not in mention.authors:
                continue
            if spec.domains and not in_thread and not on_domain(host, spec.domains):
                continue
            found = self._find(mention, texts, hit)
            if found is not None:
                out.append(self._match(item, spec, found, thread_domains=spec.domains if in_thread else ()))
        return out

    def _candidates(self, texts: dict[Scope, bytes], hit: Sequence[Scope]) -> list[_Compiled]:
        """The mentions with a term in a scope that hit, in config order (every mention when unsure)."""
        chosen: set[int] = set()
        for scope in hit:
            entry = self._sets.get(scope)
            if entry is None:
                return self._mentions
            term_set, owner = entry
            found = term_set.Match(texts[scope])
            if not found:  # the prefilter saw a term here: the set gave up, so trust nothing it says
                return self._mentions
            chosen.update(owner[i] for i in found)
        return [self._mentions[i] for i in sorted(chosen)]

    def _scoped_texts(self, item: Item) -> dict[Scope, bytes]:
        """The item's text for each scope any mention looks at: plain text (HN's HTML decoded once), as UTF-8.

        RE2 works on bytes; handing it ``str`` costs a conversion of the whole text (and of every offset)
        on each search, several times the search itself. Offsets become characters only for a snippet.
        """
        texts: dict[Scope, bytes] = {}
        if "title" in self._prefilter and item.title:
            texts["title"] = item.title.encode("utf-8", "replace")
        if "url" in self._prefilter and item.url:
            texts["url"] = item.url.encode("utf-8", "replace")
        if "domain" in self._prefilter and (host := domain_of(item.url)):
            texts["domain"] = host.encode("utf-8", "replace")
        if "text" in self._prefilter and item.text:
            texts["text"] = html_to_text(item.text).encode("utf-8", "replace")
        return texts

    @staticmethod
    def _find(mention: _Compiled, texts: dict[Scope, bytes], hit: Sequence[Scope]) -> _Found | None:
        """Where ``mention`` matches the item (first scope in its order), or None (no match, or excluded)."""
        spec = mention.spec
        whole = spec.whole_word
        if mention.negative is not None and any(
            find_spans(mention.negative, texts[scope], whole, limit=1) for scope in spec.scopes if scope in texts
        ):
            return None
        for scope in spec.scopes:
            if scope not in hit:
                continue
            raw = texts[scope]
            spans = find_spans(mention.positive, raw, whole)
            if spans:
                return _Found(scope, *_as_characters(raw, spans))
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


def _term_set(sources: Sequence[str]) -> Any | None:
    """An RE2 set of ``sources`` (case-insensitive), or None when it cannot be built."""
    try:
        term_set = re2.Set.SearchSet(_PREFILTER_OPTIONS)
        for source in sources:
            term_set.Add("(?i)" + source)
        term_set.Compile()
    except (re2.error, ValueError, TypeError, RuntimeError):
        return None
    return term_set


def _as_characters(raw: bytes, spans: Sequence[tuple[int, int]]) -> tuple[str, tuple[tuple[int, int], ...]]:
    """The text and spans in characters, from UTF-8 ``raw`` and byte spans (identical for ASCII)."""
    text = raw.decode("utf-8", "replace")
    if len(text) == len(raw):
        return text, tuple(spans)

    def char(offset: int) -> int:
        return len(raw[:offset].decode("utf-8", "replace"))

    return text, tuple((char(s), char(e)) for s, e in spans)


def find_spans(program: Any, raw: bytes, whole_word: bool, *, limit: int = 20) -> tuple[tuple[int, int], ...]:
    """Byte spans of ``program``'s matches in ``raw``, in order (at most ``limit``); empty matches skipped.

    With ``whole_word`` a match counts only when it neither starts nor ends inside a word (a letter or
    digit of any script, or ``_``, on the other side). RE2 has no lookaround and its ``\\b`` is ASCII-only,
    and guards written as Unicode classes made programs slow, so the test is done here on the match.
    """
    spans: list[tuple[int, int]] = []
    pos = 0
    while len(spans) < limit and pos <= len(raw):
        match = program.search(raw, pos)
        if match is None:
            break
        start, end = match.span()
        if end > start and (not whole_word or _bounded(raw, start, end)):
            spans.append((start, end))
            pos = end
        else:
            pos = start + 1
    return tuple(spans)


def _bounded(raw: bytes, start: int, end: int) -> bool:
    """Whether ``raw[start:end]`` has no word character just outside it on a side where it has one inside."""
    inside_first, inside_last = _char_at(raw, start), _char_before(raw, end)
    before, after = _char_before(raw, start), _char_at(raw, end)
    # "C++" ends with "+": a following letter does not make it part of a word, as with \b.
    return not (_wordy(before) and _wordy(inside_first)) and not (_wordy(after) and _wordy(inside_last))


def _wordy(ch: str) -> bool:
    return bool(ch) and (ch.isalnum() or ch == "_")


def _char_at(raw: bytes, offset: int) -> str:
    if offset >= len(raw):
        return ""
    end = offset + 1
    while end < len(raw) and raw[end] & 0xC0 == 0x80:  # UTF-8 continuation bytes
        end += 1
    return raw[offset:end].decode("utf-8", "replace")


def _char_before(raw: bytes, offset: int) -> str:
    if offset <= 0:
        return ""
    start = offset - 1
    while start > 0 and raw[start] & 0xC0 == 0x80:
        start -= 1
    return raw[start:offset].decode("utf-8", "replace")


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [MentionRule]
