"""The Hacker News API client: one shared aiohttp session, bounded concurrency, timeouts and retries.

Every request goes through :meth:`HNClient.get_json`, which holds a permit of the ``max_inflight``
semaphore only while the HTTP exchange is in progress (never while backing off, and never across a
crawl's fan-out), so the server never sees more than ``max_inflight`` concurrent requests from us.
"""

from __future__ import annotations

from urllib.parse import quote

import asyncio
import json
import logging
import random
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_API_URL",
    "MAX_BODY_BYTES",
    "STORY_LISTS",
    "ClientStats",
    "HNClient",
    "Permit",
    "make_session",
]

import aiohttp
from yarl import URL

from ..errors import FetchError
from .item import Item, is_item_id

log = logging.getLogger("flamewatch.hn")

DEFAULT_API_URL = "https://hacker-news.firebaseio.com/v0"

#: The lists HN publishes, as named in the API paths.
STORY_LISTS = ("topstories", "newstories", "beststories", "askstories", "showstories", "jobstories")

# A real item is a few KB; anything far larger is hostile or broken and is refused unread. The limit is on
# the decoded body: a gzip-encoded answer counts what it expands to, while it expands.
MAX_BODY_BYTES = 2_000_000

#: Same-origin redirects followed per request; the API never redirects, so a few is plenty.
MAX_REDIRECTS = 3

_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class _Retryable(Exception):
    """Internal: this attempt failed in a way another attempt may fix."""


@dataclass
class ClientStats:
    """Counters since the client was made (a cycle takes the difference of two :meth:`copy`)."""

    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    failures: int = 0  # requests that gave up (FetchError raised)
    inflight: int = 0
    max_inflight_seen: int = 0
    dropped_fields: int = 0  # item fields present but unusable (wrong type, out of range): see Item.dropped

    def copy(self) -> ClientStats:
        """A snapshot of the counters."""
        return ClientStats(self.requests, self.retries, self.failures, self.inflight, self.max_inflight_seen,
                           self.dropped_fields)


class Permit:
    """One reserved request slot of an :class:`HNClient` (see :meth:`HNClient.reserve`).

    Released exactly once, by the request that uses it or by whoever gives it up; releasing again is
    harmless, so a caller can always release in a done callback as a safety net.
    """

    __slots__ = ("_held", "_semaphore")

    def __init__(self, semaphore: asyncio.Semaphore) -> None:
        self._semaphore = semaphore
        self._held = True

    def release(self) -> None:
        if self._held:
            self._held = False
            self._semaphore.release()


