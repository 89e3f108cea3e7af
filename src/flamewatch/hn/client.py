"""The Hacker News API client: one shared aiohttp session, bounded concurrency, timeouts and retries.

Every request goes through one coroutine, ``HNClient._get``, which holds one of the ``max_inflight``
request slots only while the HTTP exchange is in progress (not while decoding, not while backing off
before a retry), so the server never sees more than ``max_inflight`` concurrent requests from us.
"""

from __future__ import annotations

from urllib.parse import SplitResult, quote

import asyncio
import json
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_API_URL",
    "MAX_BODY_BYTES",
    "STORY_LISTS",
    "ClientStats",
    "HNClient",
    "make_session",
]

import aiohttp
import orjson
from yarl import URL

from ..errors import FetchError
from .item import Item, Walked, is_item_id, parse_walked

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


class _Slots:
    """The ``max_inflight`` request slots: a counting semaphore whose uncontended take is one comparison.

    ``asyncio.Semaphore`` costs a coroutine call per acquire even when a slot is free; on a crawl's
    hottest path (one take per item, nearly always free, since the walk pool never runs more workers than
    there are slots) that is measurable. Waiters are served first come, first served.
    """

    __slots__ = ("_waiters", "free")

    def __init__(self, size: int) -> None:
        self.free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def wait(self) -> None:
        """Wait until a slot is handed over (call only when ``free`` is 0)."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we were cancelled: pass it on
            elif waiter in self._waiters:  # give() drops cancelled waiters itself
                self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back: straight to the longest waiter, if any."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


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
        base = URL(self.base_url, encoded=True)
        # An item's URL from these parts (see _get); None for a base URL with a query or a fragment.
        self._item_base = (None if base.raw_query_string or base.raw_fragment else
                           (base.scheme, base.raw_authority, base.raw_path.rstrip("/") + "/"))
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.retries = retries
        self.backoff = backoff
        self.max_inflight = max_inflight
        self._slots = _Slots(max_inflight)
        self.stats = ClientStats()

    def item(self, item_id: int) -> Coroutine[Any, Any, Item | None]:
        """The item, parsed and checked (see :class:`Item`), or None when HN answers ``null`` (await it).

        Raises :class:`FetchError` when it cannot be fetched or is not a JSON object. Unusable fields
        are dropped, listed in :attr:`Item.dropped` and counted in ``stats.dropped_fields``.
        """
        # Not a coroutine function itself: the caller awaits _get's coroutine, one frame less per item.
        return self._get(f"item/{item_id}.json", item_id)

    def walked(self, item_id: int) -> Coroutine[Any, Any, Walked | Item | None]:
        """:meth:`item` for a tree walk: a well-formed comment as ``(deleted, dead, kids)``, anything else
        as the :class:`Item` (see :func:`~flamewatch.hn.item.parse_walked`); None for ``null`` (await it)."""
        return self._get(f"item/{item_id}.json", item_id, parse_walked)

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

    async def get_json(self, path: str) -> Any:
        """GET ``<base_url>/<path>`` and decode JSON, retrying what may succeed on another attempt."""
        return await self._get(path, None)

    # One crawl runs this once per item, so the usual answer (200, plain, of a small declared length) takes
    # this one coroutine frame and no call that can be avoided; everything else leaves by _unusual/_failure.
    async def _get(self, path: str, item_id: int | None,
                   parse: Callable[[dict[str, Any], int], Item | Walked] = Item.parse) -> Any:
        """:meth:`get_json`; with an ``item_id``, the body must be a JSON object or ``null``, parsed to an Item.

        Each attempt holds one request slot for its HTTP exchange only (not while decoding, not while
        backing off before a retry)."""
        # Built pre-encoded: our paths are plain ASCII, and skipping yarl's re-parsing and normalising
        # of every URL is a measurable share of a request's CPU cost on a 30,000-item crawl.
        # An item's from its parts: URL() of a whole string parses it again (yarl's split_url); from the
        # parts it was ~12k instructions an item less under callgrind. An item path has no query or fragment.
        parts = self._item_base
        if item_id is None or parts is None:
            url = URL(f"{self.base_url}/{path}", encoded=True)
        else:
            url = URL(_tuple(SplitResult, (parts[0], parts[1], parts[2] + path, "", "")), encoded=True)
        stats, slots = self.stats, self._slots
        attempt = 0
        while True:
            if slots.free:  # never true while others wait: a freed slot goes to a waiter first
                slots.free -= 1
            else:
                await slots.wait()
            stats.requests += 1
            stats.inflight += 1
            if stats.inflight > stats.max_inflight_seen:
                stats.max_inflight_seen = stats.inflight
            try:
                async with self.session.get(url, timeout=self.timeout, allow_redirects=False) as resp:
                    length = resp.content_length
                    if (resp.status == 200 and length is not None and length <= MAX_BODY_BYTES
                            and "Content-Encoding" not in resp.headers):
                        body: bytes | URL = await resp.read()
                    else:
                        body = await self._unusual(resp, url, path)
                if not isinstance(body, bytes):  # a redirect within the origin: follow it, on this slot
                    body = await self._follow(body, path)
                failure = None
            except Exception as exc:  # _failure sorts it out: another attempt, or FetchError
                failure = self._failure(exc, path)
            finally:
                stats.inflight -= 1
                slots.give()  # before decoding: the slot is for the exchange, and another fetch may wait
            if failure is None:
                try:
                    data = _decode(body)  # type: ignore[arg-type]  # bytes: failure is None
                except (ValueError, RecursionError):  # RecursionError: absurdly nested JSON, hostile or broken
                    failure = "malformed JSON"
                else:
                    if item_id is None or data is None:
                        return data
                    return self._item(path, item_id, data, parse)
            # This attempt failed in a way another may fix.
            if attempt >= self.retries:
                stats.failures += 1
                raise FetchError(f"{path}: {failure} (after {attempt + 1} attempts)") from None
            # Full jitter spreads retries out so a hiccup does not become a thundering herd.
            delay = random.uniform(0, self.backoff * (2**attempt))
            attempt += 1
            stats.retries += 1
            await asyncio.sleep(delay)

    def _failure(self, exc: Exception, path: str) -> str:
        """Why an attempt failed, when another attempt may do better; else raises FetchError."""
        if isinstance(exc, _Retryable):
            return str(exc)
        if isinstance(exc, FetchError):
            self.stats.failures += 1
            raise exc
        if isinstance(exc, TimeoutError | aiohttp.ClientError):
            reason = type(exc).__name__ if isinstance(exc, TimeoutError) else str(exc) or type(exc).__name__
            return " ".join(reason.split())[:300]
        # Whatever else a hostile answer can make the HTTP stack raise (a ValueError from a header it cannot
        # parse...) is this fetch failing, never the cycle: the caller's fallbacks (the previous list, no
        # updates) only catch FetchError.
        log.debug("%s: unexpected client error", path, exc_info=exc)
        self.stats.failures += 1
        raise FetchError(f"{path}: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None

    def _item(self, path: str, item_id: int, data: Any, parse: Callable[[dict[str, Any], int], Item | Walked]
              ) -> Item | Walked:
        if type(data) is not dict:
            self.stats.failures += 1
            raise FetchError(f"{path}: expected a JSON object, got {type(data).__name__}")
        item = parse(data, item_id)
        if not isinstance(item, tuple) and item.dropped:
            self.stats.dropped_fields += len(item.dropped)
        return item

    async def _unusual(self, resp: aiohttp.ClientResponse, url: URL, path: str) -> bytes | URL:
        """The body of an answer off the common path, or where its redirect leads."""
        if resp.status in _REDIRECTS:
            return _redirect_target(url, resp.headers.get("Location"), path)
        if resp.status >= 500 or resp.status in (408, 429):
            raise _Retryable(f"HTTP {resp.status}")
        if resp.status != 200:
            raise FetchError(f"{path}: HTTP {resp.status}")
        return await _read_body(resp, path)

    async def _follow(self, url: URL, path: str) -> bytes:
        """Follow a redirect, and at most :data:`MAX_REDIRECTS` in all, within the origin.

        Redirects are followed here rather than by aiohttp, so a ``Location`` to another host or port
        is refused (an API answer must not send us to scan the caller's network) and a malformed one
        is a :class:`FetchError` naming it, not a ValueError from deep inside the HTTP stack.
        """
        for _ in range(MAX_REDIRECTS):
            async with self.session.get(url, timeout=self.timeout, allow_redirects=False) as resp:
                answer = await self._unusual(resp, url, path)
            if isinstance(answer, bytes):
                return answer
            url = answer
        raise FetchError(f"{path}: more than {MAX_REDIRECTS} redirects")


_tuple = tuple.__new__  # SplitResult without its Python-level __new__


def _decode(body: bytes) -> Any:
    """JSON from ``body``: orjson on the hot path, the standard library for what orjson refuses.

    orjson refuses a few things HN could send that ``json`` reads: integers beyond 64 bits and the
    ``NaN``/``Infinity`` literals among them. Those must reach :meth:`Item.parse` (which drops the field)
    rather than fail the whole item, so anything orjson cannot read gets a second opinion.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


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


#: The longest response header line (and status line) the shared session reads. aiohttp's default, 8 KiB,
#: turned a receiver's "200 OK" with one big header (a 60 KB cookie, a tracing blob) into a failed send,
#: retried until dead-lettered though every attempt had been accepted. Bounded still: a header is read
#: into memory whole.
MAX_HEADER_LINE = 256 * 1024


def make_session(*, limit: int = 100) -> aiohttp.ClientSession:
    """The one aiohttp session flamewatch shares between the HN client and the notifiers."""
    connector = aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        headers={"User-Agent": "flamewatch (+https://github.com/flamewatch/flamewatch)"},
        raise_for_status=False,
        max_line_size=MAX_HEADER_LINE,
        max_field_size=MAX_HEADER_LINE,
    )
