"""The Telegram notifier: Bot API ``sendMessage`` (HTML), ``editMessageText`` for live counts.

The core retries, backs off and keeps the outbox, so every call here is one attempt and every failure
becomes :class:`DeliveryError` (try again later, with Telegram's ``retry_after``) or
:class:`PermanentDeliveryError` (a bad token, an unknown chat: no retry can fix it). The bot token is
part of every request URL, so no URL, and no aiohttp error text (which may quote it), ever reaches a
message or a log.

Telegram takes about one message a second per chat, and 20 a minute in a group or channel: every instance
posting to one chat through one bot shares a :func:`flamewatch.pacing.shared_pacer` kept to that.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp

from flamewatch import DeliveryError, Event, Notifier, NotifierContext, PermanentDeliveryError
from flamewatch.pacing import Pace, Pacer, fingerprint, shared_pacer

from .format import MAX_MESSAGE, digest_messages, event_message
from .options import TelegramOptions

#: How long the start-up check may take before we go on without it.
_START_CHECK_TIMEOUT = 10.0
#: One message a second to a chat, and in a group or channel also at most 20 in any minute. A 429's
#: ``retry_after`` holds the chat for up to an hour (the core's own retry waits the full time anyway).
CHAT_PACE = Pace(interval=1.0)
GROUP_PACE = Pace(interval=1.0, window_limit=20, window=60.0)
#: Errors of editMessageText after which the live message is gone and a new one is posted.
_EDIT_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")


class TelegramApiError(DeliveryError):
    """A Bot API answer with ``ok: false`` that may pass (429, 5xx)."""


class TelegramPermanentError(PermanentDeliveryError):
    """A Bot API answer that no retry fixes; ``description`` is Telegram's own words."""

    def __init__(self, message: str, description: str) -> None:
        super().__init__(message)
        self.description = description


def api_error(method: str, status: int, body: dict[str, Any], chat: int | str) -> DeliveryError:
    """The error to raise for a failed Bot API call, worded as one line a user can act on."""
    description = str(body.get("description") or f"HTTP {status}")[:200]
    params = body.get("parameters") if isinstance(body.get("parameters"), dict) else {}
    assert isinstance(params, dict)
    if status == 429 or body.get("error_code") == 429:
        wait = params.get("retry_after")
        retry_after = float(wait) if isinstance(wait, (int, float)) and wait >= 0 else None
        return TelegramApiError(f"Telegram {method}: rate limited ({description})", retry_after=retry_after)
    if status >= 500:
        return TelegramApiError(f"Telegram {method}: server error ({description})")
    if status in (401, 404) and method != "editMessageText":
        # 404 is what Telegram answers for a token that is not even shaped right.
        return TelegramPermanentError(f"Telegram {method}: the bot token was refused ({description}): "
                                      "check token", description)
    if isinstance(migrated := params.get("migrate_to_chat_id"), int):
        return TelegramPermanentError(f"Telegram {method}: the group became a supergroup; set chat_id = {migrated}",
                                      description)
    if status == 403 or "chat not found" in description or "thread not found" in description:
        return TelegramPermanentError(f"Telegram {method} to chat {chat}: {description} "
                                      "(check chat_id, message_thread_id and that the bot is a member)", description)
    return TelegramPermanentError(f"Telegram {method} to chat {chat}: {description}", description)


