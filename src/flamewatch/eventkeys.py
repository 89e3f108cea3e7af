"""The one place that makes and reads event keys, and says how a rule's levels order.

Every event has a stable key: the store records it so the event never fires twice, and receivers get it
to drop duplicates. The shapes are fixed (keys already in users' stores must keep meaning the same
event), and only this module writes or parses them:

* ``story``: ``<story>:<rule>:<level>`` (:func:`story_key`: comments, points, velocity, keyword,
  followed threads, plugin story rules);
* ``rank``: ``rank:<story>:<level>`` (:func:`rank_key`; level 1 is #1);
* ``entered``: ``rank:<story>:<list>:entered`` (:func:`entered_key`);
* ``reply``: ``reply:<item>``, ``mention``: ``mention:<name>:<item>``, ``item``: any other item rule's
  ``<rule>[:<qualifier>]:<item>`` (:func:`item_key`);
* ``test``: ``test:<unix seconds>`` (:func:`sample_key`, ``flamewatch notify-test``);
* the decline of a watched story (:func:`decline_key`, rule ``decline``): ``left:<story>:<list>:<since>``,
  ``dropped:<story>:<list>:<since>`` and ``flagged:<story>:<list>:<since>`` (``since``: when this stay on
  the list began, so a story that comes back and leaves again is news again), ``dead:<story>``,
  ``deleted:<story>`` and ``retitled:<story>:<hash of the new title>``;
* ``domain``: ``domain:<story>:posted`` and ``domain:<story>:<list>:entered`` (:func:`domain_key`: a
  story from a ``[[watch.domains]]`` site was posted, entered a list);
* ``stale``: ``stale:<source>:<since>:start`` and ``...:end`` (:func:`stale_key`: ``maxitem`` or a list
  stopped changing at ``since``, and started again).

:class:`LevelOrder` is a rule's declaration of which of two of its levels is the better news: for
comments more is better, for a rank less is (#1 beats the top 10), and words (keywords, mention names)
do not order at all. Supersede, ``min_level``, "announce only the best level", digests, the page and the
API all ask it, so no caller compares levels itself.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DECLINE_KINDS",
    "EventKey",
    "EventKind",
    "LevelOrder",
    "decline_key",
    "domain_key",
    "entered_key",
    "item_key",
    "parse_key",
    "rank_key",
    "sample_key",
    "stale_key",
    "story_key",
]


class LevelOrder(enum.StrEnum):
    """How one rule's levels order; the value travels with every event (``Event.level_order``)."""

    #: More is better: 500 comments is bigger news than 100 (comments, points, velocity).
    HIGHER = "higher"
    #: Less is better: rank #1 is bigger news than the top 10.
    LOWER = "lower"
    #: Levels are names (keywords, mentions, replies to a user): none supersedes another.
    NONE = "none"

    def orders(self, level: int | str) -> bool:
        """Whether ``level`` takes part in ordering (a number, under an order that is not NONE)."""
        return self is not LevelOrder.NONE and isinstance(level, int) and not isinstance(level, bool)

    def better(self, a: int | str, b: int | str) -> bool:
        """True when level ``a`` is strictly better news than level ``b``; False when they do not order."""
        if not (self.orders(a) and self.orders(b)):
            return False
        assert isinstance(a, int) and isinstance(b, int)
        return a > b if self is LevelOrder.HIGHER else a < b

    def at_least(self, level: int | str, floor: int) -> bool:
        """Whether ``level`` is as good as ``floor`` or better (``min_level``); unordered levels always are."""
        if not self.orders(level):
            return True
        assert isinstance(level, int)
        return level >= floor if self is LevelOrder.HIGHER else level <= floor

    def crossed(self, levels: Iterable[int], value: float) -> list[int]:
        """The ``levels`` that ``value`` has reached, worst first and best last (empty for NONE)."""
        if self is LevelOrder.HIGHER:
            return sorted(level for level in levels if value >= level)
        if self is LevelOrder.LOWER:
            return sorted((level for level in levels if value <= level), reverse=True)
        return []

    def sort_key(self, level: int | str) -> tuple[int, float, str]:
        """A key that lists levels worst first (the order they are usually reached in), names last."""
        if not self.orders(level):
            return (1, 0.0, str(level))
        assert isinstance(level, int)
        return (0, float(level if self is LevelOrder.HIGHER else -level), "")


class EventKind(enum.StrEnum):
    """What an event is about, read from its key (see the module's table)."""

    STORY = "story"
    RANK = "rank"
    ENTERED = "entered"
    REPLY = "reply"
    MENTION = "mention"
    ITEM = "item"
    TEST = "test"
    LEFT = "left"
    DROPPED = "dropped"
    FLAGGED = "flagged"
    DEAD = "dead"
    DELETED = "deleted"
    RETITLED = "retitled"
    STALE = "stale"
    DOMAIN = "domain"


#: The kinds of a watched story's decline (rule ``decline``); their levels do not order.
DECLINE_KINDS = frozenset({EventKind.LEFT, EventKind.DROPPED, EventKind.FLAGGED, EventKind.DEAD,
                           EventKind.DELETED, EventKind.RETITLED})


