"""Helpers for testing flamewatch plugins (and flamewatch itself).

    from flamewatch.testing import make_event, notifier_context, RecordingNotifier, simulator

* :func:`make_event` / :func:`make_story` build realistic events without a crawl.
* :func:`closed_port` is a loopback port nothing listens on, to test a server that is down.
* :func:`notifier_context` gives a :class:`~flamewatch.NotifierContext` around a real aiohttp session;
  :func:`message_template` compiles a user's ``template = "..."`` for its ``template`` (``ctx.template``).
* :class:`RecordingNotifier` keeps what it was sent and can fail on cue, to test routing and retries.
* :func:`plugin_offering` wraps notifier classes in a plugin object for ``make_plugin_manager(extra=...)``.
* :func:`simulator` runs the local HN simulator for the duration of an ``async with``.

For a notifier plugin's own tests (see the README's "Write your own notifier plugin"):

* :class:`FakeService` is the base of a fake of your service: an aiohttp server on ``127.0.0.1:0`` that
  records every request (:class:`RecordedRequest`, stamped with the loop clock) and answers the next ones
  with a 429, a 5xx or a hang on cue (:meth:`FakeService.fail_next`, :meth:`FakeService.hang_next`).
* :func:`run_until_delivered` runs flamewatch with your ``[[notifiers]]`` table against the simulator
  until N events are delivered, retries and pacing included, and tells what happened (:class:`Run`).
* :func:`install_plugin` and :func:`flamewatch_cli` check the installed distribution from the outside
  (``flamewatch plugins``, ``notify-test``).
* :mod:`flamewatch.testing.fixtures` holds pytest fixtures (``session``, and the event-loop guard that
  looptime needs under ``-W error``): import them into your ``conftest.py``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aiohttp

from .. import hookimpl
from ..events import Event, StorySnapshot
from ..errors import DeliveryError, PermanentDeliveryError
from ..plugins import DEFAULT_PLUGINS, Plugins, make_plugin_manager
from ..notifier import MemoryState, Notifier, NotifierContext
from .service import FakeService, RecordedRequest, RequestFilter
from .runs import Delivery, Run, flamewatch_cli, install_plugin, run_until_delivered

if TYPE_CHECKING:
    from ..templates import MessageTemplate

__all__ = [
    "HOSTILE_TITLE",
    "Delivery",
    "FakeService",
    "RecordedRequest",
    "RecordingNotifier",
    "RequestFilter",
    "Run",
    "closed_port",
    "flamewatch_cli",
    "install_plugin",
    "make_event",
    "make_story",
    "make_test_plugins",
    "message_template",
    "notifier_context",
    "outbox_states",
    "plugin_offering",
    "run_until_delivered",
    "simulator",
]

HOSTILE_TITLE = "<!channel> Ask HN: 'quotes' & <b>tags</b>\r\nBcc: victim@example.com"
"""A title that tries to ping a Slack workspace, inject HTML and add a mail header at once."""


def make_story(story_id: int = 8863, *, title: str = "My YC app: Dropbox - Throw away your USB drive",
               comments: int = 120, score: int = 111, **fields: Any) -> StorySnapshot:
    """A :class:`StorySnapshot` with plausible defaults; any other field (``url``, ``by``, ``rank``...) by keyword."""
    defaults: dict[str, Any] = {"url": "http://www.getdropbox.com/u/2/screencast.html", "by": "dhouston",
                                "time": 1175714200, "descendants": comments}
    return StorySnapshot(id=story_id, title=title, comments=comments, score=score, **{**defaults, **fields})


def make_event(
    story: StorySnapshot | None = None,
    *,
    rule: str = "comments",
    level: int | str = 100,
    value: float | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> Event:
    """An :class:`Event` as the rules would fire it for ``story``.

    Keyword ``fields`` that name a story field (``story_id``, ``title``, ``comments``, ``score``, ``url``,
    ``by``, ``rank``...) build the story with :func:`make_story` when ``story`` is not given, so a test
    can write ``make_event(story_id=2, comments=530, level=500)``; the others (``velocity``, ``growth``...)
    are event fields. ``value`` defaults to what the rule measures: the comment count for ``comments`` and
    ``keyword``, the score for ``points``, else 0. ``at`` defaults to now.
    """
    story_fields = {name: fields.pop(name) for name in list(fields) if name in _STORY_FIELDS}
    if story is None:
        story = make_story(**story_fields)
    elif story_fields:
        raise TypeError(f"make_event: pass either story or story fields, not both ({', '.join(story_fields)})")
    if value is None:
        value = story.comments if rule in ("comments", "keyword") else story.score if rule == "points" else 0.0
    return Event(key=Event.make_key(story.id, rule, level), rule=rule, level=level, value=value, story=story,
                 at=at or datetime.now(UTC), **fields)


#: What :func:`make_event` passes on to :func:`make_story`: its own parameters and the snapshot's fields.
_STORY_FIELDS = frozenset({"story_id", *(f.name for f in dataclasses.fields(StorySnapshot))}) - {"id"}


def outbox_states(**counts: int) -> dict[str, int]:
    """What ``Store.outbox_counts`` returns with these counts: every delivery state present, 0 unless
    given (``outbox_states(sent=2)``)."""
    from ..store import DeliveryStatus

    unknown = set(counts) - set(DeliveryStatus)
    if unknown:
        raise TypeError(f"outbox_states: not delivery states: {', '.join(sorted(unknown))}")
    return {str(state): counts.get(state, 0) for state in DeliveryStatus}


def closed_port() -> int:
    """A loopback TCP port nothing listens on (bound, then closed), for "the server is down" tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def notifier_context(session: aiohttp.ClientSession, name: str = "test") -> NotifierContext:
    """A context for instantiating a notifier directly in a test (in-memory state)."""
    return NotifierContext(name=name, session=session, state=MemoryState())


