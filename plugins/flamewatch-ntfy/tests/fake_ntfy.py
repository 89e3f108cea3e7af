"""A fake ntfy server on a real aiohttp server over loopback, strict where ntfy is.

    async with FakeNtfy(tokens={"tk_valid"}, protected={"private"}) as ntfy:
        ...
        assert ntfy.messages[0].priority == 5

What it enforces, in ntfy's own error shape (``{"code": 42901, "http": 429, "error": "...", "link": ...}``):

* JSON publishing to ``POST /``: a valid topic (1-64 of ``[-_A-Za-z0-9]``), priority 1-5, tags a list of
  strings, a message of at most 4,096 bytes (413 otherwise);
* access control: a protected topic needs ``Authorization: Bearer <token>`` with a known token (401 for an
  unknown token, 403 for none);
* the visitor's request bucket: :attr:`burst` requests, one more every :attr:`refill_every` seconds; past
  it, 429 (ntfy sends no ``Retry-After``).

It records each message with the loop time it arrived and renders its markdown (backslash escapes,
``**``, ``[label](url)``) into the text and links a reader sees.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

MAX_MESSAGE_BYTES = 4096
_TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
_LINK = re.compile(r"\[((?:\\.|[^\]\\])*)\]\(([^)\s]+)\)")


def render(markdown: str) -> tuple[str, list[tuple[str, str]]]:
    """The text and the ``(url, label)`` links a markdown reader shows for ``markdown``."""
    out: list[str] = []
    links: list[tuple[str, str]] = []
    pos = 0
    while pos < len(markdown):
        if markdown[pos] == "\\" and pos + 1 < len(markdown) and not markdown[pos + 1].isalnum():
            out.append(markdown[pos + 1])
            pos += 2
        elif markdown[pos] == "[" and (match := _LINK.match(markdown, pos)):
            label, _ = render(match.group(1))
            links.append((match.group(2), label))
            out.append(label)
            pos = match.end()
        elif markdown.startswith("**", pos):
            pos += 2
        else:
            out.append(markdown[pos])
            pos += 1
    return "".join(out), links


@dataclass
class FakeMessage:
    topic: str
    title: str
    message: str
    priority: int
    tags: list[str]
    click: str | None
    markdown: bool
    received_at: float
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def shown(self) -> tuple[str, list[tuple[str, str]]]:
        """The message as a reader sees it (rendered when it was sent as markdown) and its links."""
        return render(self.message) if self.markdown else (self.message, [])


@dataclass
class RecordedRequest:
    status: int
    received_at: float
    payload: dict[str, Any]


class FakeNtfy:
    """The fake server; use as ``async with FakeNtfy() as ntfy``."""

    def __init__(self, *, tokens: set[str] | None = None, protected: set[str] | None = None,
                 burst: int = 60, refill_every: float = 5.0) -> None:
        self.tokens = tokens or set()
        self.protected = protected or set()
        self.burst, self.refill_every = burst, refill_every
        self.messages: list[FakeMessage] = []
        self.requests: list[RecordedRequest] = []
        self._allowance = float(burst)
        self._updated: float | None = None
        self._forced = 0
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> FakeNtfy:
        app = web.Application()
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def rejected(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.status != 200]

    def fail_next(self, count: int = 1) -> None:
        """Answer the next ``count`` requests with 429, as if the visitor's bucket were empty."""
        self._forced += count

    async def wait_until(self, predicate: Any, *, timeout: float | None = 5.0) -> None:  # noqa: ASYNC109
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    async def _handle(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        status, error = self._check(payload, request.headers.get("Authorization"), now, len(raw))
        self.requests.append(RecordedRequest(status, now, payload))
        if status == 200:
            self.messages.append(FakeMessage(
                payload["topic"], str(payload.get("title", "")), str(payload.get("message", "")),
                int(payload.get("priority", 3)), list(payload.get("tags", [])), payload.get("click"),
                bool(payload.get("markdown")), now, payload, dict(request.headers)))
        async with self._changed:
            self._changed.notify_all()
        if status == 200:
            return web.json_response({"id": f"m{len(self.messages)}", "event": "message", "topic": payload["topic"]})
        return web.json_response({"code": status * 100 + 1, "http": status, "error": error,
                                  "link": "https://docs.ntfy.sh/publish/#limitations"}, status=status)

    def _check(self, payload: dict[str, Any], auth: str | None, now: float, size: int) -> tuple[int, str]:
        topic = payload.get("topic")
        if not isinstance(topic, str) or not _TOPIC.fullmatch(topic):
            return 400, "invalid request: topic invalid"
        if auth is not None and (not auth.startswith("Bearer ") or auth[7:] not in self.tokens):
            return 401, "unauthorized"
        if topic in self.protected and auth is None:
            return 403, "forbidden"
        priority = payload.get("priority", 3)
        if not isinstance(priority, int) or not 1 <= priority <= 5:
            return 400, "invalid request: priority invalid"
        tags = payload.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return 400, "invalid request: tags invalid"
        if len(str(payload.get("message", "")).encode()) > MAX_MESSAGE_BYTES:
            return 413, "message too large"
        if self._forced:
            self._forced -= 1
            return 429, "limit reached: too many requests, please be nice"
        if self._updated is not None:
            self._allowance = min(self.burst, self._allowance + (now - self._updated) / self.refill_every)
        self._updated = now
        if self._allowance < 1:
            return 429, "limit reached: too many requests, please be nice"
        self._allowance -= 1
        return 200, ""
