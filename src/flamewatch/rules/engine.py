"""Run the configured rules over one story at a time.

The engine is the core's side of the rule contract: it decides how much count history the monitor
fetches (the longest window any rule asked for), computes the velocity every event shows (over the
shortest such window, or one hour), and merges the rules' evaluations.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..events import StorySnapshot
from ..hn.item import Item
from .base import Evaluation, ItemContext, ItemMatch, Rule, RuleContext, comments_per_hour

#: The window of the velocity shown on events when no rule asks for a history window.
SHOWN_VELOCITY_WINDOW = 3600.0


class RuleEngine:
    """The active configured rules, evaluated together for one story at a time."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = [rule for rule in rules if rule.is_active()]
        windows = sorted({w for rule in self.rules for w in rule.history_windows()})
        #: Every history window the rules asked for, shortest first (empty: no history is needed).
        self.history_windows: tuple[float, ...] = tuple(windows)
        #: The active rules that look at new items from the stream.
        self.item_rules = [rule for rule in self.rules if rule.observes_items()]

    @property
    def history_span(self) -> float | None:
        """How far back the monitor must fetch a story's counts (the longest window), or None."""
        return self.history_windows[-1] if self.history_windows else None

    def evaluate(
        self,
        story: StorySnapshot,
        *,
        history: Sequence[tuple[float, int]] = (),
        growth: int | None = None,
        source_list: str = "topstories",
        now: float | None = None,
    ) -> Evaluation:
        """Events for ``story``; ``history`` holds its ``(unix time, comments)`` samples, oldest first."""
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
        out = Evaluation()
        for rule in self.rules:
            out.extend(rule.evaluate(story, ctx))
        return out

    def observe_item(self, item: Item, ctx: ItemContext) -> list[tuple[Rule, ItemMatch]]:
        """Every rule's matches for one new item."""
        return [(rule, match) for rule in self.item_rules for match in rule.observe_item(item, ctx)]
