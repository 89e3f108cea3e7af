"""A store that fails (a corrupt or locked SQLite file, a PostgreSQL server that is down) while the HTTP
face reads it: every request that needed it gets a ``503`` saying so in one line, and the log gets one
line naming the store and the error, at most once a minute, never a traceback.

Without this, the :class:`~flamewatch.errors.StoreError` reached aiohttp, which answered ``500`` and logged
a traceback for every request: a Prometheus scraping every 15 s filled the log while the store was down.
The page itself stays up: ``/`` answers with the shell (whose script polls until the store reads again),
and a page already open keeps what it shows, marked stale, since ``/fragment`` answers ``503`` too.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from ..errors import StoreError
from .page import shell

__all__ = ["REPORT_EVERY", "StoreFailures", "store_errors"]

log = logging.getLogger("flamewatch.http")

#: At most one log line per this many seconds while the store keeps failing the same way.
REPORT_EVERY = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StoreFailures:
    """Says a store failure in the log: the first at once, then at most one line per ``every`` seconds
    (on the loop's clock) for the same error, with how many requests failed unsaid in between."""

    def __init__(self, every: float = REPORT_EVERY) -> None:
        self.every = every
        self._said: str | None = None
        self._said_at = 0.0
        self._unsaid = 0

    def report(self, request: web.Request, error: StoreError) -> None:
        message = str(error)
        now = asyncio.get_running_loop().time()
        if message == self._said and now - self._said_at < self.every:
            self._unsaid += 1
            return
        more = f" ({self._unsaid} more such answers since the last line)" if self._unsaid else ""
        log.warning("HTTP %s %s: %s; answering 503%s", request.method, request.path, message, more)
        self._said, self._said_at, self._unsaid = message, now, 0


def _answer(request: web.Request, message: str) -> web.Response:
    """The 503 for ``request``, in the form its path answers in (JSON for ``/api``, HTML for the page)."""
    headers = {"Cache-Control": "no-store", "Retry-After": "30"}
    if request.path.startswith("/api/"):
        return web.json_response({"error": message}, status=503, headers=headers)
    if request.path == "/":
        # The page's shell: its script polls /fragment, and draws the page once the store reads again.
        return web.Response(text=shell(message), content_type="text/html", status=503, headers=headers)
    return web.Response(text=message + "\n", status=503, headers=headers)


def store_errors(failures: StoreFailures) -> Middleware:
    """The middleware turning a :class:`StoreError` from any handler into :func:`_answer`'s 503."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except StoreError as exc:
            failures.report(request, exc)
            return _answer(request, f"the store cannot be read: {exc}")

    return middleware
