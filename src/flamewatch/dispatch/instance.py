"""A notifier instance: one configured notifier, from its ``[[notifiers]]`` table to its last delivery.

The concept has one name everywhere: the config table is its :class:`~flamewatch.config.NotifierSettings`,
the store keys its outbox rows and state by the instance's name (column ``instance``), logs say
"notifier <name>", and at run time it is a :class:`NotifierInstance`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..config.model import DeliverySettings
from ..notifier import Notifier, NotifierContext
from .policies import DigestSchedule, QuietHours, Route

if TYPE_CHECKING:
    from ..config import NotifierSettings

__all__ = ["DEFAULT_TIMEOUT", "NotifierInstance"]

#: Seconds one send (or start, or close) may take when neither the instance nor ``[delivery]`` says.
DEFAULT_TIMEOUT = DeliverySettings.timeout


@dataclass(eq=False)
class NotifierInstance:
    """One notifier instance: its plugin type and checked options, where its events go, and how they are sent.

    It exists in two stages. :meth:`from_settings` builds it from a config table before anything opens
    (``flamewatch check`` describes it from there); :meth:`open` then creates the plugin's notifier
    object with the live session and state, and the :class:`~flamewatch.dispatch.Dispatcher` runs it.
    :meth:`of` wraps a notifier object that already exists (tests, embedding).
    """

    name: str
    notifier_type: type[Notifier]
    options: Any = field(repr=False)  # the plugin's own repr hides secrets; do not rely on it in ours
    route: Route = field(default_factory=Route)
    digest: DigestSchedule | None = None  #: None: each event is sent as soon as it is due
    timeout: float = DEFAULT_TIMEOUT
    concurrency: int = 1
    settings: NotifierSettings | None = field(default=None, repr=False)  #: its config table (None: built in code)
    quiet: QuietHours | None = None  #: a daily window with no sends (``quiet_hours``)
    group_wait: float | None = None  #: seconds events gather before going out together (``group_wait``)
    max_per_hour: int | None = None  #: the flood cap (``max_per_hour``); past it, one digest

    def __post_init__(self) -> None:
        self._notifier: Notifier | None = None
        # The dispatcher's bookkeeping for this instance (it owns them; nothing else should touch them).
        self.inflight: set[int] = set()  # outbox row ids being delivered now
        self.held: set[int] = set()  # row ids sent (or tried) whose outcome the store could not record yet
        self.wake = asyncio.Event()  # set when this instance's pump should look at the outbox again
        self.slots = asyncio.Semaphore(self.concurrency)
        self.group_until = 0.0  # when the open group (``group_wait``) goes out; 0: no group open
        self.sent_times: deque[float] = deque()  # when the messages of the last hour went (max_per_hour)
        self.flood_until = 0.0  # when the rows held by the flood cap go out as one digest; 0: not flooded
        self.count_from_store = True  # sent_times is read from the store before the flood cap's next use

    @property
    def batches(self) -> bool:
        """Whether due rows go out together as one message (a digest, a group, or what the flood cap holds)."""
        return self.digest is not None or self.group_wait is not None or self.flood_until > 0

    def not_before(self, now: float) -> float:
        """When an event published at ``now`` may first be sent: the digest's send time, the open group's
        (opening one if none is), and never inside quiet hours."""
        due = now
        if self.digest is not None:
            due = self.digest.next_after(now)
        elif self.group_wait is not None:
            if self.group_until <= now:
                self.group_until = now + self.group_wait
            due = self.group_until
        return self.quiet.not_before(due) if self.quiet is not None else due

    @classmethod
    def from_settings(
        cls,
        settings: NotifierSettings,
        notifier_type: type[Notifier],
        options: Any,
        *,
        default_timeout: float = DEFAULT_TIMEOUT,
    ) -> NotifierInstance:
        """The instance a ``[[notifiers]]`` table describes, given its resolved type and checked options."""
        return cls(
            name=settings.name,
            notifier_type=notifier_type,
            options=options,
            route=Route(
                rules=frozenset(settings.rules) if settings.rules is not None else None,
                min_comments=settings.min_comments,
                min_points=settings.min_points,
                min_level=settings.min_level,
                lists=frozenset(settings.lists) if settings.lists is not None else None,
                keywords=settings.keywords,
                users=frozenset(settings.users) if settings.users is not None else None,
            ),
            digest=(DigestSchedule(every=settings.digest, at=settings.digest_at)
                    if (settings.digest or settings.digest_at) else None),
            timeout=settings.timeout or default_timeout,
            concurrency=settings.concurrency,
            settings=settings,
            quiet=(QuietHours(settings.quiet_hours[0], settings.quiet_hours[1], settings.timezone)
                   if settings.quiet_hours else None),
            group_wait=settings.group_wait,
            max_per_hour=settings.max_per_hour,
        )

    @classmethod
    def of(
        cls,
        notifier: Notifier,
        route: Route | None = None,
        *,
        digest: DigestSchedule | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        concurrency: int = 1,
        quiet: QuietHours | None = None,
        group_wait: float | None = None,
    ) -> NotifierInstance:
        """An open instance around ``notifier``, an object already created."""
        instance = cls(notifier.name, type(notifier), notifier.options, route or Route(), digest, timeout, concurrency,
                       quiet=quiet, group_wait=group_wait)
        instance._notifier = notifier
        return instance

    @property
    def type_name(self) -> str:
        """The notifier type as configured (``type = ...``), or the class's own type name."""
        return self.settings.type if self.settings is not None else self.notifier_type.type_name

    @property
    def is_open(self) -> bool:
        """Whether the plugin's notifier object exists (see :meth:`open`)."""
        return self._notifier is not None

    @property
    def notifier(self) -> Notifier:
        """The plugin's notifier object; only once the instance is open."""
        if self._notifier is None:
            raise RuntimeError(f"notifier {self.name} is not open yet")
        return self._notifier

    def open(self, ctx: NotifierContext) -> Notifier:
        """Create the plugin's notifier object with ``ctx`` (plugin code: it may raise anything)."""
        if self._notifier is not None:
            raise RuntimeError(f"notifier {self.name} is already open")
        self._notifier = self.notifier_type(ctx, self.options)
        return self._notifier

    def describe(self) -> str:
        """Which events it takes and when it sends them, for ``flamewatch check``."""
        when = self.digest.describe() if self.digest else "immediately"
        if self.group_wait is not None and self.digest is None:
            when = f"grouped within {self.group_wait:g}s"
        cap = f", at most {self.max_per_hour} an hour, then one digest" if self.max_per_hour else ""
        return f"{self.route.describe()}, {when}{cap}" + (f", {self.quiet.describe()}" if self.quiet else "")