class HNClient:
    """Fetches HN items and lists.

    ``session`` is shared and owned by the caller. ``timeout`` bounds each attempt; ``retries`` is the
    number of extra attempts after a 5xx, a timeout, a connection error or a malformed body, with
    exponential backoff (full jitter) starting at ``backoff`` seconds.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str = DEFAULT_API_URL,
        *,
        timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.25,
        max_inflight: int = 32,
    ) -> None:
        if max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        self.session = session
        self.base_url = str(URL(base_url.rstrip("/")))  # encoded once, so requests can skip it
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_inflight = max_inflight
        self._permits = asyncio.Semaphore(max_inflight)
        self.stats = ClientStats()

    async def reserve(self) -> Permit:
        """Wait for a free request slot and hold it for a later :meth:`item` call.

        The crawl reserves a slot *before* creating a kid's task, so it never creates more tasks than
        can fetch at once (a huge tree would otherwise hold tens of thousands of idle tasks), and the
        task then fetches without waiting a second time.
        """
        await self._permits.acquire()
        return Permit(self._permits)

    def item(self, item_id: int, *, permit: Permit | None = None) -> Coroutine[Any, Any, Item | None]:
        """The item, parsed and checked (see :class:`Item`), or None when HN answers ``null``.

        ``permit``, from :meth:`reserve`, is used by the first attempt and released after it.
        Raises :class:`FetchError` when it cannot be fetched or is not a JSON object. Unusable fields
        are dropped, listed in :attr:`Item.dropped` and counted in ``stats.dropped_fields``.
        """
        # A plain function returning _get's coroutine: one coroutine frame less on the hottest path.
        return self._get(f"item/{item_id}.json", permit, item_id)

    async def story_ids(self, list_name: str = "topstories") -> list[int]:
        """The ids of one of HN's lists (``topstories`` and friends), in rank order; non-ids are skipped."""
        data = await self.get_json(f"{list_name}.json")
        if not isinstance(data, list):
            raise FetchError(f"{list_name}: expected a JSON list, got {type(data).__name__}")
        return [i for i in data if is_item_id(i)]

    async def user(self, name: str) -> dict[str, Any] | None:
        """The profile ``/v0/user/<name>.json`` (``submitted``: their items, newest first), or None when HN has
        no such user. Raises :class:`FetchError` when it cannot be fetched or is not a JSON object."""
        data = await self.get_json(f"user/{quote(name, safe='')}.json")
        if data is None:
            return None
        if not isinstance(data, dict):
            raise FetchError(f"user {name}: expected a JSON object, got {type(data).__name__}")
        return data

    async def updates(self) -> set[int]:
        """Ids of recently changed items (``/v0/updates.json``); empty when the answer is unusable."""
        data = await self.get_json("updates.json")
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list):
            return set()
        return {i for i in items if is_item_id(i)}

    async def get_json(self, path: str, *, permit: Permit | None = None) -> Any:
        """GET ``<base_url>/<path>`` and decode JSON, retrying what may succeed on another attempt."""
        return await self._get(path, permit, None)

    async def _get(self, path: str, permit: Permit | None, item_id: int | None) -> Any:
        """:meth:`get_json`; with an ``item_id``, the body must be a JSON object or ``null``, parsed to an Item."""
        # Built pre-encoded: our paths are plain ASCII, and skipping yarl's re-parsing and normalising
        # of every URL is a measurable share of a request's CPU cost on a 30,000-item crawl.
        url = URL(f"{self.base_url}/{path}", encoded=True)
        attempt = 0
        while True:
            try:
                data = await self._attempt(url, path, permit)
            except _Retryable as exc:
                permit = None  # used up by the first attempt; retries queue for a slot again
                if attempt >= self.retries:
                    self.stats.failures += 1
                    raise FetchError(f"{path}: {exc} (after {attempt + 1} attempts)") from None
                # Full jitter spreads retries out so a hiccup does not become a thundering herd.
                delay = random.uniform(0, self.backoff * (2**attempt))
                attempt += 1
                self.stats.retries += 1
                await asyncio.sleep(delay)
                continue
            except FetchError:
                self.stats.failures += 1
                raise
            if item_id is None or data is None:
                return data
            if type(data) is not dict:
                self.stats.failures += 1
                raise FetchError(f"{path}: expected a JSON object, got {type(data).__name__}")
            item = Item.parse(data, item_id)
            if item.dropped:
                self.stats.dropped_fields += len(item.dropped)
            return item

    async def _attempt(self, url: URL, path: str, permit: Permit | None) -> Any:
        if permit is None:
            permit = await self.reserve()
        try:
            stats = self.stats
            stats.requests += 1
            stats.inflight += 1
            stats.max_inflight_seen = max(stats.max_inflight_seen, stats.inflight)
            try:
                body = await self._exchange(url, path)
            except (_Retryable, FetchError):
                raise
            except (TimeoutError, aiohttp.ClientError) as exc:
                reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
                raise _Retryable(" ".join(reason.split())[:300]) from None
            except Exception as exc:
                # Whatever else a hostile answer can make the HTTP stack raise (a ValueError from a header
                # it cannot parse...) is this fetch failing, never the cycle: the caller's fallbacks
                # (the previous list, no updates) only catch FetchError.
                log.debug("%s: unexpected client error", path, exc_info=True)
                raise FetchError(f"{path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
            finally:
                stats.inflight -= 1
        finally:
            permit.release()
        try:
            return json.loads(body)
        except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON, hostile or broken
            raise _Retryable("malformed JSON") from None

    async def _exchange(self, url: URL, path: str) -> bytes:
        """One GET and its body, following at most :data:`MAX_REDIRECTS` redirects within the origin.

        Redirects are followed here rather than by aiohttp, so a ``Location`` to another host or port
        is refused (an API answer must not send us to scan the caller's network) and a malformed one
        is a :class:`FetchError` naming it, not a ValueError from deep inside the HTTP stack.
        """
        for _ in range(MAX_REDIRECTS + 1):
            async with self.session.get(url, timeout=self.timeout, allow_redirects=False) as resp:
                if resp.status in _REDIRECTS:
                    url = _redirect_target(url, resp.headers.get("Location"), path)
                    continue
                if resp.status >= 500 or resp.status in (408, 429):
                    raise _Retryable(f"HTTP {resp.status}")
                if resp.status != 200:
                    raise FetchError(f"{path}: HTTP {resp.status}")
                return await _read_body(resp, path)
        raise FetchError(f"{path}: more than {MAX_REDIRECTS} redirects")


def _redirect_target(current: URL, location: str | None, path: str) -> URL:
    """Where a redirect from ``current`` leads, if it stays on the same origin; else FetchError."""
    if not location or not location.isascii() or not location.isprintable():
        raise FetchError(f"{path}: redirect with a missing or malformed Location")
    try:
        target = current.join(URL(location))
        same = (target.scheme, target.host, target.port) == (current.scheme, current.host, current.port)
    except ValueError:
        raise FetchError(f"{path}: redirect with a malformed Location") from None
    if not same:
        # Scheme, host and port only: the rest of a URL may carry a token.
        raise FetchError(f"{path}: redirect to another origin ({target.scheme}://{target.host}:{target.port}) "
                         "refused")
    return target


async def _read_body(resp: aiohttp.ClientResponse, path: str) -> bytes:
    """The decoded body, refused once it grows past :data:`MAX_BODY_BYTES`."""
    declared = resp.content_length  # on the wire: for a compressed answer, not what it expands to
    if declared is not None and declared > MAX_BODY_BYTES:
        raise FetchError(f"{path}: body of {declared} bytes is over the {MAX_BODY_BYTES}-byte limit")
    if declared is not None and not resp.headers.get("Content-Encoding"):
        return await resp.read()  # the common case: plain, and its length is known and small
    # Compressed or of unknown length: count decoded bytes as they come. aiohttp decompresses a bounded
    # slice per read, so a gzip bomb is refused after about the limit, never expanded whole.
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise FetchError(f"{path}: body is over the {MAX_BODY_BYTES}-byte limit (decoded)")
        chunks.append(chunk)
    return b"".join(chunks)


def make_session(*, limit: int = 100) -> aiohttp.ClientSession:
    """The one aiohttp session flamewatch shares between the HN client and the notifiers."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "flamewatch (+https://github.com/flamewatch/flamewatch)"},
        raise_for_status=False,
    )
