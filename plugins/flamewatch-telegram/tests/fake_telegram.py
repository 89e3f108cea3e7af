"""A fake Telegram Bot API on a real aiohttp server over loopback, strict where Telegram is.

    async with FakeTelegram(chats={-1001: Chat("supergroup", topics={7})}) as tg:
        options = TelegramOptions(token=..., chat_id=-1001, api_url=tg.url)
        ...
        assert tg.messages[0].text == "what a reader sees"

What it enforces, answering in Telegram's own shapes (``{"ok": false, "error_code", "description",
"parameters"}``):

* the token in the path (``/bot<token>/<method>``): a wrong one is 401 ``Unauthorized``; an unknown
  method 404 ``Not Found``;
* the chat (400 ``Bad Request: chat not found``) and a forum topic (400 ``message thread not found``);
* HTML parse mode as Telegram parses it: only its tags, attributes quoted, every ``<``, ``>`` and ``&``
  outside a tag an entity, tags closed in order; anything else is 400 ``can't parse entities``;
* 4,096 characters of visible text (400 ``message is too long``), no empty text;
* the rate limits: one message a second per chat, 20 a minute in a group or channel; past them, 429 with
  ``parameters.retry_after`` (whole seconds), as Telegram answers;
* ``editMessageText``: an unknown message is ``message to edit not found``, the same text again is
  ``message is not modified``.

Every request is recorded by :class:`flamewatch.testing.FakeService` (``requests``, ``rejected``), stamped
with the loop's clock (``received_at``), so tests on a fake clock measure exact gaps.
"""

from __future__ import annotations

import asyncio
import html
import json
import math
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from flamewatch.testing import FakeService

MAX_TEXT = 4096
CHAT_INTERVAL = 1.0
GROUP_LIMIT = 20
GROUP_WINDOW = 60.0

#: Telegram's HTML tags (https://core.telegram.org/bots/api#html-style).
_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
         "span", "tg-spoiler", "tg-emoji"}
_TAG = re.compile(r'<(/?)([a-z-]+)((?:\s+[a-z-]+\s*=\s*"[^"<>]*")*)\s*>')
_ATTR = re.compile(r'([a-z-]+)\s*=\s*"([^"]*)"')
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")


class ParseError(ValueError):
    """Telegram's "can't parse entities" refusal."""


@dataclass
class Parsed:
    """What a Telegram client shows for an HTML text: the ``text`` and the links in it."""

    text: str
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, label)
    tags: list[str] = field(default_factory=list)


