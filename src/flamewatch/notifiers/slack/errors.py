"""Mapping Slack's answers and network failures to flamewatch's delivery errors.

Retryable (:class:`~flamewatch.DeliveryError`): HTTP 408, 429 and 5xx, network trouble and Slack's
transient error codes. Everything else is permanent (:class:`SlackPermanentError`, a
:class:`~flamewatch.PermanentDeliveryError`). A 429 also holds the channel's pacer for the requested
``Retry-After``, so this instance's next message waits too. No message built here contains a token or a
webhook URL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

import aiohttp

from flamewatch import DeliveryError, Pacer, PermanentDeliveryError, parse_retry_after

if TYPE_CHECKING:
    from slack_sdk.errors import SlackApiError

# Slack API error codes that mean "try again later"; every other code is a permanent failure.
_RETRYABLE_CODES = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
_RATE_LIMITED_CODES = frozenset({"ratelimited", "rate_limited"})
# What an error code looks like; anything else in a body is not echoed into a message.
_ERROR_CODE = re.compile(r"[a-z0-9_]{1,64}")


class SlackPermanentError(PermanentDeliveryError):
    """A permanent Web API failure; ``code`` is Slack's error code (``invalid_auth``...), if it gave one."""

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def _header(headers: object, name: str) -> str | None:
    """One header's value from what slack-sdk hands over (a multidict, or a plain dict of lists)."""
    if not isinstance(headers, Mapping) or not headers:
        return None
    value = headers.get(name)
    if value is None:  # slack-sdk sometimes hands over a plain dict with lower-case keys
        value = headers.get(name.lower())
    if isinstance(value, list):
        value = value[0] if value else None
    return str(value) if value is not None else None


def api_error(method: str, exc: SlackApiError, pacer: Pacer) -> DeliveryError:
    """The error to raise for a failed Web API call: 429/5xx/transient codes retryable, other codes permanent."""
    response = exc.response
    # Usually an AsyncSlackResponse; an aiohttp response (``.status``) when the body was not JSON.
    status = int(getattr(response, "status_code", None) or getattr(response, "status", 0) or 0)
    data = getattr(response, "data", None)
    raw_code = data.get("error") if isinstance(data, dict) else None
    code = raw_code if isinstance(raw_code, str) and _ERROR_CODE.fullmatch(raw_code) else None
    retry_after = parse_retry_after(_header(getattr(response, "headers", None), "Retry-After"))
    what = f"Slack {method} failed: {code}" if code else f"Slack {method} answered HTTP {status}"
    if status == 429 or code in _RATE_LIMITED_CODES:
        pacer.hold_off(retry_after or 1.0)
        return DeliveryError(f"{what} (rate limited)", retry_after=retry_after)
    if status == 408 or status >= 500 or code in _RETRYABLE_CODES:
        return DeliveryError(what, retry_after=retry_after)
    return SlackPermanentError(what, code=code)


def webhook_error(status: int, body: str, headers: object, pacer: Pacer) -> DeliveryError:
    """The error to raise for a webhook answer other than ``200 ok``; the body is Slack's error code."""
    code = body.strip() if _ERROR_CODE.fullmatch(body.strip()) else None
    what = f"Slack webhook answered HTTP {status}" + (f": {code}" if code else "")
    retry_after = parse_retry_after(_header(headers, "Retry-After"))
    if status == 429:
        pacer.hold_off(retry_after or 1.0)
        return DeliveryError(what, retry_after=retry_after)
    if status == 408 or status >= 500:
        return DeliveryError(what, retry_after=retry_after)
    if status == 200:
        return PermanentDeliveryError(f"Slack webhook answered {code or 'an unexpected body'} instead of ok")
    return PermanentDeliveryError(what)


def describe_network_error(exc: BaseException) -> str:
    """A secret-free description of a network failure (no URL, no host path)."""
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timed out"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect ({exc.os_error.strerror or type(exc.os_error).__name__})"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    return f"network error ({type(exc).__name__})"
