"""The Apprise notifier: one flamewatch instance, a list of Apprise URLs, the Apprise library in process.

Apprise can retry a failed service itself (``?retry=N`` in a URL). flamewatch's outbox already retries
with backoff, so Apprise's retries are switched off for every URL, whatever the URL says: a service is
tried once per attempt and only the outbox decides when to try again. Each URL is its own Apprise
object, and which URLs already took an event is kept in the instance's state under the event's key, so
a retry after one of three services failed goes to that one only: nothing is sent twice.

Apprise URLs carry credentials, so they are secrets, and only their scheme (``json``, ``matrix``...) and
position are ever named in a message. Apprise's own logger is kept above DEBUG for the same reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import apprise

from flamewatch import DeliveryError, Event, Notifier, NotifierContext, PermanentDeliveryError, Secret
from flamewatch.text import clip

# Apprise imports the stdlib's deprecated imghdr when it loads its services (for PGP mail); Python 3.11
# warns about that on every first import. Imported once here with the warning silenced, it never warns
# again, and a run with warnings as errors (-W error) is not broken by a library's import.
# (Python 3.13 dropped it; Apprise brings its own shim then.)
with warnings.catch_warnings(), contextlib.suppress(ImportError):
    warnings.simplefilter("ignore", DeprecationWarning)
    import imghdr  # noqa: F401

# Apprise logs request URLs at DEBUG level, and an Apprise URL holds credentials.
logging.getLogger("apprise").setLevel(logging.INFO)

MAX_TITLE = 250
MAX_BODY = 3000


@dataclass(frozen=True)
class AppriseOptions:
    """Options of a ``type = "apprise"`` notifier: ``urls`` is a list of secrets, each holding one or more
    Apprise URLs (separated by spaces, commas or new lines)."""

    urls: list[Secret]

    def __post_init__(self) -> None:
        if not self.urls:
            raise ValueError('urls: give at least one, e.g. urls = [{ env = "APPRISE_URLS" }]')


def clean(text: str, limit: int) -> str:
    """``text`` on one line, without control or format (bidi, zero-width) characters, at most ``limit`` long
    (flamewatch's shared cleaning of HN text)."""
    return clip(text, limit)


def body_of(event: Event) -> str:
    """The plain-text body: what happened, the numbers, a quote if any, the thread's link.

    Plain text on purpose: Apprise escapes it for each service's own format (HTML, markdown...).
    """
    story = event.story
    lines = [clean(f"{event.wording.summary} {event.wording.detail}", 300)]
    if event.about_story:  # else HN itself (a source gone stale): nothing counted (its link is HN's front page)
        lines.append(clean(f"{story.comments:,}{'+' if story.partial else ''} comments · {story.score:,} points"
                           + (f" · by {story.by}" if story.by else ""), 300))
    quote = event.wording.snippet or (event.subject.excerpt if event.subject is not None else "")
    if quote:
        lines.append("“" + clean(quote, 1000) + "”")
    lines.append(story.hn_url)
    return "\n".join(lines)


def scheme_of(url: str) -> str:
    """The service an Apprise URL names (``json``, ``tgram``...): safe to show, unlike the URL."""
    match = re.match(r"([a-zA-Z][a-zA-Z0-9+.-]{0,31})://", url)
    return match.group(1).lower() if match else "?"


class AppriseNotifier(Notifier):
    """Send flamewatch events through Apprise to any number of services."""

    type_name = "apprise"
    description = "sends through Apprise to any of its 100+ services (a list of Apprise URLs)"
    Options: ClassVar[type] = AppriseOptions
    template_format = "text"  # a template's values are cleaned to plain text; Apprise escapes per service

    options: AppriseOptions

    def __init__(self, ctx: NotifierContext, options: AppriseOptions) -> None:
        super().__init__(ctx, options)
        self._targets: list[tuple[str, apprise.Apprise]] | None = None

    async def start(self) -> None:
        """Read the URLs and load each into Apprise; a URL Apprise cannot read is a permanent failure."""
        self._load()

    def _load(self) -> list[tuple[str, apprise.Apprise]]:
        if self._targets is not None:
            return self._targets
        targets: list[tuple[str, apprise.Apprise]] = []
        for index, secret in enumerate(self.options.urls):
            try:
                value = secret.reveal()
            except LookupError as exc:  # names the variable or file, never the value
                raise PermanentDeliveryError(f"urls[{index}]: {exc}") from None
            for url in re.split(r"[\s,]+", value.strip()):
                if url:
                    targets.append((f"#{len(targets) + 1} ({scheme_of(url)})", self._service(url, index)))
        if not targets:
            raise PermanentDeliveryError("urls: the secrets hold no Apprise URL")
        self._targets = targets
        return targets

    @staticmethod
    def _service(url: str, index: int) -> apprise.Apprise:
        """One Apprise object for ``url``, with Apprise's own retries off."""
        service = apprise.Apprise(asset=apprise.AppriseAsset(default_service_retry=0))
        if not service.add(url):
            raise PermanentDeliveryError(f"urls[{index}]: Apprise cannot use a {scheme_of(url)}:// URL "
                                         "(unknown service or malformed)")
        for plugin in service:
            plugin.retry = 0  # only the outbox retries: a "?retry=" in the URL would send twice
        return service

    async def send(self, event: Event) -> None:
        """Send ``event`` to every URL that has not taken it yet."""
        template = getattr(self.ctx, "template", None)  # None on flamewatch releases before templates
        rendered = template.render(event) if template is not None else None
        await self._deliver(event.key, clean(event.story.title or f"Story {event.story.id}", MAX_TITLE),
                            rendered[:MAX_BODY] if rendered else body_of(event))

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Send one message listing ``events`` to every URL that has not taken this digest yet."""
        lines = [f"• {clean(e.describe(), 300)} {e.story.hn_url}" for e in events]
        body = "\n".join(lines)
        if len(body) > MAX_BODY:
            kept = body[:MAX_BODY].rsplit("\n", 1)[0]
            body = f"{kept}\n… and {len(lines) - kept.count(chr(10)) - 1} more"
        digest_key = "digest:" + hashlib.sha256("|".join(e.key for e in events).encode()).hexdigest()[:24]
        await self._deliver(digest_key, f"flamewatch: {len(events)} events", body)

    async def _deliver(self, key: str, title: str, body: str) -> None:
        targets = self._load()
        state_key = f"sent:{key}"
        done_before = await self.ctx.state.get(state_key)
        done: set[str] = set(done_before) if isinstance(done_before, list) else set()
        failed: list[str] = []
        for name, service in targets:
            if name in done:
                continue
            if await self._notify(service, title, body):
                done.add(name)
                await self.ctx.state.set(state_key, sorted(done))  # at once: a crash must not resend it
            else:
                failed.append(name)
        if failed:
            raise DeliveryError(f"Apprise: {len(failed)} of {len(targets)} services failed: {', '.join(failed)} "
                                "(the next attempt goes to these only)")

    @staticmethod
    async def _notify(service: apprise.Apprise, title: str, body: str) -> bool:
        result: Any = await service.async_notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT)
        return bool(result)
