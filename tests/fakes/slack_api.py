"""A fake Slack (Web API + one incoming webhook) on a real aiohttp server over loopback.

    async with FakeSlack(token="xoxb-test", channels={"#hn": "C0HN"}) as slack:
        options = SlackOptions(token=..., channel="#hn", base_url=slack.api_url)
        ...
        await slack.wait_for_messages(1)
        assert slack.messages[0].rendered_text == "..."

It checks requests the way Slack does (bearer token, known channel, text or blocks present, Block Kit
limits) and answers with Slack's error codes, records every message with the loop time it arrived,
assigns ``ts`` values, and can be told to fail the next requests (``fail_next(2, status=429)``).
:func:`render` turns mrkdwn back into what a person would see, and lists the mentions it would fire.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

WEBHOOK_PATH = "/services/T000/B000/XXXX"

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_HEADER_TEXT = 150
MAX_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT = 40000

_TOKEN = re.compile(r"<([^<>]*)>")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


@dataclass
class Rendered:
    """What a Slack client would show for a mrkdwn string: the ``text`` and what it links or pings."""

    text: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (url, label)
    mentions: list[str] = field(default_factory=list)  # "!channel", "@U123", "#C123", "!subteam^..."


def unescape(text: str) -> str:
    """Decode Slack's three entities in one pass (so ``&amp;lt;`` becomes ``&lt;``, not ``<``)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def render(mrkdwn: str) -> Rendered:
    """Render ``mrkdwn`` like a Slack client: ``<url|label>`` shows the label, ``<!channel>`` pings."""
    result = Rendered(text="")
    pieces: list[str] = []
    position = 0
    for match in _TOKEN.finditer(mrkdwn):
        pieces.append(unescape(mrkdwn[position : match.start()]))
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target[:1] in ("!", "@", "#"):
            result.mentions.append(target)
            pieces.append(unescape(label) if label else f"@{target.lstrip('!@#')}")
        else:
            result.links.append((unescape(target), unescape(label or target)))
            pieces.append(unescape(label or target))
        position = match.end()
    pieces.append(unescape(mrkdwn[position:]))
    result.text = "".join(pieces)
    return result


def block_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Every mrkdwn/plain text string in ``blocks``, in order."""
    texts: list[str] = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            texts.append(block["text"].get("text", ""))
        for item in block.get("fields") or []:
            texts.append(item.get("text", ""))
        for item in block.get("elements") or []:
            if isinstance(item, dict) and "text" in item and isinstance(item["text"], str):
                texts.append(item["text"])
    return texts


@dataclass
class FakeMessage:
    """One message as Slack stored it; ``updates`` holds the payload of every later chat.update."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    via: str  # "api" or "webhook"
    received_at: float  # loop.time() when the post arrived
    payload: dict[str, Any]
    updates: list[dict[str, Any]] = field(default_factory=list)

    @property
    def all_text(self) -> str:
        """The fallback text and every block text, newline-joined (for "does X appear anywhere" checks)."""
        return "\n".join([self.text, *block_texts(self.blocks)])

    @property
    def rendered(self) -> Rendered:
        """:func:`render` of :attr:`all_text`."""
        return render(self.all_text)


@dataclass
class RecordedRequest:
    """Every request that reached the server, including rejected ones."""

    method: str  # "chat.postMessage", "auth.test", "webhook", ...
    authorization: str | None
    payload: dict[str, Any]
    received_at: float
    status: int


