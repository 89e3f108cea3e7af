"""Mention terms compiled for RE2, and the search that finds them (the ``mention`` rule's engine).

Every search runs in RE2 (linear in the text, whatever the pattern). A whole-word phrase carries RE2's
``\\b`` on each side where it has an ASCII letter, digit or ``_``, so the one pass that looks for the
terms also rejects "ai" in "said"; matches are tested in Python only to be sure, once found. ``\\b`` knows
only ASCII, which is exact on ASCII text (most of HN) but not around a non-ASCII letter ("é", or the
Kelvin sign that ``(?i)k`` also matches): text that is not all ASCII is searched with programs that
leave ``\\b`` off the edges those folds could reach, and the Python test (:func:`find_spans`) decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]

__all__ = ["MAX_REJECTED", "TermPrograms", "TermSpec", "as_characters", "compile_terms", "find_spans",
           "term_source"]

#: A search gives up after this many matches the whole-word test rejected: part of the bound on the
#: time one item can take, whatever its text and the patterns.
MAX_REJECTED = 64


def _options(max_mem: int) -> Any:
    options = re2.Options()
    options.never_capture = True  # only whole-match spans are used: one DFA pass, no submatch engine
    options.log_errors = False  # RE2 would print parse errors to stderr; we report them as one line instead
    options.max_mem = max_mem  # a huge alternation or repetition fails to compile instead of eating memory
    return options


#: One mention's terms get 8 MiB (RE2's default); a prefilter holding every mention's terms gets more.
_OPTIONS = _options(8 << 20)
_PREFILTER_OPTIONS = _options(256 << 20)


def _compile(pattern: str, options: Any = _OPTIONS) -> Any:
    """An RE2 program for ``pattern`` (ValueError with RE2's reason when it does not compile)."""
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid pattern"
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise ValueError(str(reason)) from None


def term_source(term: str, *, regex: bool, whole_word: bool = False, ascii_text: bool = False) -> str:
    """The pattern text of one term.

    A term written ``re:...`` (or any term when ``regex``) is a regular expression, else a literal phrase
    (runs of spaces in it match any whitespace). A whole-word phrase gets ``\\b`` where it is exact (see
    the module's docstring): on every ASCII word edge for ``ascii_text``, else not beside "k" or "s".
    """
    if term.startswith("re:"):
        body, regex = term[3:], True
    else:
        body = term
    if regex:
        return body
    parts = body.split()
    pattern = r"\s+".join(re2.escape(part) for part in parts)
    if not whole_word:
        return pattern
    head = r"\b" if _guardable(parts[0][0], ascii_text) else ""
    tail = r"\b" if _guardable(parts[-1][-1], ascii_text) else ""
    return head + pattern + tail


def _guardable(ch: str, ascii_text: bool) -> bool:
    """Whether ``\\b`` beside ``ch`` says what the Unicode whole-word test says: ``ch`` is an ASCII word
    character and, unless the text is ASCII, not one a non-ASCII letter folds to (the Kelvin sign to
    "k", the long s to "s")."""
    return ch.isascii() and (ch.isalnum() or ch == "_") and (ascii_text or ch not in "kKsS")


def compile_terms(terms: Sequence[str], *, regex: bool = False, options: Any = None, whole_word: bool = False,
                  ascii_text: bool = False) -> Any:
    """Terms as one case-insensitive RE2 program (ValueError when a pattern does not compile)."""
    sources = (term_source(t, regex=regex, whole_word=whole_word, ascii_text=ascii_text) for t in terms)
    return _compile("(?i)" + "|".join(f"(?:{source})" for source in sources), options or _OPTIONS)


class TermSpec(Protocol):
    """What the programs need of a mention (:class:`~flamewatch.rules.mentions.MentionSpec` has it)."""

    @property
    def positive(self) -> tuple[str, ...]: ...
    @property
    def negative(self) -> tuple[str, ...]: ...
    @property
    def scopes(self) -> Sequence[str]: ...
    @property
    def regex(self) -> bool: ...
    @property
    def whole_word(self) -> bool: ...


class TermPrograms:
    """Every mention's terms compiled for one kind of text (all ASCII, or not).

    Per mention a program of its terms and one of its exclusions; per scope a prefilter of every
    mention's terms (most items match none and stop there: one DFA pass) and an RE2 set of the same
    terms, which says in the same kind of pass which terms occur, so only their mentions are tried.
    """

    def __init__(self, specs: Sequence[TermSpec], *, ascii_text: bool) -> None:
        self.positive: list[Any] = []
        self.negative: list[Any | None] = []
        by_scope: dict[str, list[str]] = {}
        owners: dict[str, list[int]] = {}  # per scope: the mention of each term in by_scope's order
        for index, spec in enumerate(specs):
            words = {"regex": spec.regex, "whole_word": spec.whole_word, "ascii_text": ascii_text}
            self.positive.append(compile_terms(spec.positive, **words))
            self.negative.append(compile_terms(spec.negative, **words) if spec.negative else None)
            sources = [term_source(t, **words) for t in spec.positive]
            for scope in spec.scopes:
                by_scope.setdefault(scope, []).extend(sources)
                owners.setdefault(scope, []).extend([index] * len(sources))
        #: Per scope; None when too large to compile: every mention is tried then, just slower.
        self.prefilter: dict[str, Any | None] = {}
        self._sets: dict[str, tuple[Any, list[int]]] = {}
        for scope, sources in by_scope.items():
            try:
                self.prefilter[scope] = _compile("(?i)" + "|".join(f"(?:{s})" for s in sources), _PREFILTER_OPTIONS)
            except ValueError:
                self.prefilter[scope] = None
            term_set = _term_set(sources)
            if term_set is not None:
                self._sets[scope] = (term_set, owners[scope])

    def hit(self, texts: Mapping[str, bytes]) -> list[str]:
        """The scopes whose text may hold a term (the prefilter found one, or there is none)."""
        return [scope for scope, text in texts.items()
                if (prefilter := self.prefilter[scope]) is None or prefilter.search(text)]

    def candidates(self, texts: Mapping[str, bytes], hit: Sequence[str]) -> list[int] | None:
        """Indexes of the mentions with a term in a scope that hit, in order; None: try every mention.

        The prefilter stays the judge of "nothing here": a set whose DFA runs out of memory answers "no
        match" where a regex falls back to a slower engine, so an empty answer after a hit means unsure.
        """
        chosen: set[int] = set()
        for scope in hit:
            entry = self._sets.get(scope)
            if entry is None:
                return None
            term_set, owner = entry
            found = term_set.Match(texts[scope])
            if not found:
                return None
            chosen.update(owner[i] for i in found)
        return sorted(chosen)


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


def as_characters(raw: bytes, spans: Sequence[tuple[int, int]]) -> tuple[str, tuple[tuple[int, int], ...]]:
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
    digit of any script, or ``_``, on the other side); after :data:`MAX_REJECTED` rejected matches the
    search stops with what it found.
    """
    spans: list[tuple[int, int]] = []
    pos = rejected = 0
    while len(spans) < limit and pos <= len(raw) and rejected < MAX_REJECTED:
        match = program.search(raw, pos)
        if match is None:
            break
        start, end = match.span()
        if end > start and (not whole_word or _bounded(raw, start, end)):
            spans.append((start, end))
            pos = end
        else:
            pos = start + 1
            rejected += 1
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
