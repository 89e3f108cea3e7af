"""What travels through the cycle's stages (:class:`CycleBatch`) and the settings they read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..config.model import CrawlSettings, StoreSettings, WatchSettings

if TYPE_CHECKING:
    from ..config import Config
    from ..crawl import CrawlResult
    from ..events import StorySnapshot
    from ..hn import Item
    from ..notifier import StateWrite
    from ..rules import Evaluation
    from ..store import CountSample

__all__ = ["CycleBatch", "PipelineSettings"]


@dataclass(frozen=True)
class PipelineSettings:
    """What the cycle's stages need from the config; the defaults are the config's own.

    One object for the whole chain: a reload builds a new one (:meth:`from_config`) and a new pipeline
    from it, so nothing reloadable is left half applied.
    """

    list_name: str = WatchSettings.list
    top: int = WatchSettings.top
    max_depth: int = CrawlSettings.max_depth
    max_items: int = CrawlSettings.max_items
    history_seconds: float = StoreSettings.history_days * 86400.0
    #: Several lists at once, as (list, top) in config order; empty: just ``list_name``/``top``.
    lists: tuple[tuple[str, int], ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> PipelineSettings:
        """The settings of ``config``."""
        return cls(
            list_name=config.watch.list,
            top=config.watch.top,
            max_depth=config.crawl.max_depth,
            max_items=config.crawl.max_items,
            history_seconds=config.store.history_days * 86400.0,
            lists=tuple((w.name, w.top) for w in config.watch.lists),
        )

    def watched_lists(self) -> tuple[tuple[str, int], ...]:
        """The (list, top) pairs counted each cycle."""
        return self.lists or ((self.list_name, self.top),)


@dataclass
class CycleBatch:
    """What one watcher cycle has found so far; each cycle stage fills in its part."""

    number: int
    now: float  #: the cycle's time (Unix seconds) on the App's clock
    ids: list[int] = field(default_factory=list)  #: the watched story ids, in list order
    ranks: dict[int, dict[str, int]] = field(default_factory=dict)  #: story id -> {list: rank}
    new_items: list[Item] = field(default_factory=list)  #: new items for the item rules (and a backfill)
    streamed: int = 0  #: how many new items the stream followed
    results: list[CrawlResult] = field(default_factory=list)  #: one count per watched id
    previous: dict[int, CountSample] = field(default_factory=dict)  #: each story's count before this cycle
    #: The cycle's samples, not yet in the store (record writes them with the cycle's state, in one transaction).
    samples: list[CountSample] = field(default_factory=list)
    #: State the stages changed (decline's memory, the stale sources), not yet in the store: record writes
    #: it in the samples' transaction, after the cycle's events are published.
    states: list[StateWrite] = field(default_factory=list)
    snapshots: list[StorySnapshot] = field(default_factory=list)  #: the stories counted this cycle
    evaluations: list[Evaluation] = field(default_factory=list)  #: what the rules said
    events: int = 0  #: new events recorded
    #: Rule name -> how many stories or items it raised on this cycle (it was skipped for those).
    rule_errors: dict[str, int] = field(default_factory=dict)
    #: A live batch (between cycles, from HN's event stream): new items now, or a recount of ``ids``.
    live: bool = False
    #: Live: the watched stories the new items joined (their story rules are due again).
    touched: set[int] = field(default_factory=set)
    #: Live: ``maxitem`` as the event stream announced it (the poll need not ask again).
    maxitem: int | None = None
    #: Live: watched lists as the event stream announced them (name -> ids, whole lists, untrimmed).
    listed: dict[str, list[int]] = field(default_factory=dict)
    #: The sources that stopped changing (``maxitem``, a list), each as a reason ``/-/ready`` names.
    stale: list[str] = field(default_factory=list)

    def source_of(self, story_id: int) -> str:
        """The list an event about ``story_id`` names: the first watched list it is on, else "followed"."""
        on = self.ranks.get(story_id)
        return next(iter(on)) if on else "followed"
