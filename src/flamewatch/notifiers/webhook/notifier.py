"""The ``webhook`` notifier: POST each event (or digest) as signed JSON, following Standard Webhooks.

Delivery is one attempt per call: the core retries with backoff and honours ``Retry-After``. This module
only classifies the outcome (2xx success; 408/429/5xx and connection trouble retryable; 410, 3xx and other
4xx permanent) and never puts the URL's path or query, a header value or the secret into a message.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import yarl
from multidict import CIMultiDict

from flamewatch import (
    DeliveryError,
    Duration,
    Event,
    Notifier,
    NotifierContext,
    PermanentDeliveryError,
    Secret,
    __version__,
    raise_for_http_status,
)

from . import payload
from .signing import SecretFormatError, message_id, parse_secrets, webhook_headers

# RFC 9110 "token": what a header field name may contain.
_HEADER_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
#: The longest header line of an answer that the shared session reads (the core's, 256 KiB; a test checks the
#: two agree). Only named in the error when a receiver's answer goes over it: the session enforces it.
ANSWER_HEADER_LIMIT = 256 * 1024
# Control characters (CR and LF above all) would let a value start a new header; tab is allowed.
_BAD_VALUE_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Headers the plugin sets itself or that would corrupt the request if overridden.
_RESERVED_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding", "host"})


def redacted_origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``, plus ``/…`` when a path or query was dropped.

    Webhook URLs often carry a token in the path or query string, so only this form is ever shown.
    """
    try:
        parsed = yarl.URL(url)
        origin = f"{parsed.scheme}://{parsed.raw_host or '?'}"
        if parsed.explicit_port is not None:
            origin += f":{parsed.explicit_port}"
    except (ValueError, TypeError):
        return "<invalid url>"
    if parsed.raw_path not in ("", "/") or parsed.raw_query_string or parsed.raw_fragment:
        origin += "/…"
    return origin


def _shown_url(url: str | Secret) -> str:
    """How logs and messages name the endpoint: its origin, or where its secret comes from."""
    return repr(url) if isinstance(url, Secret) else redacted_origin(url)


def _check_url(url: str) -> None:
    if _BAD_VALUE_CHARS.search(url) or any(ch.isspace() for ch in url):
        raise ValueError("url: contains whitespace or control characters")
    try:
        parsed = yarl.URL(url)
    except (ValueError, TypeError):
        # from None: the cause quotes the URL, which may carry a token in its path or query.
        raise ValueError("url: is not a valid URL") from None
    if parsed.scheme not in ("http", "https"):
        shown = parsed.scheme or "(none)"
        raise ValueError(f"url: scheme {shown!r} is not supported; use an http:// or https:// URL")
    if not parsed.raw_host:
        raise ValueError("url: has no host name")


def _check_headers(headers: dict[str, str | Secret]) -> None:
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"headers: {name!r} is not a valid HTTP header name")
        lowered = name.lower()
        if lowered.startswith("webhook-") or lowered in _RESERVED_HEADERS:
            raise ValueError(f"headers: {name!r} is set by the webhook notifier and cannot be overridden")
        if isinstance(value, Secret):
            continue  # checked when it is read, at send time
        # The value may be a credential: name the header, never show the value.
        if not isinstance(value, str) or _BAD_VALUE_CHARS.search(value):
            raise ValueError(f"headers: value of {name!r} contains CR, LF or another control character")


@dataclass(frozen=True, repr=False)
class WebhookOptions:
    """Options of a ``type = "webhook"`` notifier.

    ``secret`` holds one ``whsec_<base64>`` secret, or several separated by spaces while rotating keys
    (each message is then signed with every key). Without a secret, messages are sent unsigned.
    ``request_timeout`` bounds one HTTP request; it is not called ``timeout`` because that key belongs to
    the core (the deadline of a whole delivery attempt).
    """

    #: The endpoint; ``{ env = "..." }`` / ``{ file = "..." }`` when it carries a token (checked when read).
    url: str | Secret
    secret: Secret | None = None
    # A value may be a secret too ({ env = "..." }): e.g. an Authorization header the receiver wants.
    headers: dict[str, str | Secret] = field(default_factory=dict)
    request_timeout: Duration = 10.0
    format: str = "standard"

    def __post_init__(self) -> None:
        if not isinstance(self.url, Secret):
            _check_url(self.url)
        _check_headers(self.headers)
        timeout = self.request_timeout
        is_number = isinstance(timeout, int | float) and not isinstance(timeout, bool)
        if not (is_number and math.isfinite(timeout) and timeout > 0):
            raise ValueError(f"request_timeout: must be a positive number of seconds, not {timeout!r}")
        if self.format not in payload.FORMATS:
            choices = ", ".join(repr(f) for f in payload.FORMATS)
            raise ValueError(f"format: {self.format!r} is not one of {choices}")

    def __repr__(self) -> str:
        # Config objects get logged: hide the URL's path/query and every header value.
        headers = {name: "***" for name in self.headers}
        return (
            f"WebhookOptions(url={_shown_url(self.url)!r}, secret={self.secret!r}, headers={headers!r}, "
            f"request_timeout={self.request_timeout!r}, format={self.format!r})"
        )


