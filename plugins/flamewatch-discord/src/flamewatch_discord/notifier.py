"""The Discord notifier: an incoming webhook, embeds, ``?wait=true`` for the message id, edits for live counts.

One attempt per call: the core retries, backs off and keeps the outbox. The webhook is paced with
:mod:`flamewatch.pacing` by what Discord says: every answer tells how many requests are left in the
webhook's bucket (``X-RateLimit-Remaining``) and when it refills (``X-RateLimit-Reset-After``), and an
empty bucket holds the webhook until then instead of collecting a 429; a 429's ``retry_after`` holds it
too and travels to the core. On top of that, messages are spaced :data:`MIN_INTERVAL` apart: a webhook may
post about 30 messages a minute to a channel, a limit no header announces.
The webhook URL carries the webhook's token, so it is a secret: no URL and no aiohttp error text (which
may quote it) ever reaches a message or a log.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp
from yarl import URL

from flamewatch import (
    DeliveryError,
    Event,
    Notifier,
    NotifierContext,
    PermanentDeliveryError,
    Secret,
    parse_retry_after,
)
from flamewatch.pacing import Pace, Pacer, fingerprint, shared_pacer

from .format import MAX_DESCRIPTION, digest_payloads, event_embed, message

#: Discord's error code for a message that no longer exists (deleted): the live count posts anew.
_UNKNOWN_MESSAGE = 10008
#: Seconds between two messages through one webhook (30 a minute).
MIN_INTERVAL = 2.0
_PACE = Pace(interval=MIN_INTERVAL)


@dataclass(frozen=True)
class DiscordOptions:
    """Options of a ``type = "discord"`` notifier."""

    webhook_url: Secret  # https://discord.com/api/webhooks/<id>/<token>: the token makes it a secret
    thread_id: str | None = None  # post into this thread (or forum post) of the webhook's channel
    username: str | None = None  # shown instead of the webhook's name
    live_count: bool = False  # one message per story, edited as the thread grows

    def __post_init__(self) -> None:
        if self.thread_id is not None and not re.fullmatch(r"\d{1,20}", self.thread_id):
            raise ValueError(f"thread_id: expected the thread's numeric id, got {self.thread_id!r}")
        if self.username is not None and not 1 <= len(self.username) <= 80:
            raise ValueError("username: must be 1 to 80 characters")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def learn(pacer: Pacer, headers: Mapping[str, str]) -> None:
    """Read an answer's rate-limit headers: an empty bucket holds the webhook until it refills."""
    remaining = _number(headers.get("X-RateLimit-Remaining"))
    reset_after = _number(headers.get("X-RateLimit-Reset-After"))
    if remaining is not None and remaining < 1 and reset_after is not None:
        pacer.hold_off(reset_after)


def _describe(status: int, body: dict[str, Any]) -> str:
    text = str(body.get("message") or f"HTTP {status}")[:200]
    return f"{text} (code {body['code']})" if isinstance(body.get("code"), int) else text


