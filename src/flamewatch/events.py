"""The values that travel from the rules to the notifiers: a story snapshot and an event.

Both are frozen dataclasses that round-trip through JSON (``to_dict`` / ``from_dict``), because
every event is written to the outbox before it is sent and may be sent again after a restart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .eventkeys import EventKey, EventKind, LevelOrder, parse_key, story_key
from .hn.item import domain_of

#: Version of the JSON shape produced by :meth:`Event.to_dict` (webhook bodies carry it too).
EVENT_SCHEMA_VERSION = 1

HN_ITEM_URL = "https://news.ycombinator.com/item?id={}"
#: Hacker News itself: where an event that is not about a story (a source gone stale) links to.
HN_HOME = "https://news.ycombinator.com/"
#: The story id of an event that is about no story (HN item ids start at 1). Outbox rows have always
#: stored such events with it, so it keeps meaning "no story" in old rows and new.
NO_STORY = 0


@dataclass(frozen=True, slots=True)
class StorySnapshot:
    """What we knew about one story when an event fired.

    ``comments`` is the number HN shows: comments that are neither deleted nor dead.
    ``partial`` is true when part of the tree could not be fetched, so ``comments`` is a lower bound.
    ``lists`` maps each watched list the story is on to its rank there (empty for a followed thread on none).
    All text fields come from Hacker News and are untrusted: escape them for every channel.
    """

    id: int
    title: str
    comments: int
    score: int = 0
    url: str | None = None
    by: str | None = None
    time: int | None = None
    descendants: int | None = None
    partial: bool = False
    rank: int | None = None
    #: Every watched list the story is on this cycle, with its rank there (``{"topstories": 4}``); ``rank``
    #: is its rank on the first watched list, for compatibility.
    lists: dict[str, int] = field(default_factory=dict, hash=False)

    @property
    def is_story(self) -> bool:
        """False for :data:`SITE`, the stand-in of an event about no story: it has no discussion page."""
        return self.id > NO_STORY

    @property
    def hn_url(self) -> str:
        """The link to the story's discussion page on Hacker News (HN's front page for :data:`SITE`: there
        is no item 0 to link to)."""
        return HN_ITEM_URL.format(self.id) if self.is_story else HN_HOME

    @property
    def link(self) -> str:
        """The story's own link, or the discussion page for text posts (Ask HN and friends)."""
        return self.url or self.hn_url

    @property
    def domain(self) -> str | None:
        """The host the story links to, lower case and without ``www.``; None for text posts."""
        return domain_of(self.url)


#: The ``story`` of an event about no story but Hacker News itself (a source gone stale): channels show its
#: title and link to HN's front page, and no counts or discussion (:attr:`Event.about_story`).
SITE = StorySnapshot(id=NO_STORY, title="Hacker News", comments=0, url=HN_HOME)


@dataclass(frozen=True, slots=True)
class Wording:
    """How an event reads, given by the rule that fired it and stored with the event.

    Kept in the event (and so in the outbox and webhook JSON) so that it still reads well after a
    restart, or after the plugin that defined the rule was uninstalled; notifiers never switch on rule
    names. All of it is plain text (escape it for your channel):

    * ``summary``: a short phrase without the title, starting with a capital: ``"Reached 500 comments"``;
    * ``detail``: an optional aside shown after the summary: ``"(threshold 100)"``, or ``""``;
    * ``headline``: the lower-case sentence tail after the title: ``"reached 500 comments (512 now)"``;
    * ``emoji``: a shortcode hint without colons (``"speech_balloon"``) that chat notifiers may show;
    * ``snippet``: an optional one-line quote of what matched (a mention), ``""`` when none;
    * ``marks``: ``(start, end)`` character spans of ``snippet`` to highlight; each notifier renders them
      its own safe way (:func:`flamewatch.text.render_marked`).
    """

    summary: str
    headline: str
    detail: str = ""
    emoji: str = "bell"
    snippet: str = ""
    marks: tuple[tuple[int, int], ...] = ()


#: Marks an event built without wording; it gets :func:`legacy_wording` when constructed.
_UNWORDED = Wording("", "")


@dataclass(frozen=True, slots=True)
class Subject:
    """The item an event is about when that is not the story itself: a reply, a mentioning comment.

    ``excerpt`` is plain text (HN's HTML already turned into text) and untrusted: escape it for every
    channel. ``hn_url`` links to the item on Hacker News.
    """

    id: int
    type: str = "comment"
    by: str | None = None
    excerpt: str = ""
    parent: int | None = None
    time: int | None = None

    @property
    def hn_url(self) -> str:
        """The link to this item on Hacker News."""
        return HN_ITEM_URL.format(self.id)


