"""The Slack notifier: posts events through an incoming webhook or a bot token (``chat.postMessage``).

The core owns retries, backoff and the outbox, so the slack-sdk clients are built with
``retry_handlers=[]`` and every failure is turned into :class:`DeliveryError` (try again later) or
:class:`PermanentDeliveryError` (a config problem). The one wait done here is the per-channel pacing:
Slack accepts about one message a second per channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient

from flamewatch import (
    DeliveryError,
    Event,
    Notifier,
    NotifierContext,
    PermanentDeliveryError,
    Secret,
    parse_retry_after,
)

from .format import SlackMessage, digest_messages, event_message

DEFAULT_BASE_URL = "https://slack.com/api/"

# slack-sdk logs request URLs at DEBUG level, and a webhook URL is a secret. Its clients get this
# logger, pinned above DEBUG, so turning on debug logging elsewhere cannot leak one.
_SDK_LOG = logging.getLogger("flamewatch.notifier.slack.sdk")
_SDK_LOG.setLevel(logging.WARNING)

# Slack API error codes that mean "try again later"; every other code is a permanent failure.
_RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# chat.update errors after which the live message is gone and a new one should be posted.
_LIVE_MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# Longest wait a Retry-After may impose on this instance's later messages (the core waits too).
_MAX_HOLD_OFF = 60.0
# Longest the startup token check may take before we go on without it.
_START_CHECK_TIMEOUT = 10.0
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")

#: One Web API call to make with a ready client, e.g. ``lambda client: client.auth_test()``.
_ApiRequest = Callable[[AsyncWebClient], Awaitable[AsyncSlackResponse]]


@dataclass(frozen=True)
class SlackOptions:
    """Options of a ``type = "slack"`` notifier: exactly one of ``webhook_url`` or ``token`` + ``channel``."""

    webhook_url: Secret | None = None  # incoming webhook mode: the URL is a secret
    token: Secret | None = None  # bot token mode (xoxb-..., scope chat:write)
    channel: str | None = None  # bot token mode: "#name" or a channel ID
    base_url: str = DEFAULT_BASE_URL
    live_count: bool = False  # bot mode: keep one message per story and edit it as the thread grows
    username: str | None = None
    icon_emoji: str | None = None
    unfurl_links: bool = False  # let Slack add link previews (links and media)

    def __post_init__(self) -> None:
        if self.webhook_url is not None and self.token is not None:
            raise ValueError("webhook_url: set either webhook_url or token (with channel), not both")
        if self.webhook_url is None and self.token is None:
            raise ValueError("token: set either token (with channel) or webhook_url")
        if self.token is not None and not (self.channel or "").strip():
            raise ValueError('channel: required with token (e.g. channel = "#hn" or a channel ID)')
        if self.webhook_url is not None and self.channel is not None:
            raise ValueError("channel: an incoming webhook posts to the channel it was created for; remove channel")
        if self.webhook_url is not None and self.live_count:
            raise ValueError("live_count: needs bot token mode (token + channel); webhook messages cannot be edited")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url: must be an http(s) URL, got {self.base_url!r}")
        if not self.base_url.endswith("/"):
            # slack-sdk joins method names onto it: without the slash, ".../api" + "chat.postMessage"
            # would lose the "api" part.
            raise ValueError(f"base_url: must end with '/', e.g. {self.base_url + '/'!r}")
        if self.icon_emoji is not None and not re.fullmatch(r":[a-z0-9_+'-]+:", self.icon_emoji):
            raise ValueError(f"icon_emoji: must look like :emoji_name:, got {self.icon_emoji!r}")


class _Pacer:
    """The next time (loop clock) one channel may receive a message, and a lock to take turns."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.next_at = 0.0

    @asynccontextmanager
    async def turn(self, interval: float) -> AsyncIterator[None]:
        """Wait until the channel is free, run the body, then keep the channel quiet for ``interval`` s."""
        loop = asyncio.get_running_loop()
        async with self.lock:
            delay = self.next_at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                yield
            finally:
                # Counted from the end of the request, so the gap seen by Slack is at least ``interval``.
                self.hold_off(interval)

    def hold_off(self, seconds: float) -> None:
        """Keep the channel quiet for at least ``seconds`` from now."""
        now = asyncio.get_running_loop().time()
        self.next_at = max(self.next_at, now + min(seconds, _MAX_HOLD_OFF))


# Pacers are shared by every notifier instance posting to the same channel, one table per event loop
# (asyncio locks belong to one loop).
_PACERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Pacer]] = weakref.WeakKeyDictionary()


def _pacer(key: str) -> _Pacer:
    table = _PACERS.setdefault(asyncio.get_running_loop(), {})
    return table.setdefault(key, _Pacer())


