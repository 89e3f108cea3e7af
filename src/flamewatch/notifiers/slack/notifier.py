"""The Slack notifier: posts events through an incoming webhook or a bot token (``chat.postMessage``).

The core owns retries, backoff and the outbox, so the slack-sdk clients are built with
``retry_handlers=[]`` and every failure is turned into :class:`DeliveryError` (try again later) or
:class:`PermanentDeliveryError` (a config problem), see :mod:`.errors`. The one wait done here is the
per-channel pacing (:mod:`flamewatch.pacing`): Slack accepts about one message a second per channel.
Every instance posting to one channel (same API, token and channel, or same webhook) shares its pacer,
so two instances cannot together exceed the rate.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from yarl import URL

from flamewatch import DeliveryError, Event, Notifier, NotifierContext, PermanentDeliveryError, Secret
from flamewatch.pacing import Pace, Pacer, fingerprint, shared_pacer

from .errors import SlackPermanentError, api_error, describe_network_error, webhook_error
from .format import SlackMessage, digest_messages, event_message
from .options import SlackOptions

if TYPE_CHECKING:  # slack_sdk itself is imported when a message is sent (about 30 ms and 2 MB a start-up)
    from slack_sdk.web.async_client import AsyncWebClient
    from slack_sdk.web.async_slack_response import AsyncSlackResponse

    #: One Web API call to make with a ready client, e.g. ``lambda client: client.auth_test()``.
    _ApiRequest = Callable[[AsyncWebClient], Awaitable[AsyncSlackResponse]]

# slack-sdk logs request URLs at DEBUG level, and a webhook URL is a secret. Its clients get this
# logger, pinned above DEBUG, so turning on debug logging elsewhere cannot leak one.
_SDK_LOG = logging.getLogger("flamewatch.notifier.slack.sdk")
_SDK_LOG.setLevel(logging.WARNING)

# chat.update errors after which the live message is gone and a new one should be posted.
_LIVE_MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})
# Longest the startup token check may take before we go on without it.
_START_CHECK_TIMEOUT = 10.0
#: Longest a ``Retry-After`` may hold a channel's later messages (the core's retry waits the full time).
_MAX_HOLD_OFF = 60.0
# Network failures of one request (aiohttp's, a timeout, a socket error).
_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)

#: What a URL's host may be made of once IDNA-encoded (a name, IPv4 or IPv6); anything else is a typo.
_HOST = re.compile(r"[A-Za-z0-9._:-]+")


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
        if self.options.live_count and event.about_story:  # no story, no count to keep up to date
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
        key = f"live:{event.story.id}"
        where = await self.ctx.state.get(key)
        if isinstance(where, dict) and isinstance(where.get("channel"), str) and isinstance(where.get("ts"), str):
            shown = where.get("comments")
            if isinstance(shown, int) and event.story.comments < shown:
                self.ctx.log.info("%s: story %s already shows %d comments; not rolling back to %d",
                                  self.name, event.story.id, shown, event.story.comments)
                return
            if await self._update(where["channel"], where["ts"], message):
                await self.ctx.state.set(key, {**where, "comments": event.story.comments})
                return
            self.ctx.log.info("%s: live message for story %s is gone; posting a new one", self.name, event.story.id)
        posted = await self._post(message)
        if posted is not None:
            await self.ctx.state.set(key, {**posted, "comments": event.story.comments})

    async def _update(self, channel: str, ts: str, message: SlackMessage) -> bool:
        """Edit the message at ``channel``/``ts``; False when it is gone (deleted, or too old to edit)."""
        try:
            await self._call(
                "chat.update",
                lambda client: client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks),
            )
        except SlackPermanentError as exc:
            if exc.code in _LIVE_MESSAGE_GONE:
                return False
            raise
        return True

    # --- posting -----------------------------------------------------------------------------------

    def _display_extras(self) -> dict[str, Any]:
        """The optional ``username`` and ``icon_emoji`` arguments, when configured."""
        extras: dict[str, Any] = {}
        if self.options.username:
            extras["username"] = self.options.username
        if self.options.icon_emoji:
            extras["icon_emoji"] = self.options.icon_emoji
        return extras

    async def _post(self, message: SlackMessage) -> dict[str, str] | None:
        """Post one message; in bot mode return where it landed (``{"channel": id, "ts": ts}``)."""
        if self.options.webhook_url is not None:
            await self._post_webhook(message)
            return None
        channel = self._channel()
        response = await self._call(
            "chat.postMessage",
            lambda client: client.chat_postMessage(
                channel=channel,
                text=message.text,
                blocks=message.blocks,
                unfurl_links=self.options.unfurl_links,
                unfurl_media=self.options.unfurl_links,
                metadata=message.metadata,
                **self._display_extras(),
            ),
        )
        return {"channel": str(response.get("channel", channel)), "ts": str(response.get("ts", ""))}

    async def _call(self, method: str, request: _ApiRequest, *, paced: bool = True) -> AsyncSlackResponse:
        """Run one Web API call (``request(client)``) and map its failures.

        ``paced`` calls (those that post to the channel) wait for the channel's turn first.
        """
        from slack_sdk.web.async_client import AsyncWebClient

        token = self._reveal(self.options.token, "token")
        client = AsyncWebClient(
            token=token,
            base_url=self.options.base_url,
            session=self.ctx.session,
            logger=_SDK_LOG,
            retry_handlers=[],
        )
        pacer = self._pacer(f"api|{self.options.base_url}|{fingerprint(token)}|{self.options.channel}")
        if not paced:
            return await self._request(method, request, client, pacer)
        async with pacer.turn():
            return await self._request(method, request, client, pacer)

    @staticmethod
    async def _request(
        method: str, request: _ApiRequest, client: AsyncWebClient, pacer: Pacer
    ) -> AsyncSlackResponse:
        from slack_sdk.errors import SlackApiError

        try:
            return await request(client)
        except SlackApiError as exc:
            raise api_error(method, exc, pacer) from exc
        except (aiohttp.InvalidURL, ValueError) as exc:
            # The request could not even be built (a base_url that is no URL, a header aiohttp refuses):
            # a config mistake, which no retry fixes. from None: the message may quote the token.
            raise PermanentDeliveryError(f"Slack {method}: the request cannot be made ({type(exc).__name__}): "
                                         "check token and base_url") from None
        except _NETWORK_ERRORS as exc:
            # The Web API URL holds no secret (the token travels in a header), so the cause is kept.
            raise DeliveryError(f"Slack {method}: {describe_network_error(exc)}") from exc

    async def _post_webhook(self, message: SlackMessage) -> None:
        from slack_sdk.webhook.async_client import AsyncWebhookClient

        url = self._webhook_url()
        client = AsyncWebhookClient(url, session=self.ctx.session, logger=_SDK_LOG, retry_handlers=[])
        body: dict[str, Any] = {
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": self.options.unfurl_links,
            "unfurl_media": self.options.unfurl_links,
            **self._display_extras(),
        }
        pacer = self._pacer(f"webhook|{fingerprint(url)}")
        async with pacer.turn():
            try:
                response = await client.send_dict(body)
            except (aiohttp.InvalidURL, ValueError):
                raise PermanentDeliveryError("Slack webhook: webhook_url is not a valid URL") from None
            except _NETWORK_ERRORS as exc:
                # from None: the cause may contain the webhook URL, which is the secret (aiohttp puts the
                # request URL in some messages), so neither str(exc) nor the chained cause is shown.
                raise DeliveryError(f"Slack webhook: {describe_network_error(exc)}") from None
            # Unlike the Web API client, the webhook client does not raise: check status and body.
            if response.status_code == 200 and response.body == "ok":
                return
            raise webhook_error(response.status_code, response.body or "", response.headers, pacer)

    def _pacer(self, key: str) -> Pacer:
        """The channel's pacer: :attr:`min_interval` between messages, shared with every instance posting there."""
        return shared_pacer(key, Pace(interval=self.min_interval, max_hold_off=_MAX_HOLD_OFF))

    def _channel(self) -> str:
        """The bot-mode channel (always set then: :class:`SlackOptions` requires it with ``token``)."""
        if not self.options.channel:
            raise PermanentDeliveryError("channel: required with token")
        return self.options.channel

    def _webhook_url(self) -> str:
        url = self._reveal(self.options.webhook_url, "webhook_url")
        if not url.startswith(("https://", "http://")):
            raise PermanentDeliveryError("webhook_url: the secret is not an http(s) URL")
        try:
            host = URL(url).raw_host  # IDNA-encoded: letters, digits, dots, hyphens (or an IP literal)
        except ValueError:
            host = None
        if not host or not _HOST.fullmatch(host):
            raise PermanentDeliveryError("webhook_url: the secret is not a valid http(s) URL")
        return url

    @staticmethod
    def _reveal(secret: Secret | None, key: str) -> str:
        if secret is None:  # unreachable after Options validation; keeps the types honest
            raise PermanentDeliveryError(f"{key}: not configured")
        try:
            value = secret.reveal().strip()
        except LookupError as exc:  # names the variable or file, never the value
            raise PermanentDeliveryError(f"{key}: {exc}") from exc
        if not value:
            raise PermanentDeliveryError(f"{key}: the secret is empty")
        if not value.isprintable():
            # A control character (a newline pasted with the token) would be refused by aiohttp on every
            # attempt; say so once, as the config mistake it is. Which character is not shown: it is secret.
            raise PermanentDeliveryError(f"{key}: the secret holds a control or non-printable character")
        return value
