"""What a rule is: a :class:`Rule` subclass, offered by a plugin through ``flamewatch_rule_types``.

A rule turns one story's snapshot (plus a little context) into events, purely and synchronously: no I/O,
no clock of its own, no memory of earlier cycles. Whether an event's key already fired is the store's
business, not the rule's, so a rule simply reports every level it sees crossed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from ..eventkeys import LevelOrder, item_key, story_key
from ..events import Event, StorySnapshot, Wording, superseding
from ..hn.item import Item


@dataclass(frozen=True)
class RuleContext:
    """What a rule may look at besides the story.

    ``now`` is the cycle's time in Unix seconds (the unit of ``history`` times); ``growth`` the comments
    gained since the previous cycle (None when unknown); ``source_list`` the HN list the story was found
    in; ``history`` the story's ``(unix time, comments)`` samples, oldest first, covering the longest
    window any loaded rule asked for through :meth:`Rule.history_windows` (empty when none did, or when
    this count is partial); ``velocity`` the comments per hour the core shows on every event.
    """

    now: float = field(default_factory=lambda: datetime.now(UTC).timestamp())
    growth: int | None = None
    source_list: str = "topstories"
    history: tuple[tuple[float, int], ...] = ()
    velocity: float | None = None

    @property
    def at(self) -> datetime:
        """``now`` as an aware datetime, the time events are stamped with."""
        return datetime.fromtimestamp(self.now, UTC)


@dataclass(frozen=True)
class ItemContext:
    """What a rule may look at besides a new item from the stream: the time, and whether the item belongs
    to a watched thread (``thread`` is that story's id, or None when unknown without a request)."""

    now: float
    thread: int | None = None


@dataclass(frozen=True)
class ItemMatch:
    """One thing a rule saw in a new item; the core turns it into an event about that item.

    The event's key is made by :func:`flamewatch.eventkeys.item_key`: ``"<rule>:<item id>"``, or
    ``"<rule>:<qualifier>:<item id>"`` with a ``qualifier`` (``"mention:python:123"``; ``key``, the older
    way to say it, replaces everything after ``"<rule>:"``), its ``subject`` the item, and its ``story``
    the thread the item belongs to (fetched only for matches). ``value`` is what was measured (e.g. the story's rank).
    ``thread_domains``, when not empty, keeps the match only if that story links to one of these domains
    or a subdomain of one (lower case): a filter on the thread, which a rule cannot see from the item.
    """

    level: int | str
    wording: Wording
    value: float = 0.0
    key: str | None = None
    thread_domains: tuple[str, ...] = ()
    qualifier: str | None = None

    def event_key(self, rule: str, item_id: int) -> str:
        """The key of the event this match becomes, for rule ``rule`` and item ``item_id``."""
        return f"{rule}:{self.key}" if self.key is not None else item_key(rule, item_id, self.qualifier)


@dataclass
class Evaluation:
    """What the rules say about one story this cycle."""

    announce: list[Event] = field(default_factory=list)
    passed: list[Event] = field(default_factory=list)  # lower levels crossed together with an announced one

    def extend(self, other: Evaluation) -> None:
        """Add ``other``'s events to this evaluation."""
        self.announce.extend(other.announce)
        self.passed.extend(other.passed)


@dataclass(frozen=True)
class NoRuleOptions:
    """The ``Options`` of a rule that reads no keys from ``[rules]``."""


class Rule:
    """Base class of every rule, built-in or from a plugin.

    A subclass sets ``name`` (what events carry as ``Event.rule`` and notifier routes name in
    ``rules = [...]``), ``level_order`` when more is not better news (a rank: #1 beats the top 10; names
    such as keywords: :attr:`LevelOrder.NONE <flamewatch.LevelOrder.NONE>`), and an ``Options``
    dataclass whose fields are its keys in the ``[rules]`` table
    (typed with the same hints as notifier options: ``flamewatch.Levels``, ``Duration``, ...; raise
    ``ValueError("key: problem")`` in ``__post_init__`` for checks across fields). Give every field a
    default that leaves the rule idle unless the user asks for it, and say so in :meth:`is_active`.

    :meth:`evaluate` returns an :class:`Evaluation`; :meth:`event` builds an event carrying the rule's own
    :class:`~flamewatch.Wording`, and :meth:`announce_highest` does the usual thing for a rule with levels.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: How this rule's levels order: which one supersedes another, what ``min_level`` lets through.
    level_order: ClassVar[LevelOrder] = LevelOrder.HIGHER
    Options: ClassVar[type[Any]] = NoRuleOptions

    def __init__(self, options: Any = None) -> None:
        self.options = options if options is not None else self.Options()

    def is_active(self) -> bool:
        """Whether the options give this rule anything to do (an idle rule is not evaluated)."""
        return True

    def history_windows(self) -> Sequence[float]:
        """The windows (seconds) of count history this rule needs in ``RuleContext.history``."""
        return ()

    def describe(self) -> str:
        """The configured rule in a few words, for ``flamewatch check``."""
        return self.name

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        """The events this rule sees for ``story`` now. Must not block or do I/O."""
        return Evaluation()

    def observe_item(self, item: Item, ctx: ItemContext) -> Sequence[ItemMatch]:
        """What this rule sees in one new item from the stream (every new item on HN, once, in id order).

        Override it for rules about comments and people (replies, mentions). Keep it quick: it runs for
        about 11,000 items a day. Must not block or do I/O; the core fetches the thread for a match.
        """
        return ()

    @classmethod
    def observes_items(cls) -> bool:
        """True when the type overrides :meth:`observe_item` (the core then feeds it the stream)."""
        return cls.observe_item is not Rule.observe_item

    # --- helpers for subclasses ---------------------------------------------------------------

    def event(self, story: StorySnapshot, ctx: RuleContext, level: int | str, value: float, wording: Wording) -> Event:
        """An event of this rule reaching ``level`` (measured ``value``) on ``story``, worded by ``wording``."""
        return self.event_with_key(story_key(story.id, self.name, level), story, ctx, level, value, wording)

    def event_with_key(self, key: str, story: StorySnapshot, ctx: RuleContext, level: int | str, value: float,
                       wording: Wording, *, source_list: str | None = None) -> Event:
        """Like :meth:`event`, for a key of another shape (made by :mod:`flamewatch.eventkeys`)."""
        return Event(
            key=key,
            rule=self.name,
            level=level,
            value=value,
            story=story,
            at=ctx.at,
            source_list=ctx.source_list if source_list is None else source_list,
            velocity=ctx.velocity,
            growth=ctx.growth,
            wording=wording,
            level_order=self.level_order,
        )

    def announce_highest(
        self,
        story: StorySnapshot,
        ctx: RuleContext,
        levels: Sequence[int],
        value: float,
        wording: Callable[[int], Wording],
    ) -> Evaluation:
        """Events for the ``levels`` that ``value`` reached (by :attr:`level_order`): the best announced,
        the others passed.

        When a story is first seen past several levels at once (flamewatch started late, or the thread
        exploded between cycles), announcing each would be noise; the others are recorded as fired
        instead, so they are never announced later either.
        """
        crossed = self.level_order.crossed(levels, value)
        return best_announced([self.event(story, ctx, level, value, wording(level)) for level in crossed])


def best_announced(events: Sequence[Event]) -> Evaluation:
    """``events`` as an evaluation: those no other one supersedes announced, the rest passed (recorded as
    fired, never sent). The same decision as the dispatcher's supersede (:func:`~flamewatch.events.superseding`)."""
    out = Evaluation()
    for event, better in zip(events, superseding(events), strict=True):
        (out.announce if better is None else out.passed).append(event)
    return out


def comments_per_hour(history: Sequence[tuple[float, int]], now: float, window: float) -> float | None:
    """Comments per hour over the last ``window`` seconds from ``(time, comments)`` samples.

    Uses the oldest sample inside the window as the base and the newest sample as the latest, by their
    times: in live mode a live recount and a cycle record samples of one story at once, so they may come
    in out of time order. The base must be at least a tenth of the window older than the latest (two
    samples a few seconds apart cannot extrapolate to a wild rate). None when there is no such base.
    """
    if not history:
        return None
    ordered = sorted(history, key=_at)  # linear on samples already in order, the usual case
    latest_at, latest = ordered[-1]
    base = next(((t, c) for t, c in ordered if now - t <= window), None)
    if base is None:
        return None
    base_at, base_count = base
    span = latest_at - base_at
    if span <= 0 or span < window / 10:  # never a division by zero or by a negative span
        return None
    return max(0.0, (latest - base_count) * 3600.0 / span)


def _at(sample: tuple[float, int]) -> float:
    return sample[0]