def _fingerprint(secret: str) -> str:
    """A short digest that tells secrets apart without keeping or showing them."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


class SlackNotifier(Notifier):
    """Post flamewatch events to Slack as Block Kit messages."""

    type_name = "slack"
    description = "posts Block Kit messages to a Slack channel (incoming webhook or bot token)"
    Options: ClassVar[type] = SlackOptions

    #: Seconds between two messages to one channel (Slack allows about one a second, short bursts aside).
    #: A class attribute rather than an option so users cannot configure their way into 429s; tests lower it.
    min_interval: float = 1.0

    options: SlackOptions

    def __init__(self, ctx: NotifierContext, options: SlackOptions) -> None:
        super().__init__(ctx, options)
        self._live_locks: dict[int, asyncio.Lock] = {}  # one live-count edit per story at a time

    # --- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Check the credentials cheaply so a mistake is reported at startup, not at the first alert.

        Webhook mode only checks that the secret reads as an http(s) URL (no request: posting is the
        only thing a webhook does). Bot mode calls ``auth.test``. A bad secret or token raises
        :class:`PermanentDeliveryError`; Slack being unreachable only logs a warning, since sends are
        retried anyway.
        """
        if self.options.webhook_url is not None:
            self._webhook_url()
            return
        try:
            # Bounded here because the core awaits start() before anything else runs.
            async with asyncio.timeout(_START_CHECK_TIMEOUT):
                await self._call("auth.test", lambda client: client.auth_test(), paced=False)
        except TimeoutError:
            self.ctx.log.warning("%s: Slack did not answer auth.test at startup; going on", self.name)
        except PermanentDeliveryError:
            raise
        except DeliveryError as exc:
            self.ctx.log.warning("%s: could not check the Slack token at startup: %s", self.name, exc)

    async def send(self, event: Event) -> None:
        """Post ``event`` (or, with ``live_count``, edit the story's existing message)."""
        if self.options.live_count:
            await self._send_live(event)
        else:
            await self._post(event_message(event))

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Post the digest of ``events``, as several messages when it exceeds Slack's block limits.

        If a later part fails, the core retries the whole digest, so earlier parts may arrive twice.
        """
        for message in digest_messages(events):
            await self._post(message)

    # --- live count --------------------------------------------------------------------------------

    @staticmethod
    def _live_key(story_id: int) -> str:
        return f"live:{story_id}"

    async def _send_live(self, event: Event) -> None:
        """Edit the story's message if we posted one before, else post one and remember where it is.

        One story at a time (two events of one story delivered at once would otherwise both find no
        message and post two), and never backwards: a retried older event must not overwrite the
        message with an older count.
        """
        story_id = event.story.id
        lock = self._live_locks.setdefault(story_id, asyncio.Lock())
        try:
            async with lock:
                await self._send_live_locked(event)
        finally:
            if not lock.locked() and self._live_locks.get(story_id) is lock:
                del self._live_locks[story_id]

    async def _send_live_locked(self, event: Event) -> None:
        message = event_message(event, live=True)
        key = self._live_key(event.story.id)
        where = await self.ctx.state.get(key)
        if isinstance(where, dict) and isinstance(where.get("channel"), str) and isinstance(where.get("ts"), str):
            shown = where.get("comments")
            if isinstance(shown, int) and event.story.comments < shown:
                self.ctx.log.info("%s: story %s already shows %d comments; not rolling back to %d",
                                  self.name, event.story.id, shown, event.story.comments)
                return
            try:
                await self._update(where["channel"], where["ts"], message)
                await self.ctx.state.set(key, {**where, "comments": event.story.comments})
                return
            except _LiveMessageGone:
                self.ctx.log.info("%s: live message for story %s is gone; posting a new one", self.name, event.story.id)
        posted = await self._post(message)
        if posted is not None:
            await self.ctx.state.set(key, {**posted, "comments": event.story.comments})

    async def _update(self, channel: str, ts: str, message: SlackMessage) -> None:
        try:
            await self._call(
                "chat.update",
                lambda client: client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
            )
        except SlackPermanentError as exc:
            if exc.code in _LIVE_MESSAGE_GONE:
                raise _LiveMessageGone from None
            raise

    # --- posting -----------------------------------------------------------------------------------

    async def _post(self, message: SlackMessage) -> dict[str, str] | None:
        """Post one message; in bot mode return where it landed (``{"channel": id, "ts": ts}``)."""
        if self.options.webhook_url is not None:
            await self._post_webhook(message)
            return None
        extras: dict[str, Any] = {}
        if self.options.username:
            extras["username"] = self.options.username
        if self.options.icon_emoji:
            extras["icon_emoji"] = self.options.icon_emoji
        response = await self._call(
            "chat.postMessage",
            lambda client: client.chat_postMessage(
                channel=self.options.channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=self.options.unfurl_links,
                unfurl_media=self.options.unfurl_links,
                **extras,
            ),
        )
        return {"channel": str(response.get("channel", self.options.channel)), "ts": str(response.get("ts", ""))}

    async def _call(self, method: str, request: _ApiRequest, *, paced: bool = True) -> AsyncSlackResponse:
        """Run one Web API call (``request(client)``) and map its failures.

        ``paced`` calls (those that post to the channel) wait for the channel's turn first.
        """
        token = self._reveal(self.options.token, "token")
        client = AsyncWebClient(
            token=token,
            base_url=self.options.base_url,
            session=self.ctx.session,
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        pacer = _pacer(f"api|{self.options.base_url}|{_fingerprint(token)}|{self.options.channel}")
        if not paced:
            return await self._request(method, request, client, pacer)
        async with pacer.turn(self.min_interval):
            return await self._request(method, request, client, pacer)

    @staticmethod
    async def _request(
        method: str, request: _ApiRequest, client: AsyncWebClient, pacer: _Pacer
    ) -> AsyncSlackResponse:
        try:
            return await request(client)
        except SlackApiError as exc:
            _raise_api_error(method, exc, pacer)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DeliveryError(f"Slack {method}: {_describe_network_error(exc)}") from None

    async def _post_webhook(self, message: SlackMessage) -> None:
        url = self._webhook_url()
        client = AsyncWebhookClient(url, session=self.ctx.session, logger=_SDK_LOG, retry_handlers=[])
        body: dict[str, Any] = {
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": self.options.unfurl_links,
            "unfurl_media": self.options.unfurl_links,
        }
        if self.options.username:
            body["username"] = self.options.username
        if self.options.icon_emoji:
            body["icon_emoji"] = self.options.icon_emoji
        pacer = _pacer(f"webhook|{_fingerprint(url)}")
        async with pacer.turn(self.min_interval):
            try:
                response = await client.send_dict(body)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                # Never str(exc): aiohttp puts the request URL, which is the secret, in some messages.
                raise DeliveryError(f"Slack webhook: {_describe_network_error(exc)}") from None
            # Unlike the Web API client, the webhook client does not raise: check status and body.
            if response.status_code == 200 and response.body == "ok":
                return
            _raise_webhook_error(response.status_code, response.body or "", response.headers, pacer)

    def _webhook_url(self) -> str:
        url = self._reveal(self.options.webhook_url, "webhook_url")
        if not url.startswith(("https://", "http://")):
            raise PermanentDeliveryError("webhook_url: the secret is not an http(s) URL")
        return url

    @staticmethod
    def _reveal(secret: Secret | None, key: str) -> str:
        if secret is None:  # unreachable after Options validation; keeps the types honest
            raise PermanentDeliveryError(f"{key}: not configured")
        try:
            value = secret.reveal().strip()
        except LookupError as exc:
            raise PermanentDeliveryError(f"{key}: {exc}") from None
        if not value:
            raise PermanentDeliveryError(f"{key}: the secret is empty")
        return value


class SlackPermanentError(PermanentDeliveryError):
    """A permanent Web API failure; ``code`` is Slack's error code (``invalid_auth``...), if it gave one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class _LiveMessageGone(Exception):
    """chat.update found no message to edit."""