class WebhookNotifier(Notifier):
    """POST events as signed JSON to an HTTP endpoint (Standard Webhooks headers)."""

    type_name = "webhook"
    description = "POSTs each event or digest as signed JSON (Standard Webhooks) to an HTTP endpoint"
    Options = WebhookOptions

    options: WebhookOptions

    def __init__(self, ctx: NotifierContext, options: WebhookOptions) -> None:
        super().__init__(ctx, options)
        # How messages and logs name the target: instance name and origin only.
        self._target = f"webhook {ctx.name!r} at {_shown_url(options.url)}"
        self._user_agent = f"flamewatch/{__version__}"

    async def start(self) -> None:
        """Check that the secrets are readable and well-formed, so a typo shows at startup, not at 3 a.m."""
        self._url()
        self._signing_keys()

    def _url(self) -> str:
        """The endpoint, read from its secret now when it is one (a bad value is a permanent failure)."""
        if not isinstance(self.options.url, Secret):
            return self.options.url
        try:
            url = self.options.url.reveal().strip()
        except LookupError as exc:  # names the env variable or file, never the value
            raise PermanentDeliveryError(f"{self._target}: url unavailable: {exc}") from exc
        try:
            _check_url(url)
        except ValueError as exc:  # _check_url's messages never quote the URL
            raise PermanentDeliveryError(f"{self._target}: {exc} (in the secret)") from None
        return url

    async def send(self, event: Event) -> None:
        """POST one event (``type: flamewatch.event``); its ``webhook-id`` derives from ``event.key``."""
        msg_id = message_id([event.key], kind="event")
        await self._post(self._document([event], msg_id, digest=False), msg_id)

    async def send_digest(self, events: Sequence[Event]) -> None:
        """POST several events as one message (``type: flamewatch.digest``); nothing is sent for none."""
        if not events:
            return
        msg_id = message_id([e.key for e in events], kind="digest")
        await self._post(self._document(events, msg_id, digest=True), msg_id)

    def _document(self, events: Sequence[Event], msg_id: str, *, digest: bool) -> dict[str, Any]:
        if self.options.format == "alertmanager":
            return payload.alertmanager_document(events, receiver=self.name, group_key=msg_id)
        return payload.digest_document(events) if digest else payload.event_document(events[0])

    def _signing_keys(self) -> list[bytes]:
        """The HMAC keys, read from the secret now (so a rotated secret file is picked up)."""
        if self.options.secret is None:
            return []
        try:
            return parse_secrets(self.options.secret.reveal())
        except LookupError as exc:  # names the env variable or file, never the value
            raise PermanentDeliveryError(f"{self._target}: secret unavailable: {exc}") from exc
        except SecretFormatError as exc:  # names the position of the bad secret, never its text
            raise PermanentDeliveryError(f"{self._target}: {exc}") from exc

    def _extra_headers(self) -> dict[str, str]:
        """The configured extra headers, secrets read now (a bad secret value is permanent)."""
        headers: dict[str, str] = {}
        for name, value in self.options.headers.items():
            if isinstance(value, Secret):
                try:
                    value = value.reveal()
                except LookupError as exc:  # names the env variable or file, never the value
                    raise PermanentDeliveryError(f"{self._target}: header {name!r}: {exc}") from exc
                if _BAD_VALUE_CHARS.search(value):
                    raise PermanentDeliveryError(f"{self._target}: header {name!r}: secret has control characters")
            headers[name] = value
        return headers

    async def _post(self, document: dict[str, Any], msg_id: str) -> None:
        body = payload.encode(document)
        timestamp = int(time.time())  # per attempt: receivers reject stale timestamps
        # Case-insensitive, so a configured "user-agent" replaces ours instead of being sent beside it.
        headers: CIMultiDict[str] = CIMultiDict({"User-Agent": self._user_agent})
        headers.update(self._extra_headers())
        headers["Content-Type"] = "application/json"
        headers.update(webhook_headers(self._signing_keys(), msg_id, timestamp, body))
        timeout = self.options.request_timeout
        # Exceptions are re-raised "from None": the cause may contain the full URL, which can carry a token
        # (aiohttp puts it in messages such as "Connection timeout to host <url>").
        try:
            async with self.ctx.session.post(
                self._url(),
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except TimeoutError:
            raise DeliveryError(f"{self._target} did not answer within {timeout:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            error = exc.os_error
            # asyncio's "Connect call failed (...)" text names the address; the errno says why.
            reason = os.strerror(error.errno) if error.errno else (error.strerror or type(error).__name__)
            raise DeliveryError(f"{self._target}: cannot connect ({reason})") from None
        except aiohttp.ClientResponseError:
            # The answer's head could not be parsed (a header line over the session's limit, or not HTTP).
            # Its text is not shown: it is the receiver's, and may hold a cookie or a token.
            raise DeliveryError(f"{self._target}: its answer could not be read (a header over "
                                f"{ANSWER_HEADER_LIMIT // 1024} KiB, or not HTTP)") from None
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"{self._target}: request failed ({type(exc).__name__})") from None

        if status == 410:
            raise PermanentDeliveryError(
                f"{self._target} answered HTTP 410 Gone: the endpoint was removed; fix or remove this notifier"
            )
        if 300 <= status < 400:
            raise PermanentDeliveryError(
                f"{self._target} answered HTTP {status} (a redirect, which is not followed); "
                "configure the final URL"
            )
        raise_for_http_status(status, self._target, retry_after=retry_after)
        self.ctx.log.debug("%s accepted %s (%d bytes): HTTP %d", self._target, msg_id, len(body), status)
