"""Run the configured rules over one story (or one new item) at a time, each rule isolated.

The engine is the core's side of the rule contract: it decides how much count history the cycle
fetches (the longest window any rule asked for), computes the velocity every event shows (over the
shortest such window, or one hour), and merges the rules' evaluations.

A rule is plugin code. One that raises is skipped for that story or item only: every other rule still
runs, and so does the cycle. Its failures are counted per rule in :class:`RuleErrors`, and the first
one of a cycle is logged naming the rule, its plugin and its file, so a broken third-party rule cannot
silence every alert and is easy to find.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

from ..events import StorySnapshot
from ..hn.item import Item
from .base import Evaluation, ItemContext, ItemMatch, Rule, RuleContext, comments_per_hour

log = logging.getLogger("flamewatch.rules")

#: The window of the velocity shown on events when no rule asks for a history window.
SHOWN_VELOCITY_WINDOW = 3600.0


class RuleErrors:
    """The rules that raised during one cycle: how often each did, its first failure logged once."""

    def __init__(self, owners: Mapping[str, str] | None = None) -> None:
        self.owners = dict(owners or {})
        #: Rule name -> the stories and items it raised on (and was skipped for) this cycle.
        self.counts: dict[str, int] = {}

    def failed(self, rule: Rule, exc: Exception, what: str) -> None:
        """Note that ``rule`` raised ``exc`` on ``what`` ("story 123", "item 456")."""
        name = rule.name or type(rule).__qualname__
        self.counts[name] = self.counts.get(name, 0) + 1
        if self.counts[name] > 1:
            return  # named once per cycle: a rule failing on every story must not flood the log
        text = str(exc).strip().splitlines()
        log.error(
            "rule %s (%s) raised %s: %s on %s; skipped there, the other rules go on (further failures of this "
            "rule this cycle are only counted)", name, self.origin(rule), type(exc).__name__,
            text[0] if text else "", what, exc_info=log.isEnabledFor(logging.DEBUG),
        )

    def origin(self, rule: Rule) -> str:
        """``plugin <name>, <file>`` for ``rule``, as far as it is known."""
        try:
            where = inspect.getsourcefile(type(rule)) or inspect.getfile(type(rule))
        except (TypeError, OSError):
            where = type(rule).__module__
        plugin = self.owners.get(rule.name)
        return f"plugin {plugin}, {where}" if plugin else where


class RuleEngine:
    """The active configured rules, evaluated together for one story at a time."""

    def __init__(self, rules: Sequence[Rule], *, owners: Mapping[str, str] | None = None) -> None:
        """``owners``: rule name -> the plugin offering it (named when the rule raises)."""
        self.rules = [rule for rule in rules if rule.is_active()]
        self.owners = dict(owners or {})
        windows = sorted({w for rule in self.rules for w in rule.history_windows()})
        #: Every history window the rules asked for, shortest first (empty: no history is needed).
        self.history_windows: tuple[float, ...] = tuple(windows)
        #: The active rules that look at new items from the stream.
        self.item_rules = [rule for rule in self.rules if rule.observes_items()]

    @property
    def history_span(self) -> float | None:
        """How far back the cycle must fetch a story's counts (the longest window), or None."""
        return self.history_windows[-1] if self.history_windows else None

    def errors(self) -> RuleErrors:
        """A fresh record of rule failures (one per cycle)."""
        return RuleErrors(self.owners)

    def evaluate(
        self,
        story: StorySnapshot,
        *,
        history: Sequence[tuple[float, int]] = (),
        growth: int | None = None,
        source_list: str = "topstories",
        now: float | None = None,
        errors: RuleErrors | None = None,
    ) -> Evaluation:
        """Events for ``story``; ``history`` holds its ``(unix time, comments)`` samples, oldest first.

        A rule that raises adds nothing for this story; it is noted in ``errors`` (logged when None).
        """
        when = now if now is not None else datetime.now(UTC).timestamp()
        samples = tuple(history)
        window = self.history_windows[0] if self.history_windows else SHOWN_VELOCITY_WINDOW
        ctx = RuleContext(
            now=when,
            growth=growth,
            source_list=source_list,
            history=samples,
            velocity=comments_per_hour(samples, when, window),
        )
        errors = errors if errors is not None else self.errors()
        out = Evaluation()
        for rule in self.rules:
            try:
                out.extend(rule.evaluate(story, ctx))
            except Exception as exc:  # plugin code may raise anything; the other rules still run
                errors.failed(rule, exc, f"story {story.id}")
        return out

    def observe_item(
        self, item: Item, ctx: ItemContext, errors: RuleErrors | None = None
    ) -> list[tuple[Rule, ItemMatch]]:
        """Every rule's matches for one new item (a rule that raises adds none, noted in ``errors``)."""
        errors = errors if errors is not None else self.errors()
        found: list[tuple[Rule, ItemMatch]] = []
        for rule in self.item_rules:
            try:
                found.extend((rule, match) for match in rule.observe_item(item, ctx))
            except Exception as exc:  # as in evaluate: isolate the rule, keep the others
                errors.failed(rule, exc, f"item {item.id}")
        return found