# --- error mapping -------------------------------------------------------------------------------------


def _header(headers: Any, name: str) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if value is None:  # slack-sdk sometimes hands over a plain dict with lower-case keys
        value = headers.get(name.lower())
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def _raise_api_error(method: str, exc: SlackApiError, pacer: _Pacer) -> NoReturn:
    """Map a Web API failure: 429/5xx/transient codes are retryable, other error codes permanent."""
    response = exc.response
    # Usually an AsyncSlackResponse; an aiohttp response (``.status``) when the body was not JSON.
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    code = code if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else None
    retry_after = parse_retry_after(_header(getattr(response, "headers", None), "Retry-After"))
    what = f"Slack {method} failed: {code}" if code else f"Slack {method} answered HTTP {status}"
    if status == 429 or code in ("ratelimited", "rate_limited"):
        pacer.hold_off(retry_after or 1.0)
        raise DeliveryError(f"{what} (rate limited)", retry_after=retry_after)
    if status == 408 or status >= 500 or code in _RETRYABLE_ERRORS:
        raise DeliveryError(what, retry_after=retry_after)
    raise SlackPermanentError(what, code=code)


def _raise_webhook_error(status: int, body: str, headers: Any, pacer: _Pacer) -> NoReturn:
    """Map a webhook answer that is not ``200 ok``; the body is Slack's error code (e.g. ``no_service``)."""
    code = body.strip() if _ERROR_CODE.fullmatch(body.strip()) else None
    what = f"Slack webhook answered HTTP {status}" + (f": {code}" if code else "")
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if status == 429:
        pacer.hold_off(retry_after or 1.0)
        raise DeliveryError(what, retry_after=retry_after)
    if status == 408 or status >= 500:
        raise DeliveryError(what, retry_after=retry_after)
    if status == 200:
        raise PermanentDeliveryError(f"Slack webhook answered {code or 'an unexpected body'} instead of ok")
    raise PermanentDeliveryError(what)


def _describe_network_error(exc: BaseException) -> str:
    """A secret-free description of a network failure (no URL, no host path)."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"network error ({type(exc).__name__})"
