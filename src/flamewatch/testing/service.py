"""The base of a fake HTTP service for a notifier's tests: a real aiohttp server on loopback.

A fake stands for the service a notifier talks to (a chat API, a webhook, a push server). Subclass
:class:`FakeService`, add the service's routes in :meth:`FakeService.routes`, and keep what it was sent
the way the service would show it; the base starts the server on a free loopback port, records every
request with the loop time it arrived (so tests on looptime's fake clock see exact gaps) and, on cue,
answers the next requests with a refusal or never::

    class FakeNtfy(FakeService):
        def __init__(self) -> None:
            super().__init__()
            self.messages: list[dict[str, Any]] = []

        def routes(self, router: web.UrlDispatcher) -> None:
            router.add_post("/{topic}", self.publish)

        async def publish(self, request: web.Request) -> web.Response:
            self.messages.append(await request.json())
            return web.json_response({"id": "m1"})

    async with FakeNtfy() as ntfy:          # ntfy.url is http://127.0.0.1:<port>
        ntfy.fail_next(1, status=429, retry_after=5)
        ...
        await ntfy.wait_until(lambda: len(ntfy.messages) == 3)
        assert [r.status for r in ntfy.rejected] == [429]
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Self

from aiohttp import web

#: Which requests a queued fault applies to (None: the next ones, whatever they are).
RequestFilter = Callable[[web.Request], bool]


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached the fake, refused ones included, with the status it was answered."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any  # the JSON value when the body was JSON, else its text ("" when there was none)
    status: int
    received_at: float  # the loop clock when it arrived


@dataclass(frozen=True)
class _Fault:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    when: RequestFilter | None = None


class FakeService:
    """A fake service on ``127.0.0.1:<free port>``; use as ``async with MyFake() as fake`` (``fake.url``)."""

    def __init__(self) -> None:
        self.url = ""
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self._changed = asyncio.Condition()
        self._closing = asyncio.Event()
        self._runner: web.AppRunner | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        """Add the service's routes (``router.add_post("/path", handler)``); override it."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app.router)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._closing.set()  # a hanging answer ends now, so the server can close
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def rejected(self) -> list[RecordedRequest]:
        """The requests answered with anything but 2xx."""
        return [r for r in self.requests if not 200 <= r.status < 300]

    def fail_next(self, count: int = 1, *, status: int = 429, retry_after: float | str | None = None,
                  body: Any = None, headers: dict[str, str] | None = None, when: RequestFilter | None = None) -> None:
        """Answer the next ``count`` requests with ``status`` instead of serving them.

        The answer is :meth:`refusal`'s (the service's own shape), with ``body`` (JSON; a str as text) and
        ``headers`` in place of its own when given. Only requests ``when`` accepts are refused, by default
        those :meth:`limited` names (all, unless the fake says otherwise).
        """
        shaped, extra = self.refusal(status, retry_after)
        fault = _Fault(status, shaped if body is None else body, {**extra, **(headers or {})},
                       when=when or self.limited)
        self._faults += [fault] * count

    def hang_next(self, count: int = 1, *, when: RequestFilter | None = None) -> None:
        """Never answer the next ``count`` requests (until the fake closes): the client's timeout must act."""
        self._faults += [_Fault(503, hang=True, when=when)] * count

    def refusal(self, status: int, retry_after: float | str | None) -> tuple[Any, dict[str, str]]:
        """The body and headers of a refusal :meth:`fail_next` queues; override it for the service's shape.

        By default no body, and a ``Retry-After`` header when there is a wait (seconds, rounded up; a str,
        such as an HTTP-date, as it is).
        """
        if retry_after is None:
            return None, {}
        return None, {"Retry-After": retry_after if isinstance(retry_after, str) else str(math.ceil(retry_after))}

    def limited(self, request: web.Request) -> bool:
        """Whether the service's limits apply to ``request`` (what :meth:`fail_next` refuses by default)."""
        return True

    async def wait_until(self, predicate: Callable[[], bool], *, timeout: float | None = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds, checked after every request. ``timeout`` is on the loop clock:
        under looptime, pass None (or a fake-time bound) when the wait spans pacing or retries."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    # --- handling -----------------------------------------------------------------------------------

    def _fault_for(self, request: web.Request) -> _Fault | None:
        for index, fault in enumerate(self._faults):
            if fault.when is None or fault.when(request):
                return self._faults.pop(index)
        return None

    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        received_at = asyncio.get_running_loop().time()
        fault = self._fault_for(request)
        if fault is None:
            response = await handler(request)
        else:
            if fault.hang:
                await self._closing.wait()
            response = _answer(fault)
        raw = await request.read()  # after the handler, which may have read it (it is cached then)
        self.requests.append(RecordedRequest(request.method, request.path, dict(request.query),
                                             dict(request.headers), _body(raw), response.status, received_at))
        async with self._changed:
            self._changed.notify_all()
        return response


def _answer(fault: _Fault) -> web.Response:
    if isinstance(fault.body, str):
        return web.Response(status=fault.status, text=fault.body, headers=fault.headers)
    if fault.body is None:
        return web.Response(status=fault.status, headers=fault.headers)
    return web.json_response(fault.body, status=fault.status, headers=fault.headers)


def _body(raw: bytes) -> Any:
    text = raw.decode("utf-8", "replace")
    try:
        return json.loads(text) if text else ""
    except ValueError:
        return text