class FakeSlack:
    """The fake Slack server; use as ``async with FakeSlack() as slack``."""

    def __init__(
        self,
        *,
        token: str = "xoxb-fake-valid-token",
        channels: dict[str, str] | None = None,
    ) -> None:
        self.token = token
        # Channel names and IDs both resolve to the ID, as in Slack.
        self.channels = dict(channels or {"#hn": "C0HN"})
        self.messages: list[FakeMessage] = []
        self.requests: list[RecordedRequest] = []
        self._failures: list[tuple[int, float | None]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._ts_counter = 0
        self.url = ""

    # --- lifecycle ----------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/services/{rest:.*}", self._webhook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        """The Web API base URL to use as ``base_url``."""
        return f"{self.url}/api/"

    @property
    def webhook_url(self) -> str:
        """The (only) valid incoming webhook URL."""
        return f"{self.url}{WEBHOOK_PATH}"

    # --- controls -------------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 429, retry_after: float | None = 1.0) -> None:
        """Answer the next ``count`` requests with ``status`` (429 carries ``Retry-After``)."""
        self._failures.extend([(status, retry_after)] * count)

    # ``timeout`` (ASYNC109) is deliberate: a default bound makes a broken test fail instead of hanging.
    async def wait_for_messages(self, count: int, *, timeout: float = 5.0) -> list[FakeMessage]:  # noqa: ASYNC109
        """Wait until at least ``count`` messages were posted; return them."""
        await self.wait_until(lambda: len(self.messages) >= count, timeout=timeout)
        return self.messages

    async def wait_until(self, predicate: Any, *, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until ``predicate()`` holds (checked after every request)."""
        async with asyncio.timeout(timeout):
            async with self._changed:
                await self._changed.wait_for(predicate)

    def message(self, channel: str, ts: str) -> FakeMessage | None:
        """The message posted to ``channel`` (an ID) with ``ts``, if any."""
        return next((m for m in self.messages if m.channel == channel and m.ts == ts), None)

    # --- handlers ---------------------------------------------------------------------------------------

    async def _record(self, request: RecordedRequest, message: FakeMessage | None = None) -> None:
        self.requests.append(request)
        if message is not None:
            self.messages.append(message)
        async with self._changed:
            self._changed.notify_all()

    @staticmethod
    async def _payload(request: web.Request) -> dict[str, Any]:
        """The request's arguments: JSON body, form body or query string (slack-sdk uses all three)."""
        payload: dict[str, Any] = dict(request.query)
        if request.content_type == "application/json":
            body = await request.json()
            if isinstance(body, dict):
                payload.update(body)
        elif request.can_read_body:
            form = await request.post()
            payload.update({k: v for k, v in form.items() if isinstance(v, str)})
            if isinstance(payload.get("blocks"), str):
                payload["blocks"] = json.loads(payload["blocks"])
        return payload

    def _next_failure(self) -> web.Response | None:
        if not self._failures:
            return None
        status, retry_after = self._failures.pop(0)
        headers = {"Retry-After": f"{retry_after:g}"} if status == 429 and retry_after is not None else {}
        if status == 429:
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429, headers=headers)
        return web.Response(status=status, text="Internal Server Error", headers=headers)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        payload = await self._payload(request)
        now = asyncio.get_running_loop().time()
        auth = request.headers.get("Authorization")

        def answer(body: dict[str, Any], status: int = 200) -> web.Response:
            return web.json_response(body, status=status)

        failure = self._next_failure()
        if failure is not None:
            await self._record(RecordedRequest(method, auth, payload, now, failure.status))
            return failure
        if auth is None:
            error: str | None = "not_authed"
        elif auth != f"Bearer {self.token}":
            error = "invalid_auth"
        else:
            error = None
        if error is None and method not in ("auth.test", "chat.postMessage", "chat.update"):
            error = "unknown_method"
        if error is None and method == "auth.test":
            await self._record(RecordedRequest(method, auth, payload, now, 200))
            return answer({"ok": True, "team": "Fake", "user": "flamewatch", "team_id": "T000", "user_id": "U0BOT"})
        channel = None
        if error is None:
            channel = self._channel_id(str(payload.get("channel", "")), allow_name=method == "chat.postMessage")
            error = "channel_not_found" if channel is None else validate_message(payload)
        if error is not None:
            await self._record(RecordedRequest(method, auth, payload, now, 200))
            return answer({"ok": False, "error": error})
        assert channel is not None

        if method == "chat.update":
            target = self.message(channel, str(payload.get("ts", "")))
            if target is None:
                await self._record(RecordedRequest(method, auth, payload, now, 200))
                return answer({"ok": False, "error": "message_not_found"})
            target.updates.append(payload)
            target.text = str(payload.get("text", ""))
            target.blocks = list(payload.get("blocks") or [])
            await self._record(RecordedRequest(method, auth, payload, now, 200))
            return answer({"ok": True, "channel": channel, "ts": target.ts, "text": target.text})

        message = self._new_message(channel, payload, "api", now)
        await self._record(RecordedRequest(method, auth, payload, now, 200), message)
        return answer({"ok": True, "channel": channel, "ts": message.ts, "message": {"text": message.text}})

    async def _webhook(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        try:
            payload = await self._payload(request)
        except (ValueError, json.JSONDecodeError):
            payload = {}
        failure = self._next_failure()
        if failure is not None:
            await self._record(RecordedRequest("webhook", None, payload, now, failure.status))
            return failure
        if request.path != WEBHOOK_PATH:
            await self._record(RecordedRequest("webhook", None, payload, now, 404))
            return web.Response(status=404, text="no_service")
        error = validate_message(payload)
        if error is not None:
            await self._record(RecordedRequest("webhook", None, payload, now, 400))
            return web.Response(status=400, text=error)
        message = self._new_message("C0WEBHOOK", payload, "webhook", now)
        await self._record(RecordedRequest("webhook", None, payload, now, 200), message)
        return web.Response(text="ok")

    def _channel_id(self, channel: str, *, allow_name: bool) -> str | None:
        if channel in self.channels.values():
            return channel
        # chat.update wants the channel ID, as the real API does.
        return self.channels.get(channel) if allow_name else None

    def _new_message(self, channel: str, payload: dict[str, Any], via: str, now: float) -> FakeMessage:
        self._ts_counter += 1
        ts = f"{1700000000 + self._ts_counter}.{self._ts_counter:06d}"
        return FakeMessage(
            channel=channel,
            ts=ts,
            text=str(payload.get("text", "")),
            blocks=list(payload.get("blocks") or []),
            via=via,
            received_at=now,
            payload=payload,
        )


def validate_message(payload: dict[str, Any]) -> str | None:
    """Slack's error code for a message payload that breaks its rules, or None if it is fine."""
    text = payload.get("text")
    blocks = payload.get("blocks")
    if not text and not blocks:
        return "no_text"
    if isinstance(text, str) and len(text) > MAX_TEXT:
        return "msg_too_long"
    if blocks is None:
        return None
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    for block in blocks:
        if not _valid_block(block):
            return "invalid_blocks"
    return None


def _text_object(obj: Any, *, limit: int, plain_only: bool = False) -> bool:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return False
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    return obj.get("type") in allowed and 0 < len(obj["text"]) <= limit


def _valid_block(block: Any) -> bool:
    if not isinstance(block, dict):
        return False
    kind = block.get("type")
    if kind == "header":
        return _text_object(block.get("text"), limit=MAX_HEADER_TEXT, plain_only=True)
    if kind == "section":
        text, fields = block.get("text"), block.get("fields")
        if text is None and not fields:
            return False
        if text is not None and not _text_object(text, limit=MAX_SECTION_TEXT):
            return False
        if fields is not None:
            if not isinstance(fields, list) or len(fields) > MAX_FIELDS:
                return False
            return all(_text_object(f, limit=MAX_FIELD_TEXT) for f in fields)
        return True
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 0 < len(elements) <= MAX_CONTEXT_ELEMENTS:
            return False
        return all(_text_object(e, limit=MAX_SECTION_TEXT) for e in elements)
    return kind == "divider"
