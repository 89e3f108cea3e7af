"""The values that travel from the rules to the notifiers: a story snapshot and an event.

Both are frozen dataclasses that round-trip through JSON (``to_dict`` / ``from_dict``), because
every event is written to the outbox before it is sent and may be sent again after a restart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

#: Version of the JSON shape produced by :meth:`Event.to_dict` (webhook bodies carry it too).
EVENT_SCHEMA_VERSION = 1

HN_ITEM_URL = "https://news.ycombinator.com/item?id={}"


@dataclass(frozen=True, slots=True)
class StorySnapshot:
    """What we knew about one story when an event fired.

    ``comments`` is the number HN shows: comments that are neither deleted nor dead.
    ``partial`` is true when part of the tree could not be fetched, so ``comments`` is a lower bound.
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

    @property
    def hn_url(self) -> str:
        """The link to the story's discussion page on Hacker News."""
        return HN_ITEM_URL.format(self.id)

    @property
    def link(self) -> str:
        """The story's own link, or the discussion page for text posts (Ask HN and friends)."""
        return self.url or self.hn_url


@dataclass(frozen=True, slots=True)
class Event:
    """A threshold crossed by one story, fired once per ``key``.

    ``key`` is stable across cycles and restarts (``"<story id>:<rule>:<level>"``): receivers can use it
    to drop duplicates, since delivery is at-least-once.
    ``rule`` names the rule that fired (``comments``, ``points``, ``velocity``, ``keyword`` or a plugin's).
    ``level`` is the threshold reached (a keyword for keyword rules); ``value`` is what was measured.
    ``velocity`` is comments per hour over the rule window, when the history allows computing it;
    ``growth`` is how many comments the story gained since the previous cycle, when known.
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

    @staticmethod
    def make_key(story_id: int, rule: str, level: int | str) -> str:
        """The stable key of the event ``rule`` reaching ``level`` on story ``story_id``."""
        return f"{story_id}:{rule}:{level}"

    def headline(self) -> str:
        """What happened, without the title: ``"reached 500 comments (512 now)"`` (plain text)."""
        if self.rule == "comments":
            return f"reached {self.level} comments ({int(self.value)} now)"
        if self.rule == "points":
            return f"reached {self.level} points ({int(self.value)} now)"
        if self.rule == "velocity":
            return f"is getting {self.value:.0f} comments an hour (threshold {self.level})"
        if self.rule == "keyword":
            return f"matches keyword {self.level!r}"
        return f"triggered {self.rule} at {self.level} ({self.value:g})"

    def describe(self) -> str:
        """One plain-text line: the title and :meth:`headline` (not escaped: escape it for your channel)."""
        return f"{self.story.title} {self.headline()}"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of this event (the webhook ``data`` and the outbox row)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["schema_version"] = EVENT_SCHEMA_VERSION
        data["story"]["hn_url"] = self.story.hn_url
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        """Rebuild an event written by :meth:`to_dict` (unknown keys are ignored)."""
        story_fields = set(StorySnapshot.__dataclass_fields__)
        story = StorySnapshot(**{k: v for k, v in data["story"].items() if k in story_fields})
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
        )


@dataclass(frozen=True, slots=True)
class CycleStats:
    """What one watcher cycle did, handed to the ``flamewatch_cycle_done`` hook and logged.

    ``requests`` counts HTTP requests to the HN API (item and list fetches, retries included);
    ``errors`` counts items that could not be fetched; ``partial`` counts stories whose count is a
    lower bound because of them; ``skipped_ticks`` is how many ticks were skipped so far because a
    cycle overran its period.
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