class DiscordNotifier(Notifier):
    """Post flamewatch events to Discord through an incoming webhook."""

    type_name = "discord"
    description = "posts embeds to a Discord channel or thread through an incoming webhook"
    Options: ClassVar[type] = DiscordOptions
    template_format = "markdown"  # a template's values are markdown-escaped; it becomes the embed's text

    options: DiscordOptions

    def __init__(self, ctx: NotifierContext, options: DiscordOptions) -> None:
        super().__init__(ctx, options)
        self._live_locks: dict[int, asyncio.Lock] = {}

    async def start(self) -> None:
        """Check that the secret reads as an http(s) URL (a permanent failure otherwise); no request."""
        self._url()

    async def send(self, event: Event) -> None:
        """Post ``event`` (with ``live_count``, edit the story's earlier message when there is one)."""
        embed = event_embed(event)
        template = getattr(self.ctx, "template", None)  # None on flamewatch releases before templates
        if template is not None and (rendered := template.render(event)):
            embed["description"] = rendered[:MAX_DESCRIPTION]
        payload = message([embed], username=self.options.username)
        if not self.options.live_count or not event.about_story:  # about no story (a stale source): a message each
            await self._request("POST", payload)
            return
        lock = self._live_locks.setdefault(event.story.id, asyncio.Lock())
        try:
            async with lock:
                await self._send_live(event, payload)
        finally:
            if not lock.locked() and self._live_locks.get(event.story.id) is lock:
                del self._live_locks[event.story.id]

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Post a digest, in several messages when it exceeds 10 embeds or 6,000 characters."""
        for payload in digest_payloads(events, self.options.username):
            await self._request("POST", payload)

    async def _send_live(self, event: Event, payload: dict[str, Any]) -> None:
        key = f"live:{event.story.id}"
        where = await self.ctx.state.get(key)
        if isinstance(where, dict) and isinstance(where.get("id"), str):
            shown = where.get("comments")
            if isinstance(shown, int) and event.story.comments < shown:
                return  # an older event retried late must not roll the count back
            edit = {k: v for k, v in payload.items() if k != "username"}  # an edit cannot change the name
            answer = await self._request("PATCH", edit, message_id=where["id"], missing_ok=True)
            if answer is not None:
                await self.ctx.state.set(key, {**where, "comments": event.story.comments})
                return
            self.ctx.log.info("%s: live message of story %s is gone; posting a new one", self.name, event.story.id)
        posted = await self._request("POST", payload)
        if posted is not None and isinstance(posted.get("id"), str):
            await self.ctx.state.set(key, {"id": posted["id"], "comments": event.story.comments})

    # --- requests -------------------------------------------------------------------------------

    def _url(self) -> str:
        try:
            url = self.options.webhook_url.reveal().strip()
        except LookupError as exc:  # names the variable or file, never the value
            raise PermanentDeliveryError(f"webhook_url: {exc}") from None
        try:
            parsed = URL(url)
        except ValueError:
            parsed = None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.raw_host or not url.isprintable():
            raise PermanentDeliveryError("webhook_url: the secret is not an http(s) URL")
        return url.rstrip("/")

    async def _request(self, method: str, payload: dict[str, Any], *, message_id: str | None = None,
                       missing_ok: bool = False) -> dict[str, Any] | None:
        """One webhook call in the webhook's turn; the message object Discord answers with (``?wait=true``)."""
        base = self._url()
        url = URL(f"{base}/messages/{message_id}" if message_id else base)
        query = {"wait": "true"} if method == "POST" else {}
        if self.options.thread_id:
            query["thread_id"] = self.options.thread_id
        pacer = shared_pacer(fingerprint(base), _PACE)  # the URL holds the webhook's token: kept as a digest
        async with pacer.turn():
            try:
                async with self.ctx.session.request(method, url.update_query(query), json=payload) as response:
                    status, headers = response.status, response.headers
                    try:
                        body = json.loads(await response.read() or b"{}")
                    except ValueError:
                        body = {}
            except (aiohttp.InvalidURL, ValueError):
                raise PermanentDeliveryError("Discord webhook: the request cannot be made: check webhook_url") from None
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # from None, and only the type: the error may quote the URL, which holds the token.
                raise DeliveryError(f"Discord webhook: {type(exc).__name__} talking to Discord") from None
            learn(pacer, headers)
            body = body if isinstance(body, dict) else {}
            if 200 <= status < 300:
                return body
            if missing_ok and status == 404 and body.get("code") == _UNKNOWN_MESSAGE:
                return None
            raise self._error(status, body, headers.get("Retry-After"), pacer)

    @staticmethod
    def _error(status: int, body: dict[str, Any], retry_after_header: str | None, pacer: Pacer) -> DeliveryError:
        """The error for a failed call; a 429 also holds the webhook for its ``retry_after``."""
        what = f"Discord webhook answered HTTP {status}: {_describe(status, body)}"
        if status == 429:
            wait = body.get("retry_after")  # float seconds in the body; else the header
            seconds = pacer.hold_off(float(wait) if isinstance(wait, (int, float)) and wait >= 0
                                     else retry_after_header)
            scope = " (global)" if body.get("global") else ""
            return DeliveryError(f"Discord webhook: rate limited{scope}", retry_after=seconds)
        if status >= 500 or status == 408:
            return DeliveryError(what, retry_after=parse_retry_after(retry_after_header))
        if status in (401, 403, 404):
            return PermanentDeliveryError(f"{what}: check webhook_url (the webhook may have been deleted)"
                                          + (" and thread_id" if status != 401 else ""))
        return PermanentDeliveryError(what)
