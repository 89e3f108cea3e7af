"""How the HTTP face holds its connections, so that nobody can make the daemon run out of descriptors.

The status page lives in the daemon's process: every connection it holds is a file descriptor the HN
client also needs. So

* an idle connection (one that sent nothing, or nothing since its last answer) is closed after
  :data:`IDLE_TIMEOUT` seconds;
* at most :func:`connection_cap` connections are open at once: beyond it, a connection is answered
  ``503`` and closed at once, so it holds its descriptor for microseconds only;
* when the process runs out of descriptors anyway, asyncio logs every failed ``accept()`` with a
  traceback, thousands a second: :class:`AcceptErrorFilter` lets one through and then one summary a minute.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable

from aiohttp import web

__all__ = ["IDLE_TIMEOUT", "MOST_CONNECTIONS", "AcceptErrorFilter", "CappedListener", "connection_cap"]

#: Seconds an idle connection is kept (the page polls every 2 s, so a live page keeps its one).
IDLE_TIMEOUT = 15.0
#: At most this many connections at once (fewer when the descriptor limit is low: see connection_cap).
MOST_CONNECTIONS = 256

_BUSY = (b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Type: text/plain\r\n"
         b"Content-Length: 31\r\n\r\ntoo many connections; try again")
# The messages asyncio logs per failed accept (EMFILE and friends), and when its retry finds the
# listening socket gone; both repeat for as long as descriptors are short.
_ACCEPT_MESSAGES = ("socket.accept() out of system resource",
                    "Exception in callback BaseSelectorEventLoop._start_serving")


def connection_cap(most: int = MOST_CONNECTIONS) -> int:
    """How many connections the face may hold: ``most``, but never more than a quarter of the process's
    descriptor limit, so HN requests, the store and the notifiers always have the rest."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return most
    return max(4, min(most, soft // 4))


class _Refuse(asyncio.Protocol):
    """A connection over the cap: told so and closed before it can hold anything."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(_BUSY)
        transport.close()


class CappedListener:
    """Listens on ``host:port`` for ``runner``'s server, holding at most ``cap`` connections."""

    def __init__(self, runner: web.AppRunner, cap: int) -> None:
        self.runner = runner
        self.cap = cap
        self.refused = 0
        self._server: asyncio.Server | None = None

    def _protocol(self) -> asyncio.BaseProtocol:
        server = self.runner.server
        assert server is not None, "the runner is set up before listening"
        if len(server.connections) >= self.cap:
            self.refused += 1
            return _Refuse()
        return server()

    async def start(self, host: str, port: int) -> int:
        """Listen; returns the bound port. Raises OSError when the address cannot be used."""
        loop = asyncio.get_running_loop()
        # asyncio accepts up to ``backlog`` connections per wake-up, and a refused one keeps its descriptor
        # until the loop's next turn: a small backlog bounds that burst too.
        backlog = max(8, min(128, self.cap // 4))
        self._server = await loop.create_server(self._protocol, host, port, backlog=backlog)
        return int(self._server.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop accepting (open connections are the runner's to finish)."""
        if self._server is not None:
            self._server.close()
            self._server = None


class AcceptErrorFilter(logging.Filter):
    """On the ``asyncio`` logger: the first failed ``accept()`` goes through, the next ones are counted
    and summed up in one line at most every ``every`` seconds (without the repeated traceback)."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__("asyncio")
        self.every = every
        self.clock = clock
        self._last: float | None = None
        self._held = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if not any(str(record.msg).startswith(m) for m in _ACCEPT_MESSAGES):
            return True
        now = self.clock()
        if self._last is not None and now - self._last < self.every:
            self._held += 1
            return False
        if self._held:
            record.msg = f"{record.getMessage()} ({self._held} more like it since the last such line)"
            record.args = None
            record.exc_info = None  # the traceback was shown the first time
            record.exc_text = None
        self._last, self._held = now, 0
        return True
