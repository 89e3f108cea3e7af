"""The settings flamewatch reads, as dataclasses: each key's type and its one default.

Other modules that need a default (the monitor, the dispatcher's retry policy) take it from here, so a
default is written once. The ``[rules]`` table is kept as read: its keys belong to the loaded rule types
and are checked once plugins are loaded (:func:`flamewatch.config.configure_rules`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time as dtime
from typing import Annotated, Any

from ..crawl import DEFAULT_MAX_DEPTH, DEFAULT_MAX_ITEMS
from ..hn import DEFAULT_API_URL, STORY_LISTS
from ..stream import DEFAULT_MAX_GAP, DEFAULT_RETRIES, DEFAULT_RETRY_FOR
from ..notifier import Secret
from .values import Duration, HttpUrl, Levels, NonNegativeInt, OneOf, PositiveFloat, PositiveInt, TimeOfDay


@dataclass(frozen=True)
class HNSettings:
    """``[hn]``: where the Hacker News API is and how hard to use it."""

    api_url: HttpUrl = DEFAULT_API_URL
    timeout: Duration = 10.0
    retries: NonNegativeInt = 3
    max_inflight: PositiveInt = 32


@dataclass(frozen=True)
class WatchList:
    """One ``[[watch.lists]]`` table: an HN list and how many of its stories to count."""

    name: Annotated[str, OneOf(STORY_LISTS)] = field(metadata={"missing": 'which list, e.g. name = "showstories"'})
    top: PositiveInt = 30


@dataclass(frozen=True)
class WatchUser:
    """One ``[[watch.users]]`` table: an HN user whose stories and replies are watched."""

    name: str = field(metadata={"missing": 'the HN user name, e.g. name = "pg"'})
    front_page: bool = True  # "entered <list> at #N" when one of their stories enters a watched list
    rank_levels: Levels = (30, 10, 3, 1)  # ranks on topstories that fire (empty: none)
    replies: bool = True  # a new comment replying to any of their stories or comments
    levels: bool = True  # their new stories are followed, so comment_levels/point_levels fire on them

    def __post_init__(self) -> None:
        if not self.name.strip() or not all(c.isalnum() or c in "_-" for c in self.name):
            raise ValueError(f"name: not an HN user name: {self.name!r}")


@dataclass(frozen=True)
class WatchDomain:
    """One ``[[watch.domains]]`` table: a site whose stories are news when posted or on a watched list."""

    name: str = field(metadata={"missing": 'the domain, e.g. name = "example.com" (its subdomains too)'})
    posted: bool = True  # "was posted from example.com": every new story on HN, from the stream
    lists: bool = True  # "(example.com) entered the front page at #12": a story on a watched list

    def __post_init__(self) -> None:
        name = self.name.strip().lower().removeprefix("www.")
        if not name or "." not in name or not all(c.isalnum() or c in ".-" for c in name) or name != self.name:
            raise ValueError(f"name: not a lower-case domain name like \"example.com\": {self.name!r}")


@dataclass(frozen=True)
class WatchSettings:
    """``[watch]``: which lists, how many stories, how often; followed threads and users."""

    list: Annotated[str, OneOf(STORY_LISTS)] = "topstories"
    top: PositiveInt = 30
    period: Duration = 60.0
    cycle_timeout: Duration = 300.0
    shutdown_timeout: Duration = 10.0
    lists: tuple[WatchList, ...] = ()  # several lists at once (empty: just list/top above)
    follow: tuple[PositiveInt, ...] = ()  # story (or comment) ids counted every cycle
    follow_quiet: Duration = 2 * 86400.0  # a followed thread with no new comment for this long is dropped
    users: tuple[WatchUser, ...] = ()
    domains: tuple[WatchDomain, ...] = ()
    #: Follow HN's event stream between cycles (seconds, not a period, to an alert); polling covers
    #: whenever the stream is refused or down.
    live: bool = True

    def watched_lists(self) -> tuple[WatchList, ...]:
        """The lists counted each cycle: ``[[watch.lists]]``, or else the single ``list``/``top``."""
        return self.lists or (WatchList(self.list, self.top),)


@dataclass(frozen=True)
class CrawlSettings:
    """``[crawl]``: bounds on counting one story's comment tree."""

    max_depth: PositiveInt = DEFAULT_MAX_DEPTH
    max_items: PositiveInt = DEFAULT_MAX_ITEMS
    incremental: bool = True
    #: First counts from a story's comment list in one answer, kept when it agrees with ``descendants``
    #: (flamewatch.bootstrap); ``tree_url`` is the search API serving ``<tree_url>/search_by_date``.
    tree_bootstrap: bool = False
    tree_url: HttpUrl = "https://hn.algolia.com/api/v1"


