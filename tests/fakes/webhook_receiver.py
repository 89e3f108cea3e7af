"""A real Standard Webhooks receiver on 127.0.0.1 for tests: verifies, records, dedups, misbehaves on cue.

    async with FakeWebhookReceiver("whsec_...") as receiver:
        ...  # point a webhook notifier at receiver.url
        await receiver.wait_for_deliveries(1)
        assert receiver.deliveries[0].body["type"] == "flamewatch.event"

Every request is verified with the reference ``standardwebhooks`` library (any of the receiver's secrets
may match). Unverifiable requests are answered 401 and recorded in ``rejected``. Verified requests are
answered with the next scripted status, if any (``fail_next``), else 200; an accepted message whose
``webhook-id`` was already accepted counts as a duplicate and is not recorded twice.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    """One HTTP request as the receiver saw it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    raw: bytes
    verified: bool
    status: int  # what the receiver answered
    reason: str = ""  # why it was rejected, if it was

    @property
    def id(self) -> str | None:
        """The ``webhook-id`` header, if any."""
        return self.headers.get("webhook-id")

    @property
    def body(self) -> Any:
        """The body parsed as JSON."""
        return json.loads(self.raw)


@dataclass
class _Script:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    accept: bool = False  # with hang: record the message as accepted, then never answer
    gated: bool = False  # accept the message, but answer only once release_held() is called


class FakeWebhookReceiver:
    """An aiohttp.web Standard Webhooks receiver bound to 127.0.0.1 on a free port.

    ``secrets`` is one ``whsec_`` secret or several (a receiver in the middle of a rotation).
    ``path`` is where it listens; ``url`` is the full URL to configure.
    """

    def __init__(self, secrets: str | Sequence[str], *, path: str = "/hooks/flamewatch") -> None:
        secret_list = [secrets] if isinstance(secrets, str) else list(secrets)
        self._verifiers = [Webhook(s) for s in secret_list]
        self.path = path
        self.requests: list[Received] = []  # everything, in arrival order
        self.deliveries: list[Received] = []  # verified, accepted, first time seen (deduplicated)
        self.rejected: list[Received] = []  # failed verification
        self.accepted_ids: Counter[str] = Counter()  # webhook-id -> times accepted
        self._script: deque[_Script] = deque()
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()  # lets hanging handlers finish at shutdown
        self._gate = asyncio.Event()  # lets held handlers answer (hold_next)
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None
        self.port = 0

    # --- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeWebhookReceiver:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await self.come_up()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._release.set()
        self._gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def go_down(self) -> None:
        """Stop listening: connections are refused until :meth:`come_up` (responses never keep alive)."""
        if self._site is not None:
            await self._site.stop()
            self._site = None

    async def come_up(self) -> None:
        """Listen again (on the same port once one was chosen)."""
        assert self._runner is not None, "use 'async with FakeWebhookReceiver(...)'"
        self._site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await self._site.start()
        if not self.port:
            self.port = self._runner.addresses[0][1]

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL a notifier should post to."""
        return self.base_url + self.path

    # --- scripting -------------------------------------------------------------------------------

    def fail_next(self, status: int, count: int = 1, *, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next ``count`` verified requests with ``status`` (and ``headers``)."""
        for _ in range(count):
            self._script.append(_Script(status, dict(headers or {})))

    def hang_next(self, count: int = 1, *, after_accepting: bool = False) -> None:
        """Never answer the next ``count`` verified requests (until the receiver closes).

        With ``after_accepting`` the message is recorded as accepted first: the receiver has it, but the
        sender never learns so and must send it again (the case at-least-once delivery is about).
        """
        for _ in range(count):
            self._script.append(_Script(200, hang=True, accept=after_accepting))

    def hold_next(self, count: int = 1) -> None:
        """Accept the next ``count`` verified requests at once, but answer them (200) only after
        :meth:`release_held`: the test decides when the sender learns of its success."""
        for _ in range(count):
            self._script.append(_Script(200, gated=True))

    def release_held(self) -> None:
        """Answer every request held by :meth:`hold_next`, now and from now on."""
        self._gate.set()

    # --- observing -------------------------------------------------------------------------------

    @property
    def duplicates(self) -> int:
        """How many accepted requests repeated an already accepted ``webhook-id``."""
        return sum(n - 1 for n in self.accepted_ids.values())

    # ``timeout`` (ASYNC109) is deliberate: a default bound makes a broken test fail instead of hanging.
    async def wait_for_deliveries(self, count: int, timeout: float = 5.0) -> list[Received]:  # noqa: ASYNC109
        """Wait until ``count`` distinct messages were accepted; return them (fails after ``timeout``)."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.deliveries) >= count)
        return self.deliveries[:count]

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[Received]:  # noqa: ASYNC109
        """Wait until ``count`` requests of any kind arrived."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return self.requests[:count]

    # --- the handler -----------------------------------------------------------------------------

    def _verify(self, raw: bytes, headers: dict[str, str]) -> str:
        """'' when some secret verifies the request, else the reason it does not."""
        reason = "no secret"
        for verifier in self._verifiers:
            try:
                verifier.verify(raw, headers)
                return ""
            except (WebhookVerificationError, ValueError) as exc:  # ValueError: malformed signature list
                reason = str(exc) or type(exc).__name__
        return reason

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        reason = "wrong path" if request.path != self.path else self._verify(raw, headers)
        script = self._script.popleft() if not reason and self._script else None
        status = script.status if script else 200
        if reason:  # refused before any script applies
            status = 404 if request.path != self.path else 401
        record = Received(
            request.method, request.path, request.query_string, headers, raw, not reason, status, reason
        )
        async with self._changed:
            self.requests.append(record)
            if reason:
                self.rejected.append(record)
            elif 200 <= status < 300 and not (script and script.hang and not script.accept):
                msg_id = headers["webhook-id"]
                if not self.accepted_ids[msg_id]:
                    self.deliveries.append(record)
                self.accepted_ids[msg_id] += 1
            self._changed.notify_all()
        if script and script.hang:
            await self._release.wait()
        if script and script.gated:
            await self._gate.wait()
        response = web.Response(status=status, text=reason or "ok", headers=script.headers if script else None)
        # No keep-alive: after go_down() no pooled connection may still reach us.
        response.force_close()
        return response
