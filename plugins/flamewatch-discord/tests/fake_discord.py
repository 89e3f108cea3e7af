"""A fake Discord incoming webhook on a real aiohttp server over loopback, strict where Discord is.

    async with FakeDiscord() as discord:
        options = DiscordOptions(webhook_url=..., ...)   # discord.webhook_url
        ...
        assert discord.messages[0].pings == []

What it enforces, in Discord's shapes (``{"message", "code"}`` bodies, ``X-RateLimit-*`` headers):

* the webhook id and token (404 ``Unknown Webhook`` 10015, 401 ``Invalid Webhook Token`` 50027), a known
  ``thread_id`` (404 ``Unknown Channel`` 10003), ``PATCH .../messages/<id>`` of a known message (404
  ``Unknown Message`` 10008); ``?wait=true`` answers the message object, otherwise 204;
* limits: content 2,000; 10 embeds; title 256, description 4,096, footer 2,048; 6,000 across the embeds;
  an empty message (400, 50035 ``Invalid Form Body`` / 50006);
* the webhook's bucket: :attr:`bucket_limit` requests per :attr:`bucket_window` seconds, announced on
  every answer (``X-RateLimit-Limit/Remaining/Reset/Reset-After/Bucket``), and 30 messages a minute
  (an unannounced, "shared" limit); past either, 429 with a JSON ``retry_after`` (float seconds),
  ``global`` and a ``Retry-After`` header;
* mentions: which pings a message would fire (``@everyone``, ``@here``, ``<@id>``, ``<@&id>`` in
  ``content``, as ``allowed_mentions`` permits; embeds never ping), and what its markdown shows.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from flamewatch.testing import FakeService

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FOOTER = 2048
MAX_EMBED_TOTAL = 6000
CHANNEL_LIMIT = 30
CHANNEL_WINDOW = 60.0

_MENTION = re.compile(r"@everyone|@here|<@!?(\d+)>|<@&(\d+)>")


@dataclass
class Shown:
    """What a Discord client shows for a markdown string: the text and the links it makes."""

    text: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, label)


def render(markdown: str) -> Shown:
    """Render the parts of Discord markdown that matter here: backslash escapes, ``**``, ``[label](url)``."""
    out: list[str] = []
    shown = Shown(text="")
    pos = 0
    while pos < len(markdown):
        ch = markdown[pos]
        if ch == "\\" and pos + 1 < len(markdown) and not markdown[pos + 1].isalnum():
            out.append(markdown[pos + 1])
            pos += 2
        elif ch == "[" and (match := re.compile(r"\[((?:\\.|[^\]\\])*)\]\((https?://[^)\s]+)\)").match(markdown, pos)):
            label = render(match.group(1)).text
            shown.links.append((match.group(2), label))
            out.append(label)
            pos = match.end()
        elif markdown.startswith("**", pos):
            pos += 2
        else:
            out.append(ch)
            pos += 1
    shown.text = "".join(out)
    return shown


def pings(payload: dict[str, Any]) -> list[str]:
    """The mentions in ``content`` that would notify someone, given ``allowed_mentions``."""
    allowed = payload.get("allowed_mentions")
    parse = set(allowed.get("parse", [])) if isinstance(allowed, dict) else {"everyone", "users", "roles"}
    fired = []
    for match in _MENTION.finditer(str(payload.get("content") or "")):
        kind = "users" if match.group(1) else "roles" if match.group(2) else "everyone"
        if kind in parse:
            fired.append(match.group(0))
    return fired


@dataclass
class FakeMessage:
    """One message as Discord keeps it."""

    id: str
    thread_id: str | None
    payload: dict[str, Any]
    received_at: float
    edits: list[dict[str, Any]] = field(default_factory=list)

    @property
    def pings(self) -> list[str]:
        return pings(self.payload)

    @property
    def shown(self) -> Shown:
        """Everything the message shows (content, embed titles, descriptions, footers), rendered."""
        parts = [str(self.payload.get("content") or "")]
        for embed in self.payload.get("embeds") or []:
            parts += [embed.get("title", ""), embed.get("description", ""), (embed.get("footer") or {}).get("text", "")]
        whole = Shown(text="")
        for part in parts:
            piece = render(part)
            whole.text += piece.text + "\n"
            whole.links += piece.links
        return whole


class FakeDiscord(FakeService):
    """The fake webhook; use as ``async with FakeDiscord() as discord``."""

    def __init__(self, *, webhook_id: str = "1100", token: str = "fake-webhook-token",
                 threads: set[str] | None = None, bucket_limit: int = 5, bucket_window: float = 2.0) -> None:
        super().__init__()
        self.webhook_id, self.token = webhook_id, token
        self.threads = threads if threads is not None else {"2200"}
        self.bucket_limit, self.bucket_window = bucket_limit, bucket_window
        self.messages: list[FakeMessage] = []
        self._bucket_started: float | None = None
        self._bucket_used = 0
        self._posted: deque[float] = deque()
        self._next_id = 900000

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/api/webhooks/{id}/{token}", self._handle)
        router.add_patch("/api/webhooks/{id}/{token}/messages/{message}", self._handle)

    @property
    def webhook_url(self) -> str:
        return f"{self.url}/api/webhooks/{self.webhook_id}/{self.token}"

    def refusal(self, status: int, retry_after: float | str | None) -> tuple[Any, dict[str, str]]:
        """Discord's 429: a JSON ``retry_after`` (float seconds) and ``global``, and a ``Retry-After`` header."""
        return _too_many(float(retry_after or 0), False, "user", {})

    def fail_next_globally(self, count: int = 1, *, retry_after: float = 1.5) -> None:
        """Answer the next ``count`` requests with Discord's global rate limit."""
        body, headers = _too_many(retry_after, True, "global", {})
        self.fail_next(count, retry_after=retry_after, body=body, headers=headers)

    # --- handling -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        try:
            body = await request.json()
        except json.JSONDecodeError:
            body = {}
        body = body if isinstance(body, dict) else {}
        return self._answer(request, body, now)

    def _answer(self, request: web.Request, body: dict[str, Any], now: float) -> web.Response:
        info = request.match_info
        if info["id"] != self.webhook_id:
            return _json({"message": "Unknown Webhook", "code": 10015}, 404)
        if info["token"] != self.token:
            return _json({"message": "Invalid Webhook Token", "code": 50027}, 401)
        thread = request.query.get("thread_id")
        if thread is not None and thread not in self.threads:
            return _json({"message": "Unknown Channel", "code": 10003}, 404)
        invalid = validate(body)
        if invalid is not None:
            return _json(invalid, 400)
        limited = self._rate_limit(now)
        if limited is not None:
            return limited
        headers = self._bucket_headers(now)
        if request.method == "PATCH":
            target = next((m for m in self.messages if m.id == info["message"]), None)
            if target is None:
                return _json({"message": "Unknown Message", "code": 10008}, 404, headers)
            target.edits.append(target.payload)
            target.payload = {**target.payload, **body}
            return _json({"id": target.id, **target.payload}, 200, headers)
        self._next_id += 1
        message = FakeMessage(str(self._next_id), thread, body, now)
        self.messages.append(message)
        self._posted.append(now)
        if request.query.get("wait") != "true":
            return web.Response(status=204, headers=headers)
        return _json({"id": message.id, "channel_id": thread or "3300", **body}, 200, headers)

    def _rate_limit(self, now: float) -> web.Response | None:
        if self._bucket_started is None or now >= self._bucket_started + self.bucket_window:
            self._bucket_started, self._bucket_used = now, 0
        if self._bucket_used >= self.bucket_limit:
            body, headers = _too_many(self._bucket_started + self.bucket_window - now, False, "user",
                                      self._bucket_headers(now))
            return _json(body, 429, headers)
        while self._posted and self._posted[0] <= now - CHANNEL_WINDOW:
            self._posted.popleft()
        if len(self._posted) >= CHANNEL_LIMIT:
            body, headers = _too_many(self._posted[0] + CHANNEL_WINDOW - now, False, "shared", {})
            return _json(body, 429, headers)
        self._bucket_used += 1
        return None

    def _bucket_headers(self, now: float) -> dict[str, str]:
        assert self._bucket_started is not None
        reset_after = max(0.0, self._bucket_started + self.bucket_window - now)
        return {"X-RateLimit-Limit": str(self.bucket_limit),
                "X-RateLimit-Remaining": str(max(0, self.bucket_limit - self._bucket_used)),
                "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
                "X-RateLimit-Reset-After": f"{reset_after:.3f}",
                "X-RateLimit-Bucket": "fakebucket0"}


