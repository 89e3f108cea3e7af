"""Silences: "send nothing about story 123 (or domain, user, term) for the next 6 hours", as in Alertmanager.

``flamewatch silence add story:123 --for 6h --comment "..."`` writes one to the store, in the JSON state
value ``core:silences`` (no table of its own); a running daemon re-reads it every cycle, and its dispatcher
checks every delivery against the active silences when it takes the rows for sending. A silenced delivery is
never sent: its row's state becomes ``silenced``, with the silence (:meth:`Silence.describe`) as its
``ref``, and ``flamewatch outbox``, the page and ``/api`` say so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from .events import Event

if TYPE_CHECKING:
    from .store import Store

__all__ = ["KINDS", "STATE_KEY", "STATE_NAMESPACE", "Silence", "SilenceList", "parse_matcher"]

#: Where silences live: ``store.state_for(STATE_NAMESPACE)`` under ``STATE_KEY``.
STATE_NAMESPACE = "core:silences"
STATE_KEY = "silences"

Kind = Literal["story", "domain", "user", "term"]
KINDS: tuple[Kind, ...] = ("story", "domain", "user", "term")

#: Expired silences stay listed this long (``silence list`` shows them), then are forgotten.
KEEP_EXPIRED = 7 * 86400.0

#: The daemon writes the list back at least this often, so the store's pruning of plugin state values not
#: written for ``history_days`` never takes a long silence away.
REFRESH_WRITE_EVERY = 86400.0


def parse_matcher(text: str) -> tuple[Kind, str]:
    """``("story", "123")`` from ``"story:123"``; ValueError (one line) for anything else."""
    kind, sep, value = text.partition(":")
    value = value.strip()
    if not sep or kind not in KINDS or not value:
        raise ValueError(f"silence {text!r}: expected story:ID, domain:DOMAIN, user:NAME or term:TEXT")
    if kind == "story" and not re.fullmatch(r"[1-9]\d{0,15}", value):
        raise ValueError(f"silence {text!r}: a story id is a positive whole number")
    if kind == "domain":
        value = value.lower().removeprefix("www.")
        if not re.fullmatch(r"[a-z0-9.-]+\.[a-z0-9-]+", value):
            raise ValueError(f"silence {text!r}: expected a domain such as example.com")
    return kind, value


@dataclass(frozen=True)
class Silence:
    """One silence: events matching ``kind``/``value`` are not sent between ``created_at`` and ``expires_at``."""

    id: str
    kind: Kind
    value: str
    created_at: float
    expires_at: float
    comment: str = ""

    @property
    def matcher(self) -> str:
        """``story:123`` as typed."""
        return f"{self.kind}:{self.value}"

    def active(self, now: float) -> bool:
        """Whether the silence holds at ``now``."""
        return self.created_at <= now < self.expires_at

    def matches(self, event: Event) -> bool:
        """Whether ``event`` is about what this silence names.

        ``story``: the event's thread; ``domain``: the thread's link host or a subdomain of it; ``user``: the
        thread's author or the author of the item the event is about; ``term``: a case-insensitive
        substring of the title, the item's text or the matched snippet.
        """
        story = event.story
        if self.kind == "story":
            return str(story.id) == self.value
        if self.kind == "domain":
            host = story.domain
            return host is not None and (host == self.value or host.endswith("." + self.value))
        if self.kind == "user":
            authors = {story.by, event.subject.by if event.subject else None}
            return self.value.casefold() in {a.casefold() for a in authors if a}
        needle = self.value.casefold()
        texts = [story.title, event.wording.snippet, event.subject.excerpt if event.subject else ""]
        return any(needle in text.casefold() for text in texts if text)

    def describe(self) -> str:
        """This silence in a few words (a silenced outbox row's ``ref``): ``s1 domain:example.com (why)``."""
        comment = f" ({self.comment})" if self.comment else ""
        return f"{self.id} {self.matcher}{comment}"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Silence | None:
        """A silence from stored JSON, or None when the entry is damaged (it is skipped, not fatal)."""
        try:
            kind, value = parse_matcher(f"{data['kind']}:{data['value']}")
            return cls(id=str(data["id"]), kind=kind, value=value, created_at=float(data["created_at"]),
                       expires_at=float(data["expires_at"]), comment=str(data.get("comment", "")))
        except (KeyError, TypeError, ValueError):
            return None


@dataclass
class SilenceList:
    """The stored silences, as read at one moment; :meth:`load` and :meth:`save` go through the store."""

    silences: list[Silence]
    next_id: int = 1
    written_at: float = 0.0

    @classmethod
    async def load(cls, store: Store) -> SilenceList:
        """The silences in ``store`` (an empty list when there are none)."""
        raw = await store.state_for(STATE_NAMESPACE).get(STATE_KEY)
        if not isinstance(raw, dict):
            return cls([])
        entries = raw.get("silences")
        silences = [s for s in (Silence.from_dict(e) for e in entries if isinstance(e, dict))
                    if s is not None] if isinstance(entries, list) else []
        next_id = raw.get("next_id")
        written_at = raw.get("written_at")
        return cls(silences, next_id if isinstance(next_id, int) and next_id > 0 else len(silences) + 1,
                   float(written_at) if isinstance(written_at, (int, float)) else 0.0)

    async def save(self, store: Store, now: float) -> None:
        """Write the list back (expired silences older than :data:`KEEP_EXPIRED` are dropped)."""
        self.silences = [s for s in self.silences if s.expires_at > now - KEEP_EXPIRED]
        self.written_at = now
        await store.state_for(STATE_NAMESPACE).set(STATE_KEY, {
            "next_id": self.next_id,
            "written_at": now,
            "silences": [asdict(s) for s in self.silences],
        })

    def add(self, matcher: str, duration: float, comment: str, now: float) -> Silence:
        """A new silence from ``story:123``-style ``matcher``, active from ``now`` for ``duration`` seconds."""
        kind, value = parse_matcher(matcher)
        if duration <= 0:
            raise ValueError(f"silence {matcher!r}: --for must be more than zero")
        silence = Silence(f"s{self.next_id}", kind, value, now, now + duration, " ".join(comment.split()))
        self.next_id += 1
        self.silences.append(silence)
        return silence

    def expire(self, silence_id: str, now: float) -> Silence:
        """End silence ``silence_id`` now; KeyError (one line) when there is no such active silence."""
        for i, silence in enumerate(self.silences):
            if silence.id == silence_id and silence.expires_at > now:
                ended = Silence(silence.id, silence.kind, silence.value, silence.created_at, now, silence.comment)
                self.silences[i] = ended
                return ended
        raise KeyError(f"no active silence {silence_id!r} (see 'flamewatch silence list')")

    def active(self, now: float) -> list[Silence]:
        """The silences in force at ``now``."""
        return [s for s in self.silences if s.active(now)]


def silencing(silences: Iterable[Silence], event: Event, now: float) -> Silence | None:
    """The first active silence that matches ``event``, or None."""
    return next((s for s in silences if s.active(now) and s.matches(event)), None)


def describe(silences: Sequence[Silence], now: float) -> list[str]:
    """One line per silence for ``silence list``."""
    from datetime import datetime

    lines = []
    for s in silences:
        until = datetime.fromtimestamp(s.expires_at).astimezone().strftime("%Y-%m-%d %H:%M")
        state = "active" if s.active(now) else "expired"
        comment = f"  {s.comment}" if s.comment else ""
        lines.append(f"  {s.id:5} {state:7} {s.matcher:30} until {until}{comment}")
    return lines