@dataclass(frozen=True)
class StreamSettings:
    """``[stream]``: following every new item on HN (new comments join the watched trees from it)."""

    enabled: bool = True
    max_gap: PositiveInt = DEFAULT_MAX_GAP  # the most new items one poll fetches (more: a page a poll)
    retries: NonNegativeInt = DEFAULT_RETRIES  # polls that retry a missing item before skipping it
    retry_for: Duration = DEFAULT_RETRY_FOR  # ...and seconds it keeps being retried (live polls come often)


@dataclass(frozen=True)
class StoreSettings:
    """``[store]``: the database file and how long history is kept."""

    path: str = ""  # empty: the per-user default (store.default_store_path)
    # A server store shared by several instances (postgresql://...), or a secret holding that URL;
    # empty: the SQLite file at ``path``. Set, it wins over ``path``.
    url: str | Secret = ""
    history_days: PositiveFloat = 7.0


@dataclass(frozen=True)
class DeliverySettings:
    """``[delivery]``: the default deadline of one attempt and the retry policy."""

    timeout: Duration = 30.0
    retry_base: Duration = 5.0
    retry_cap: Duration = 3600.0
    max_age: Duration = 24 * 3600.0


@dataclass(frozen=True)
class HttpSettings:
    """``[http]``: the daemon's status page, API, metrics and health endpoints (see flamewatch.http).

    ``listen`` is ``"host:port"`` (``""`` turns the server off). Any host other than loopback needs
    ``token``: a bearer token every request for data must carry. ``allowed_hosts``: Host names answered
    besides loopback and the listen host (``["*"]``: any), against DNS rebinding.
    """

    listen: str = "127.0.0.1:8642"
    token: Secret | None = None
    allowed_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class PluginSettings:
    """``[plugins]``: where plugins come from and which are turned off."""

    dirs: tuple[str, ...] = ()
    disable: tuple[str, ...] = ()
    entry_points: bool = True


@dataclass(frozen=True)
class NotifierSettings:
    """The core part of one ``[[notifiers]]`` table; ``options`` holds the type's own keys, unchecked yet."""

    name: str
    type: str
    where: str  # "notifiers[2] (name)" -- used in error messages
    enabled: bool = True
    rules: tuple[str, ...] | None = None
    min_comments: NonNegativeInt = 0
    min_points: NonNegativeInt = 0
    min_level: NonNegativeInt = 0
    lists: tuple[str, ...] | None = None
    keywords: tuple[str, ...] = ()
    users: tuple[str, ...] | None = None  # only events about these watched users (replies, their stories)
    digest: Duration | None = None
    digest_at: TimeOfDay | None = None
    timeout: Duration | None = None
    concurrency: PositiveInt = 1
    quiet_hours: tuple[dtime, dtime] | None = None  # "22:00-07:00", read by load.py
    timezone: str | None = None  # an IANA zone for quiet_hours; None: the machine's local time
    group_wait: Duration | None = None
    template: str | None = None  # a Jinja2 template of the message (types with a template_format)
    max_per_hour: PositiveInt | None = None  # flood cap: past it, the rest waits for one digest
    options: dict[str, Any] = field(default_factory=dict)


#: The ``[[notifiers]]`` keys the core reads; every other key is the notifier type's own option.
CORE_NOTIFIER_KEYS = (
    "name", "type", "enabled", "rules", "min_comments", "min_points", "min_level", "lists", "keywords",
    "users", "digest", "digest_at", "timeout", "concurrency", "quiet_hours", "timezone", "group_wait",
    "template", "max_per_hour",
)

#: The ``[[notifiers]]`` tables used when the file has none.
DEFAULT_NOTIFIERS: tuple[dict[str, Any], ...] = ({"type": "console"},)


@dataclass(frozen=True)
class Config:
    """Everything flamewatch reads from its config file.

    ``rules`` is the ``[rules]`` table as written; :func:`~flamewatch.config.configure_rules` checks it
    against the loaded rule types and builds the rules.
    """

    source: str = "<built-in defaults>"
    hn: HNSettings = HNSettings()
    watch: WatchSettings = WatchSettings()
    crawl: CrawlSettings = CrawlSettings()
    stream: StreamSettings = StreamSettings()
    rules: dict[str, Any] = field(default_factory=dict)
    store: StoreSettings = StoreSettings()
    delivery: DeliverySettings = DeliverySettings()
    plugins: PluginSettings = PluginSettings()
    http: HttpSettings = HttpSettings()
    notifiers: tuple[NotifierSettings, ...] = ()


#: The sections read straight into a settings dataclass, in the order they are checked.
SECTIONS: dict[str, type[Any]] = {
    "hn": HNSettings,
    "watch": WatchSettings,
    "crawl": CrawlSettings,
    "stream": StreamSettings,
    "store": StoreSettings,
    "delivery": DeliverySettings,
    "plugins": PluginSettings,
    "http": HttpSettings,
}