@dataclass(frozen=True)
class EventKey:
    """A key taken apart: ``kind``, the ``rule`` that fired, the ``level`` as written in the key (a list
    name for ``entered``, the qualifier for item kinds, "" when the key holds none), and the story or item
    it names (None when the key does not say)."""

    kind: EventKind
    rule: str
    level: str = ""
    story: int | None = None
    item: int | None = None

    def label(self) -> str:
        """The fired level in a few words, for the page and ``status``: ``comments 100``, ``rank #1``,
        ``rank top 10``, ``entered topstories``, ``reply 4567``, ``mention python``."""
        if self.kind is EventKind.RANK:
            return "rank #1" if self.level == "1" else f"rank top {self.level}"
        if self.kind is EventKind.ENTERED:
            return f"entered {self.level}"
        if self.kind is EventKind.DOMAIN:
            return f"domain {self.level}"
        if self.kind is EventKind.STALE:
            return f"stale {self.level}"
        if self.kind in DECLINE_KINDS:
            return f"{self.kind.value} {self.level}".rstrip()
        if self.kind in (EventKind.REPLY, EventKind.MENTION, EventKind.ITEM):
            return f"{self.rule} {self.level or self.item}"
        return f"{self.rule} {self.level}".rstrip()


def story_key(story_id: int, rule: str, level: int | str) -> str:
    """The key of ``rule`` reaching ``level`` on story ``story_id``: ``"<story>:<rule>:<level>"``."""
    return f"{story_id}:{rule}:{level}"


def rank_key(story_id: int, level: int) -> str:
    """The key of story ``story_id`` reaching front-page rank ``level`` (1: #1, 10: the top 10)."""
    return f"rank:{story_id}:{level}"


def entered_key(story_id: int, list_name: str) -> str:
    """The key of story ``story_id`` entering the HN list ``list_name`` (``topstories``, ``showstories``)."""
    return f"rank:{story_id}:{list_name}:entered"


def item_key(rule: str, item_id: int, qualifier: str | None = None) -> str:
    """The key of item rule ``rule`` matching item ``item_id``: ``"reply:<item>"``, or with a qualifier
    (one rule, several things it looks for) ``"mention:<name>:<item>"``."""
    return f"{rule}:{item_id}" if qualifier is None else f"{rule}:{qualifier}:{item_id}"


def decline_key(kind: EventKind, story_id: int, *qualifiers: str | int) -> str:
    """The key of a watched story's decline: ``<kind>:<story>[:<qualifier>...]``.

    ``left``, ``dropped`` and ``flagged`` take the list and when the stay on it began; ``retitled`` a
    hash of the new title; ``dead`` and ``deleted`` nothing (they happen once).
    """
    if kind not in DECLINE_KINDS:
        raise ValueError(f"decline_key: {kind.value!r} is not a decline kind")
    return ":".join((kind.value, str(story_id), *(str(q) for q in qualifiers)))


def domain_key(story_id: int, list_name: str | None = None) -> str:
    """The key of a story from a watched domain: posted (``list_name`` None), or entering ``list_name``."""
    return f"domain:{story_id}:posted" if list_name is None else f"domain:{story_id}:{list_name}:entered"


def stale_key(source: str, since: int, phase: str) -> str:
    """The key of source ``source`` (``maxitem``, a list) unchanged since ``since`` (Unix seconds): its
    ``phase`` is ``start`` (it went stale) or ``end`` (it changes again)."""
    if phase not in ("start", "end"):
        raise ValueError(f"stale_key: phase must be 'start' or 'end', got {phase!r}")
    return f"stale:{source}:{since}:{phase}"


def sample_key(at: float) -> str:
    """The key of a test event sent by ``flamewatch notify-test`` at Unix time ``at``."""
    return f"test:{int(at)}"


_DECLINE_HEADS = frozenset(kind.value for kind in DECLINE_KINDS)


def parse_key(key: str) -> EventKey:
    """``key`` taken apart. Never raises: a key of no known shape reads as an ``item`` event of its first
    part (keys written by other versions or plugins still show up somewhere sensible)."""
    head, _, rest = key.partition(":")
    if head.isdigit():
        rule, _, level = rest.partition(":")
        return EventKey(EventKind.STORY, rule, level, story=int(head))
    if head == "test":
        return EventKey(EventKind.TEST, "test", rest)
    if head == "rank":
        story, _, level = rest.partition(":")
        if story.isdigit() and level.isdigit():
            return EventKey(EventKind.RANK, "rank", level, story=int(story))
        if story.isdigit() and level.endswith(":entered"):
            return EventKey(EventKind.ENTERED, "rank", level.removesuffix(":entered"), story=int(story))
    if head == "domain":
        story, _, what = rest.partition(":")
        if story.isdigit() and (what == "posted" or what.endswith(":entered")):
            shown = "posted" if what == "posted" else "entered " + what.removesuffix(":entered")
            return EventKey(EventKind.DOMAIN, "domain", shown, story=int(story))
    if head == "stale":
        source, _, tail = rest.partition(":")
        since, _, phase = tail.partition(":")
        if since.isdigit() and phase in ("start", "end"):
            return EventKey(EventKind.STALE, "stale", f"{source} {phase}")
    if head in _DECLINE_HEADS:
        story, _, level = rest.partition(":")
        if story.isdigit():
            # The list is the level the page shows ("left topstories"); the stay's start is not.
            shown = level.partition(":")[0] if head != "retitled" else ""
            return EventKey(EventKind(head), "decline", shown, story=int(story))
    qualifier, _, item = rest.rpartition(":")
    kind = {"reply": EventKind.REPLY, "mention": EventKind.MENTION}.get(head, EventKind.ITEM)
    return EventKey(kind, head, qualifier, item=int(item) if item.isdigit() else None)
