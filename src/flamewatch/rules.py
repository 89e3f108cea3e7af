"""Rules turn a story's counts into threshold events with stable keys.

Each rule compares one measure against ascending levels. When a story is first seen above several
levels at once (flamewatch started late, or the thread exploded between cycles), only the highest
level is announced; the lower ones are returned as *already passed* so they are recorded as fired
and never announced later. Whether a key already fired is the store's business, not the rules'.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .events import Event, StorySnapshot

#: The rules flamewatch evaluates; notifier routes (``rules = [...]``) may name these.
RULE_NAMES = ("comments", "points", "velocity", "keyword")


@dataclass(frozen=True)
class VelocityRule:
    """Fire when a story gains at least ``level`` comments per hour over the last ``window`` seconds."""

    level: int
    window: float = 3600.0


@dataclass(frozen=True)
class RulesConfig:
    """Which levels each rule watches (empty disables a rule)."""

    comment_levels: tuple[int, ...] = (50, 100, 250, 500, 1000)
    points_levels: tuple[int, ...] = ()
    velocity: tuple[VelocityRule, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass
class Evaluation:
    """What the rules say about one story this cycle."""

    announce: list[Event] = field(default_factory=list)
    passed: list[Event] = field(default_factory=list)  # lower levels crossed together with an announced one


def _crossed(levels: Sequence[int], value: float) -> list[int]:
    return sorted(level for level in levels if value >= level)


class RuleEngine:
    """Evaluates the configured rules for one story at a time."""

    def __init__(self, config: RulesConfig) -> None:
        self.config = config
        self._keyword_patterns = [
            (kw, re.compile(rf"(?<!\w){re.escape(kw)}(?!\w)", re.IGNORECASE)) for kw in config.keywords
        ]

    def evaluate(
        self,
        story: StorySnapshot,
        *,
        velocities: dict[float, float] | None = None,
        growth: int | None = None,
        source_list: str = "topstories",
        now: datetime | None = None,
    ) -> Evaluation:
        """Events for ``story``. ``velocities`` maps a window (seconds) to comments/hour over it."""
        at = now or datetime.now(UTC)
        velocities = velocities or {}
        out = Evaluation()
        # The velocity shown on every event is the one over the shortest window we know.
        shown_velocity = velocities[min(velocities)] if velocities else None

        def make(rule: str, level: int | str, value: float) -> Event:
            return Event(
                key=Event.make_key(story.id, rule, level),
                rule=rule,
                level=level,
                value=value,
                story=story,
                at=at,
                source_list=source_list,
                velocity=shown_velocity,
                growth=growth,
            )

        for rule, levels, value in (
            ("comments", self.config.comment_levels, story.comments),
            ("points", self.config.points_levels, story.score),
        ):
            crossed = _crossed(levels, value)
            if crossed:
                out.announce.append(make(rule, crossed[-1], value))
                out.passed.extend(make(rule, level, value) for level in crossed[:-1])

        for vrule in self.config.velocity:
            rate = velocities.get(vrule.window)
            if rate is not None and rate >= vrule.level:
                event = make("velocity", vrule.level, rate)
                out.announce.append(event)

        for keyword, pattern in self._keyword_patterns:
            if pattern.search(story.title):
                out.announce.append(make("keyword", keyword, story.comments))
        return out


def comments_per_hour(history: Sequence[tuple[float, int]], now: float, window: float) -> float | None:
    """Comments per hour over the last ``window`` seconds from ``(time, comments)`` samples, oldest first.

    Uses the oldest sample inside the window as the base (needs one at least a tenth of the window old,
    so two samples a few seconds apart cannot extrapolate to a wild rate). None when there is no base.
    """
    if not history:
        return None
    latest_at, latest = history[-1]
    base = next(((t, c) for t, c in history if now - t <= window), None)
    if base is None:
        return None
    base_at, base_count = base
    span = latest_at - base_at
    if span < window / 10 or span <= 0:
        return None
    return max(0.0, (latest - base_count) * 3600.0 / span)