@dataclass(frozen=True, slots=True)
class Event:
    """A threshold crossed by one story, fired once per ``key``.

    ``key`` is stable across cycles and restarts (made by :mod:`flamewatch.eventkeys`, e.g.
    ``"<story id>:<rule>:<level>"``): receivers can use it to drop duplicates, since delivery is
    at-least-once.
    ``rule`` names the rule that fired (``comments``, ``points``, ``velocity``, ``keyword`` or a plugin's).
    ``level`` is the threshold reached (a keyword for keyword rules); ``value`` is what was measured.
    ``velocity`` is comments per hour over the shortest window a rule watches (one hour when none does),
    when the history allows computing it; ``growth`` is how many comments the story gained since the
    previous cycle, when known. ``wording`` is how the rule phrases the event (see :class:`Wording`).
    ``subject`` is the item the event is about when it is not the story (a reply, a mention), and then
    ``story`` is the thread it belongs to. ``level_order`` is how the rule's levels order (its
    :attr:`Rule.level_order <flamewatch.Rule.level_order>`): a better level of the same rule and story
    supersedes this one.
    """

    key: str
    rule: str
    level: int | str
    value: float
    story: StorySnapshot
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    source_list: str = "topstories"
    velocity: float | None = None
    growth: int | None = None
    wording: Wording = _UNWORDED
    subject: Subject | None = None
    level_order: LevelOrder = LevelOrder.HIGHER

    def __post_init__(self) -> None:
        if self.wording is _UNWORDED:
            object.__setattr__(self, "wording", legacy_wording(self.rule, self.level, self.value))

    @staticmethod
    def make_key(story_id: int, rule: str, level: int | str) -> str:
        """The stable key of the event ``rule`` reaching ``level`` on story ``story_id``
        (:func:`flamewatch.eventkeys.story_key`)."""
        return story_key(story_id, rule, level)

    @property
    def about_story(self) -> bool:
        """Whether this event is about a story (or an item in one). False for an event about HN itself (a
        source gone stale): its ``story`` is :data:`SITE`, which has no counts, rank or discussion page to
        show, and which no two such events share as a thread."""
        return self.story.is_story

    @property
    def parsed_key(self) -> EventKey:
        """The key taken apart: its kind (story, rank, entered, reply, mention...) and what it names."""
        return parse_key(self.key)

    def label(self) -> str:
        """The level this event fired, in a few words, whatever its kind: ``comments 100``, ``rank #1``,
        ``rank top 10``, ``entered topstories``, ``reply to alice``, ``mention python``."""
        parsed = self.parsed_key
        if parsed.kind is EventKind.REPLY:
            return f"reply to {self.level}"
        if parsed.kind is EventKind.ITEM:
            return f"{self.rule} {self.level}"
        return parsed.label()

    def supersedes(self, other: Event) -> bool:
        """Whether this event is better news about the same thing than ``other``: same story and rule, a
        level that orders, and a better one by the rule's :class:`LevelOrder`. Item events never do."""
        return (self.subject is None and other.subject is None and self.about_story
                and self.story.id == other.story.id and self.rule == other.rule
                and self.level_order is other.level_order and self.level_order.better(self.level, other.level))

    def headline(self) -> str:
        """What happened, without the title: ``"reached 500 comments (512 now)"`` (plain text)."""
        return self.wording.headline

    def describe(self) -> str:
        """One plain-text line: the title and :meth:`headline` (not escaped: escape it for your channel)."""
        return f"{self.story.title} {self.headline()}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this event (the webhook ``data`` and the outbox row)."""
        # What dataclasses.asdict gives, built by hand: asdict deep-copies every value (the datetime
        # through copy's reduce protocol), about ten times the cost, for a first cycle's hundreds of events.
        data = _fields(self)
        data["story"] = story = _fields(self.story)
        story["lists"] = dict(self.story.lists)
        story["hn_url"] = self.story.hn_url
        data["at"] = self.at.isoformat()
        data["wording"] = _fields(self.wording)
        if self.subject is not None:
            data["subject"] = subject = _fields(self.subject)
            subject["hn_url"] = self.subject.hn_url
        data["schema_version"] = EVENT_SCHEMA_VERSION
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild an event written by :meth:`to_dict` (unknown keys are ignored).

        Rows written before events carried their wording get :func:`legacy_wording`.
        """
        story_fields = set(StorySnapshot.__dataclass_fields__)
        story = StorySnapshot(**{k: v for k, v in data["story"].items() if k in story_fields})
        raw_wording = data.get("wording")
        wording = _UNWORDED
        if isinstance(raw_wording, dict) and isinstance(raw_wording.get("summary"), str):
            wording_fields = set(Wording.__dataclass_fields__) - {"marks"}
            marks = raw_wording.get("marks")
            wording = Wording(**{k: str(v) for k, v in raw_wording.items() if k in wording_fields},
                              marks=_read_marks(marks))
        subject = None
        if isinstance(raw_subject := data.get("subject"), dict):
            subject_fields = set(Subject.__dataclass_fields__)
            subject = Subject(**{k: v for k, v in raw_subject.items() if k in subject_fields})
        return cls(
            key=data["key"],
            rule=data["rule"],
            level=data["level"],
            value=data["value"],
            story=story,
            at=datetime.fromisoformat(data["at"]),
            source_list=data.get("source_list", "topstories"),
            velocity=data.get("velocity"),
            growth=data.get("growth"),
            wording=wording,
            subject=subject,
            level_order=_read_order(data),
        )


def _read_order(data: dict[str, Any]) -> LevelOrder:
    """The level order written with an event; rows from before events carried one get the order their
    rule had then (rank: smaller is better; everything else: bigger)."""
    try:
        return LevelOrder(data["level_order"])
    except (KeyError, ValueError):
        return LevelOrder.LOWER if data.get("rule") == "rank" else LevelOrder.HIGHER


def superseding(events: Sequence[Event]) -> list[Event | None]:
    """For each of ``events``, the best event among them that supersedes it, or None when none does.

    The one decision behind "announce only the best level": a rule reporting several levels at once,
    and the dispatcher taking several rows of one story together (a group, a digest, quiet hours, a
    retry), both keep the events mapped to None and close the others as passed or superseded.
    """
    best: list[Event] = []
    for event in events:
        for i, kept in enumerate(best):
            if event.supersedes(kept):
                best[i] = event
                break
            if kept.supersedes(event):
                break
        else:
            best.append(event)
    return [next((b for b in best if b.supersedes(event)), None) for event in events]


def _read_marks(raw: Any) -> tuple[tuple[int, int], ...]:
    """Marks from JSON (lists of two ints); anything else is dropped rather than failing the row."""
    if not isinstance(raw, list):
        return ()
    return tuple((int(m[0]), int(m[1])) for m in raw
                 if isinstance(m, list) and len(m) == 2 and all(isinstance(x, int) for x in m))


def legacy_wording(rule: str, level: int | str, value: float) -> Wording:
    """The wording events had before rules gave it: for outbox rows written by older versions.

    This is a frozen copy of the old phrasing, on purpose: the built-in rules own their wording now and
    may change it, but a row written back then should read as it did.
    """
    shown = f"{level:,}" if isinstance(level, int) else str(level)
    if rule == "comments":
        return Wording(f"Reached {shown} comments", f"reached {level} comments ({int(value)} now)",
                       emoji="speech_balloon")
    if rule == "points":
        return Wording(f"Reached {shown} points", f"reached {level} points ({int(value)} now)", emoji="arrow_up")
    if rule == "velocity":
        return Wording(f"{value:,.0f} comments an hour", f"is getting {value:.0f} comments an hour (threshold {level})",
                       detail=f"(threshold {shown})", emoji="fire")
    if rule == "keyword":
        return Wording("Matches keyword", f"matches keyword {level!r}", detail=f"“{level}”", emoji="mag")
    return Wording(rule, f"triggered {rule} at {level} ({value:g})", detail=f"reached {shown} ({value:g})")


@dataclass(frozen=True, slots=True)
class CycleStats:
    """What one watcher cycle did, handed to the ``flamewatch_cycle_done`` hook and logged.

    ``requests`` counts HTTP requests to the HN API (item and list fetches, retries included);
    ``errors`` counts items that could not be fetched; ``partial`` counts stories whose count is a
    lower bound because of them; ``skipped_ticks`` is how many ticks were skipped so far because a
    cycle overran its period. ``new_items`` is how many new HN items the stream followed this cycle;
    ``counted`` holds every story counted this cycle (id, title, comments, score, rank, partial) from the
    list named ``list_name``, so a plugin can export the counts; ``rule_errors`` names the rules that raised.
    """

    cycle: int
    started_at: datetime
    elapsed: float
    stories: int
    requests: int
    errors: int
    partial: int
    events: int
    skipped_ticks: int = 0
    failed: str | None = None
    new_items: int = 0
    list_name: str = ""
    counted: tuple[StorySnapshot, ...] = ()
    #: (rule, how many stories or items it raised on this cycle) for each rule that raised; it was
    #: skipped there and every other rule went on.
    rule_errors: tuple[tuple[str, int], ...] = ()
    #: Sources that stopped changing for longer than ``[rules] stale_after`` (``maxitem``, a list), each
    #: as a reason: ``/-/ready`` and the status page name them.
    stale: tuple[str, ...] = ()


def _fields(value: Event | StorySnapshot | Wording | Subject) -> dict[str, Any]:
    """A dataclass's fields by name, in order, the values as they are (shallow)."""
    return {name: getattr(value, name) for name in value.__dataclass_fields__}
