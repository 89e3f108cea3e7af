"""The ntfy notifier: one push notification per event, published as JSON to an ntfy server.

Publishing as JSON (``POST <server>/`` with ``{"topic", "title", "message", ...}``) keeps every HN string
in a JSON value, never in an HTTP header where a CR/LF could start a header of its own. The message is
markdown (ntfy renders it in its web app and Android client), so HN text has its markdown characters
escaped; the title is plain text, cleaned of control and bidi characters.

One attempt per call: the core retries. ntfy answers a visitor over its limits with 429 (a bucket of 60
requests refilled one every 5 s on ntfy.sh); the notifier keeps to the same bucket
(:mod:`flamewatch.pacing`, one per server and access token, as ntfy counts a visitor), so a flood of
events is spread out instead of refused. On a 429 it holds the server for the ``Retry-After`` it names or
:data:`DEFAULT_HOLD` seconds, and hands that wait to the core.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp

from flamewatch import (
    DeliveryError,
    Event,
    Notifier,
    PermanentDeliveryError,
    Secret,
    parse_retry_after,
)
from flamewatch.pacing import Pace, Pacer, fingerprint, shared_pacer
from flamewatch.text import flatten, inline, render_marked

#: Seconds a 429 without ``Retry-After`` holds the server (ntfy.sh refills one request every 5 s).
DEFAULT_HOLD = 5.0
#: ntfy turns a longer message into an attachment (or refuses it): stay under 4,096 bytes.
MAX_MESSAGE_BYTES = 4000
_MARKDOWN = set("\\`*_{}[]()<>#+-.!|~")
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_TAG = re.compile(r"[a-z0-9_+-]{1,64}")


@dataclass(frozen=True)
class NtfyOptions:
    """Options of a ``type = "ntfy"`` notifier.

    ``priority_by_level`` raises the priority from a level up: ``{ 500 = 4, 1000 = 5 }`` sends events at
    level 500 or more with priority 4 (high), at 1,000 or more with 5 (urgent); others get ``priority``.
    """

    topic: str
    server: str = "https://ntfy.sh"
    token: Secret | None = None  # an access token (tk_...), for a protected topic
    priority: int = 3
    priority_by_level: dict[str, int] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    markdown: bool = True

    def __post_init__(self) -> None:
        if not _TOPIC.fullmatch(self.topic):
            raise ValueError(f"topic: 1-64 letters, digits, '-' or '_', got {self.topic!r}")
        if not self.server.startswith(("http://", "https://")):
            raise ValueError(f"server: must be an http(s) URL, got {self.server!r}")
        for key, value in {"priority": self.priority, **self.priority_by_level}.items():
            if not 1 <= value <= 5:
                raise ValueError(f"priority_by_level.{key}: priority must be 1 (min) to 5 (urgent), got {value}"
                                 if key != "priority" else f"priority: must be 1 (min) to 5 (urgent), got {value}")
        for key in self.priority_by_level:
            if not key.isdigit():
                raise ValueError(f"priority_by_level.{key}: the key must be a level (a whole number)")
        for tag in self.tags:
            if not _TAG.fullmatch(tag):
                raise ValueError(f"tags: {tag!r} is not an ntfy tag (lower-case letters, digits, _ + -)")


#: ``text`` on one line without control characters (as spaces) and format characters (bidi, zero-width):
#: flamewatch's shared cleaning of HN text.
clean = flatten


def md_escape(text: str, limit: int = 1000) -> str:
    """:func:`clean` of ``text``, clipped to ``limit`` characters, markdown characters made literal."""
    flat = clean(text)
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in flat)


def _md_piece(text: str) -> str:
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in inline(text))


def message_text(event: Event, *, markdown: bool) -> str:
    """The body: what happened, the numbers, a quote if any; markdown with our link, or plain text."""
    esc = md_escape if markdown else (lambda text, limit=1000: clean(text)[:limit])
    story = event.story
    lines = [esc(f"{event.wording.summary} {event.wording.detail}".strip(), 300)]
    if event.about_story:  # else HN itself (a source gone stale): nothing counted, no discussion
        lines.append(esc(f"{story.comments:,}{'+' if story.partial else ''} comments · {story.score:,} points"
                         + (f" · by {story.by}" if story.by else ""), 300))
    if event.wording.snippet:
        lines.append("> " + (render_marked(event.wording.snippet[:1000], event.wording.marks, _md_piece, "**", "**")
                             if markdown else clean(event.wording.snippet)[:1000]))
    elif event.subject is not None and event.subject.excerpt:
        lines.append("> " + esc(event.subject.excerpt, 1000))
    if markdown and event.about_story:
        lines.append(f"[discussion]({story.hn_url})")
    text = "\n".join(lines)
    while len(text.encode()) > MAX_MESSAGE_BYTES:  # multi-byte text: trim whole characters until it fits
        text = text[: len(text) - 200]
    return text


class NtfyNotifier(Notifier):
    """Send flamewatch events as ntfy push notifications."""

    type_name = "ntfy"
    description = "push notifications through ntfy (priority by level, tags, click to the thread)"
    Options: ClassVar[type] = NtfyOptions
    template_format = "markdown"  # a template's values are markdown-escaped; it becomes the message

    options: NtfyOptions

    #: ntfy.sh's visitor bucket (60 requests, one more every 5 s); a class attribute so a server with other
    #: limits is handled by its 429s rather than by options users could get wrong. Tests lower it.
    bucket_size: int = 60
    refill_every: float = 5.0

    def priority_of(self, event: Event) -> int:
        """``priority``, raised by the highest ``priority_by_level`` entry the event's level reaches."""
        priority = self.options.priority
        if isinstance(event.level, int):
            for level, value in sorted((int(k), v) for k, v in self.options.priority_by_level.items()):
                if event.level >= level:
                    priority = value
        return priority

    def payload(self, event: Event) -> dict[str, Any]:
        """The JSON published for ``event``."""
        emoji = event.wording.emoji if _TAG.fullmatch(event.wording.emoji) else "bell"
        template = getattr(self.ctx, "template", None)  # None on flamewatch releases before templates
        rendered = template.render(event) if template is not None else None
        text = rendered[:MAX_MESSAGE_BYTES // 4] if rendered else message_text(event, markdown=self.options.markdown)
        return {"topic": self.options.topic, "title": clean(event.story.title or f"Story {event.story.id}")[:250],
                "message": text, "priority": self.priority_of(event),
                "tags": [emoji, *self.options.tags], "click": event.story.hn_url, "markdown": self.options.markdown}

    async def send(self, event: Event) -> None:
        """Publish ``event``."""
        await self._publish(self.payload(event))

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Publish one notification listing ``events`` (title and headline each), at the highest priority."""
        lines = [f"• {clean(e.describe())}"[:300] for e in events]
        body = "\n".join(lines)
        while len(body.encode()) > MAX_MESSAGE_BYTES:
            lines = lines[:-1]
            body = "\n".join([*lines, f"… and {len(events) - len(lines)} more"])
        await self._publish({"topic": self.options.topic, "title": f"flamewatch: {len(events)} events",
                             "message": body, "priority": max(self.priority_of(e) for e in events),
                             "tags": ["bell", *self.options.tags]})

    def _headers(self) -> dict[str, str]:
        if self.options.token is None:
            return {}
        try:
            token = self.options.token.reveal().strip()
        except LookupError as exc:  # names the variable or file, never the value
            raise PermanentDeliveryError(f"token: {exc}") from None
        if not token or not token.isprintable():
            raise PermanentDeliveryError("token: the secret is empty or holds a control character")
        return {"Authorization": f"Bearer {token}"}

    def _bucket(self) -> Pacer:
        """The bucket of this server and visitor: ntfy counts per access token (here: which secret, never
        its value), else per address."""
        return shared_pacer(f"{self.options.server}|{fingerprint(repr(self.options.token))}",
                            Pace(burst=self.bucket_size, refill_every=self.refill_every))

    async def _publish(self, payload: dict[str, Any]) -> None:
        headers = self._headers()
        bucket = self._bucket()
        what = f"ntfy topic {self.options.topic}"
        async with bucket.turn():
            try:
                async with self.ctx.session.post(self.options.server.rstrip("/") + "/", json=payload,
                                                 headers=headers) as response:
                    status, retry_header = response.status, response.headers.get("Retry-After")
                    try:
                        body = json.loads(await response.read() or b"{}")
                    except ValueError:
                        body = {}
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise DeliveryError(f"{what}: {type(exc).__name__} talking to {self.options.server}") from None
            if 200 <= status < 300:
                return
            error = str(body.get("error") or f"HTTP {status}")[:200] if isinstance(body, dict) else f"HTTP {status}"
            if status == 429:
                wait = bucket.hold_off(retry_header, default=DEFAULT_HOLD)
                raise DeliveryError(f"{what}: {error}", retry_after=wait)
            if status >= 500 or status == 408:
                raise DeliveryError(f"{what}: {error}", retry_after=parse_retry_after(retry_header))
            hint = " (check token)" if status in (401, 403) else ""
            raise PermanentDeliveryError(f"{what}: {self.options.server} answered HTTP {status}: {error}{hint}")