def message_template(source: str, fmt: str) -> MessageTemplate:
    """``template = source`` compiled as flamewatch does for an instance of a type whose ``template_format``
    is ``fmt`` (``"text"``, ``"html"``, ``"markdown"``, ``"mrkdwn"``): set it as ``notifier.ctx.template``.
    A template that does not compile raises ``ValueError`` naming the line, as ``flamewatch check`` says it."""
    from ..templates import compile_template  # jinja2 only when a test asks for a template

    return compile_template(source, fmt)


class RecordingNotifier(Notifier):
    """Records every event it is sent; fails the first ``fail_times`` sends, permanently if asked."""

    type_name = "recording"
    description = "keeps what it is sent, for tests"

    @dataclass(frozen=True)
    class Options:
        fail_times: int = 0
        permanent: bool = False
        retry_after: float | None = None
        delay: float = 0.0

    def __init__(self, ctx: NotifierContext, options: Any = None) -> None:
        super().__init__(ctx, options or self.Options())
        self.sent: list[Event] = []
        self.digests: list[list[Event]] = []
        self.attempts = 0
        self._changed = asyncio.Condition()

    async def _attempt(self) -> None:
        self.attempts += 1
        async with self._changed:
            self._changed.notify_all()
        if self.options.delay:
            await asyncio.sleep(self.options.delay)
        if self.attempts <= self.options.fail_times:
            if self.options.permanent:
                raise PermanentDeliveryError(f"{self.name}: refused on purpose")
            raise DeliveryError(
                f"{self.name}: failing on purpose ({self.attempts})", retry_after=self.options.retry_after
            )

    async def send(self, event: Event) -> None:
        await self._attempt()
        async with self._changed:
            self.sent.append(event)
            self._changed.notify_all()

    async def send_digest(self, events: Sequence[Event]) -> None:
        await self._attempt()
        async with self._changed:
            self.digests.append(list(events))
            self.sent.extend(events)
            self._changed.notify_all()

    # The ``timeout`` parameters (ASYNC109) are deliberate: a default bound makes a broken test fail with
    # TimeoutError instead of hanging the suite, and every caller would otherwise repeat asyncio.timeout().
    async def wait_for_attempts(self, count: int, timeout: float | None = 10.0) -> None:  # noqa: ASYNC109
        """Wait until at least ``count`` sends were started (successful or not); ``timeout=None``: no deadline."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: self.attempts >= count)

    async def wait_for(self, count: int, timeout: float | None = 10.0) -> list[Event]:  # noqa: ASYNC109
        """Wait until at least ``count`` events were delivered; returns them. ``timeout=None``: no deadline."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.sent) >= count)
        return list(self.sent)


def plugin_offering(*types: type[Notifier], name: str = "test-plugin") -> object:
    """A plugin object whose ``flamewatch_notifier_types`` returns ``types``."""

    class _Plugin:
        __name__ = name

        @hookimpl
        def flamewatch_notifier_types(self) -> list[type[Notifier]]:
            return list(types)

    return _Plugin()


def make_test_plugins(*extra: object) -> Plugins:
    """A plugin manager for tests: ``extra`` plugin objects plus the built-in rules.

    No built-in notifier (nothing prints or sends unless a test asks for it) and no entry points (what
    happens to be installed on the machine does not change the test).
    """
    notifiers = tuple(name for name, module in DEFAULT_PLUGINS if module.startswith("flamewatch.notifiers."))
    return make_plugin_manager(extra=extra, disabled=notifiers, load_entry_points=False)


@asynccontextmanager
async def simulator(*, seed: int = 1, stories: int = 10, total_comments: int | None = None) -> AsyncIterator[Any]:
    """Run the local HN simulator; yields the server (``.base_url``, ``.world``, ``.stats``)."""
    from ..simulator import SimulatorServer, World

    async with SimulatorServer(World(seed=seed, stories=stories, total_comments=total_comments)) as server:
        yield server