def parse_html(source: str) -> Parsed:
    """Parse ``source`` the way the Bot API does in HTML mode, or raise :class:`ParseError`."""
    out: list[str] = []
    parsed = Parsed(text="")
    stack: list[tuple[str, str | None, int]] = []  # tag, href, where its text starts in out
    pos = 0
    while pos < len(source):
        ch = source[pos]
        if ch == "<":
            match = _TAG.match(source, pos)
            if match is None or match.group(2) not in _TAGS:
                raise ParseError(f"Unsupported start tag at byte offset {len(source[:pos].encode())}")
            closing, name, attrs = match.group(1), match.group(2), dict(_ATTR.findall(match.group(3)))
            if closing:
                if not stack or stack[-1][0] != name:
                    raise ParseError(f"Unmatched end tag at byte offset {len(source[:pos].encode())}")
                _, href, start = stack.pop()
                if name == "a" and href is not None:
                    parsed.links.append((href, "".join(out[start:])))
            else:
                if name == "a" and "href" not in attrs:
                    raise ParseError("Can't find end of the entity: <a> without href")
                href = html.unescape(attrs["href"]) if name == "a" else None
                stack.append((name, href, len(out)))
                parsed.tags.append(name)
            pos = match.end()
        elif ch == "&":
            match = _ENTITY.match(source, pos)
            if match is None:
                raise ParseError(f"Can't find end of the entity starting at byte offset {len(source[:pos].encode())}")
            out.append(html.unescape(match.group(0)))
            pos = match.end()
        elif ch == ">":
            raise ParseError(f"Unexpected end tag at byte offset {len(source[:pos].encode())}")
        else:
            out.append(ch)
            pos += 1
    if stack:
        raise ParseError(f"Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    parsed.text = "".join(out)
    return parsed


@dataclass
class Chat:
    """A chat the bot can write to: its kind and, for a forum supergroup, its topic ids."""

    kind: str = "private"  # private, group, supergroup, channel
    topics: set[int] = field(default_factory=set)

    @property
    def grouplike(self) -> bool:
        return self.kind != "private"


@dataclass
class FakeMessage:
    """One message as Telegram keeps it."""

    chat_id: str
    message_id: int
    html: str
    text: str
    links: list[tuple[str, str]]
    thread_id: int | None
    received_at: float
    payload: dict[str, Any]
    edits: list[str] = field(default_factory=list)


class FakeTelegram(FakeService):
    """The fake Bot API; use as ``async with FakeTelegram() as tg``."""

    def __init__(self, *, token: str = "123456:fake-valid-token", chats: dict[int | str, Chat] | None = None) -> None:
        super().__init__()
        self.token = token
        self.chats = {str(k): v for k, v in (chats or {-1001: Chat("supergroup"), 42: Chat()}).items()}
        self.messages: list[FakeMessage] = []
        self._last_at: dict[str, float] = {}
        self._window: dict[str, deque[float]] = {}
        self._next_id = 0

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_route("*", "/bot{token}/{method}", self._handle)

    def refusal(self, status: int, retry_after: float | str | None) -> tuple[Any, dict[str, str]]:
        """Flood control's answer: ``parameters.retry_after`` (whole seconds) in the body, no header."""
        return _too_many(math.ceil(float(retry_after or 1)))[1], {}

    def limited(self, request: web.Request) -> bool:
        """Flood control refuses what sends or edits a message."""
        return request.match_info.get("method") in ("sendMessage", "editMessageText")

    # --- handling -------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.Response:
        now = asyncio.get_running_loop().time()
        try:
            payload = await request.json() if request.can_read_body else dict(request.query)
        except json.JSONDecodeError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        status, body = self._answer(request.match_info["token"], request.match_info["method"], payload, now)
        return web.json_response(body, status=status)

    def _answer(self, token: str, method: str, payload: dict[str, Any], now: float) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return _error(401, "Unauthorized")
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 123456, "is_bot": True, "username": "flamewatch_bot"}}
        if method not in ("getChat", "sendMessage", "editMessageText"):
            return _error(404, "Not Found")
        chat_id = str(payload.get("chat_id", ""))
        chat = self.chats.get(chat_id)
        if chat is None:
            return _error(400, "Bad Request: chat not found")
        if method == "getChat":
            return 200, {"ok": True, "result": {"id": chat_id, "type": chat.kind}}
        refused = self._check_message(chat, payload)
        if refused is not None:
            return _error(400, refused)
        limited = self._rate_limit(chat_id, chat, now)
        if limited is not None:
            return limited
        if method == "editMessageText":
            return self._edit(chat_id, payload)
        return self._send(chat_id, payload, now)

    def _check_message(self, chat: Chat, payload: dict[str, Any]) -> str | None:
        text = payload.get("text")
        if not isinstance(text, str) or not text.strip():
            return "Bad Request: message text is empty"
        if payload.get("parse_mode") == "HTML":
            try:
                visible = parse_html(text).text
            except ParseError as exc:
                return f"Bad Request: can't parse entities: {exc}"
        else:
            visible = text
        if len(visible.strip()) > MAX_TEXT:
            return "Bad Request: message is too long"
        thread = payload.get("message_thread_id")
        if thread is not None and thread not in chat.topics:
            return "Bad Request: message thread not found"
        return None

    def _rate_limit(self, chat_id: str, chat: Chat, now: float) -> tuple[int, dict[str, Any]] | None:
        last = self._last_at.get(chat_id)
        if last is not None and now - last < CHAT_INTERVAL:
            return _too_many(math.ceil(CHAT_INTERVAL - (now - last)))
        window = self._window.setdefault(chat_id, deque())
        while window and window[0] <= now - GROUP_WINDOW:
            window.popleft()
        if chat.grouplike and len(window) >= GROUP_LIMIT:
            return _too_many(math.ceil(window[0] + GROUP_WINDOW - now))
        self._last_at[chat_id] = now
        window.append(now)
        return None

    def _send(self, chat_id: str, payload: dict[str, Any], now: float) -> tuple[int, dict[str, Any]]:
        self._next_id += 1
        text = payload["text"]
        parsed = parse_html(text) if payload.get("parse_mode") == "HTML" else Parsed(text=text)
        thread = payload.get("message_thread_id")
        self.messages.append(FakeMessage(chat_id, self._next_id, text, parsed.text, parsed.links,
                                         thread if isinstance(thread, int) else None, now, payload))
        return 200, {"ok": True, "result": {"message_id": self._next_id, "chat": {"id": chat_id}, "date": int(now),
                                            "text": parsed.text}}

    def _edit(self, chat_id: str, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        target = next((m for m in self.messages
                       if m.chat_id == chat_id and m.message_id == payload.get("message_id")), None)
        if target is None:
            return _error(400, "Bad Request: message to edit not found")
        if payload["text"] == target.html:
            return _error(400, "Bad Request: message is not modified: specified new message content and reply "
                               "markup are exactly the same as a current content and reply markup of the message")
        parsed = parse_html(payload["text"]) if payload.get("parse_mode") == "HTML" else Parsed(text=payload["text"])
        target.edits.append(target.html)
        target.html, target.text, target.links = payload["text"], parsed.text, parsed.links
        return 200, {"ok": True, "result": {"message_id": target.message_id, "text": parsed.text}}


def _error(code: int, description: str) -> tuple[int, dict[str, Any]]:
    return code, {"ok": False, "error_code": code, "description": description}


def _too_many(retry_after: int) -> tuple[int, dict[str, Any]]:
    retry_after = max(1, retry_after)
    return 429, {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                 "parameters": {"retry_after": retry_after}}
