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

from flamewatch.testing import FakeService

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


class FakeNtfy(FakeService):
    """The fake server; use as ``async with FakeNtfy() as ntfy``."""

    def __init__(self, *, tokens: set[str] | None = None, protected: set[str] | None = None,
                 burst: int = 60, refill_every: float = 5.0) -> None:
        super().__init__()
        self.tokens = tokens or set()
        self.protected = protected or set()
        self.burst, self.refill_every = burst, refill_every
        self.messages: list[FakeMessage] = []
        self._allowance = float(burst)
        self._updated: float | None = None

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/", self._handle)

    def refusal(self, status: int, retry_after: float | str | None) -> tuple[Any, dict[str, str]]:
        """ntfy's error body, as if the visitor's bucket were empty (ntfy names no wait)."""
        _, headers = super().refusal(status, retry_after)
        return _error(status, "limit reached: too many requests, please be nice"), headers

    async def _handle(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        raw = await request.read()
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = {}
        payload = payload if isinstance(payload, dict) else {}
        status, error = self._check(payload, request.headers.get("Authorization"), now, len(raw))
        if status != 200:
            return web.json_response(_error(status, error), status=status)
        self.messages.append(FakeMessage(
            payload["topic"], str(payload.get("title", "")), str(payload.get("message", "")),
            int(payload.get("priority", 3)), list(payload.get("tags", [])), payload.get("click"),
            bool(payload.get("markdown")), now, payload, dict(request.headers)))
        return web.json_response({"id": f"m{len(self.messages)}", "event": "message", "topic": payload["topic"]})

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
        if self._updated is not None:
            self._allowance = min(self.burst, self._allowance + (now - self._updated) / self.refill_every)
        self._updated = now
        if self._allowance < 1:
            return 429, "limit reached: too many requests, please be nice"
        self._allowance -= 1
        return 200, ""


def _error(status: int, error: str) -> dict[str, Any]:
    """ntfy's error body."""
    return {"code": status * 100 + 1, "http": status, "error": error, "link": "https://docs.ntfy.sh/publish/#limitations"}