class TelegramNotifier(Notifier):
    """Send flamewatch events to a Telegram chat through a bot."""

    type_name = "telegram"
    description = "sends HTML messages to a Telegram chat, group, channel or forum topic (Bot API)"
    Options: ClassVar[type] = TelegramOptions
    template_format = "html"  # a template's values are HTML-escaped, as Telegram's HTML mode needs

    options: TelegramOptions

    def __init__(self, ctx: NotifierContext, options: TelegramOptions) -> None:
        super().__init__(ctx, options)
        self._live_locks: dict[int, asyncio.Lock] = {}

    async def start(self) -> None:
        """Check the token (``getMe``) and the chat (``getChat``) so a mistake shows at start-up.

        A refused token or an unknown chat raises :class:`PermanentDeliveryError`; Telegram being
        unreachable only logs a warning, since sends are retried anyway.
        """
        try:
            async with asyncio.timeout(_START_CHECK_TIMEOUT):
                await self._call("getMe", {}, paced=False)
                await self._call("getChat", {"chat_id": self.options.chat}, paced=False)
        except PermanentDeliveryError:
            raise
        except (DeliveryError, TimeoutError) as exc:
            self.ctx.log.warning("%s: could not check the Telegram bot at start-up: %s", self.name,
                                 exc or "timed out")

    async def send(self, event: Event) -> None:
        """Send ``event`` (with ``live_count``, edit the story's earlier message instead when there is one)."""
        if self.options.live_count and event.about_story:  # about no story (a stale source): nothing to keep up
            await self._send_live(event)
        else:
            await self._send_message(self._text(event))

    def _text(self, event: Event) -> str:
        """The instance's ``template`` rendered (within Telegram's limit), or the built-in message."""
        template = getattr(self.ctx, "template", None)  # None on flamewatch releases before templates
        rendered = template.render(event) if template is not None else None
        return rendered[:MAX_MESSAGE] if rendered else event_message(event)

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Send a digest, as several messages when it is longer than Telegram allows.

        If a later part fails, the core retries the whole digest, so earlier parts may arrive twice.
        """
        for text in digest_messages(events):
            await self._send_message(text)

    # --- live count -----------------------------------------------------------------------------

    async def _send_live(self, event: Event) -> None:
        """One story at a time, never backwards (a retried older event must not show an older count)."""
        story_id = event.story.id
        lock = self._live_locks.setdefault(story_id, asyncio.Lock())
        try:
            async with lock:
                await self._send_live_locked(event)
        finally:
            if not lock.locked() and self._live_locks.get(story_id) is lock:
                del self._live_locks[story_id]

    async def _send_live_locked(self, event: Event) -> None:
        key = f"live:{event.story.id}"
        where = await self.ctx.state.get(key)
        text = self._text(event)
        if isinstance(where, dict) and isinstance(where.get("message_id"), int):
            shown = where.get("comments")
            if isinstance(shown, int) and event.story.comments < shown:
                return
            if await self._edit(where["message_id"], text):
                await self.ctx.state.set(key, {**where, "comments": event.story.comments})
                return
            self.ctx.log.info("%s: live message of story %s is gone; sending a new one", self.name, event.story.id)
        message_id = await self._send_message(text)
        if message_id is not None:
            await self.ctx.state.set(key, {"message_id": message_id, "comments": event.story.comments})

    async def _edit(self, message_id: int, text: str) -> bool:
        """Edit the live message; False when it is gone (deleted, or no longer editable)."""
        args = {"chat_id": self.options.chat, "message_id": message_id, "text": text, "parse_mode": "HTML",
                "link_preview_options": {"is_disabled": not self.options.link_preview}}
        try:
            await self._call("editMessageText", args)
        except TelegramPermanentError as exc:
            if "message is not modified" in exc.description:
                return True  # it already says this: a retry after a lost answer
            if any(gone in exc.description for gone in _EDIT_GONE):
                return False
            raise
        return True

    # --- requests -------------------------------------------------------------------------------

    async def _send_message(self, text: str) -> int | None:
        """``sendMessage``; returns the new message's id."""
        args: dict[str, Any] = {"chat_id": self.options.chat, "text": text, "parse_mode": "HTML",
                                "link_preview_options": {"is_disabled": not self.options.link_preview}}
        if self.options.message_thread_id is not None:
            args["message_thread_id"] = self.options.message_thread_id
        if self.options.silent:
            args["disable_notification"] = True
        result = await self._call("sendMessage", args)
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id if isinstance(message_id, int) else None

    def _token(self) -> str:
        try:
            token = self.options.token.reveal().strip()
        except LookupError as exc:  # names the variable or file, never the value
            raise PermanentDeliveryError(f"token: {exc}") from None
        if not token or not token.isprintable() or "/" in token or "?" in token or "#" in token:
            # It goes into the URL path: a slash or a newline pasted with it would address something else.
            raise PermanentDeliveryError("token: the secret is empty or holds characters a bot token never has")
        return token

    def _pacer(self, token: str) -> Pacer:
        """The chat's pacer, shared by every instance reaching it through the same bot (the token as a digest)."""
        key = f"{self.options.api_url}|{fingerprint(token)}|{self.options.chat}"
        return shared_pacer(key, GROUP_PACE if self.options.is_group else CHAT_PACE)

    async def _call(self, method: str, args: dict[str, Any], *, paced: bool = True) -> Any:
        """One Bot API call: wait the chat's turn (``paced``), post, and map the answer."""
        token = self._token()
        pacer = self._pacer(token)
        if not paced:
            return await self._request(method, args, token, None)
        async with pacer.turn():
            return await self._request(method, args, token, pacer)

    async def _request(self, method: str, args: dict[str, Any], token: str, pacer: Pacer | None) -> Any:
        url = f"{self.options.api_url.rstrip('/')}/bot{token}/{method}"
        try:
            async with self.ctx.session.post(url, json=args) as response:
                status = response.status
                try:
                    body = json.loads(await response.read())
                except ValueError:
                    body = {}
        except (aiohttp.InvalidURL, ValueError):
            raise PermanentDeliveryError(f"Telegram {method}: the request cannot be made: check api_url") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            # from None, and only the error's type: aiohttp may quote the URL, which holds the token.
            raise DeliveryError(f"Telegram {method}: {type(exc).__name__} talking to the Bot API") from None
        if not isinstance(body, dict):
            body = {}
        if status == 200 and body.get("ok") is True:
            return body.get("result")
        error = api_error(method, status, body, self.options.chat)
        if pacer is not None:
            pacer.hold_off(error.retry_after)  # the chat's next message waits too, whoever sends it
        raise error