def validate(body: dict[str, Any]) -> dict[str, Any] | None:
    """Discord's error body for a message that breaks its rules, or None."""
    content = body.get("content")
    embeds = body.get("embeds") or []
    if not content and not embeds:
        return {"message": "Cannot send an empty message", "code": 50006}
    problems: list[str] = []
    if isinstance(content, str) and len(content) > MAX_CONTENT:
        problems.append("content: Must be 2000 or fewer in length.")
    if len(embeds) > MAX_EMBEDS:
        problems.append("embeds: Must be 10 or fewer in length.")
    total = 0
    for i, embed in enumerate(embeds):
        title, description = embed.get("title", ""), embed.get("description", "")
        footer = (embed.get("footer") or {}).get("text", "")
        for name, value, limit in (("title", title, MAX_TITLE), ("description", description, MAX_DESCRIPTION),
                                   ("footer.text", footer, MAX_FOOTER)):
            if len(value) > limit:
                problems.append(f"embeds.{i}.{name}: Must be {limit} or fewer in length.")
        total += len(title) + len(description) + len(footer)
    if total > MAX_EMBED_TOTAL:
        problems.append("embeds: Embed size exceeds maximum size of 6000")
    if problems:
        return {"message": "Invalid Form Body", "code": 50035, "errors": problems}
    return None


def _json(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers=headers)


def _too_many(retry_after: float, is_global: bool, scope: str,
              headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Discord's 429: the body and the headers."""
    return ({"message": "You are being rate limited.", "retry_after": round(retry_after, 3), "global": is_global},
            {**headers, "Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": scope})
