"""Server-sent events as Firebase's REST streaming speaks them, parsed with bounds.

A GET with ``Accept: text/event-stream`` on a Firebase path (HN's ``/v0/maxitem.json``, a list) keeps the
answer open and sends events, each a few ``field: value`` lines ended by a blank line::

    event: put
    data: {"path": "/", "data": 41234567}

``put`` sets the value at ``path`` (below the streamed location), ``patch`` merges the children it holds
there, ``keep-alive`` (``data: null``, about every 30 s) only says the connection is alive, ``cancel``
(the rules no longer allow reading) and ``auth_revoked`` end the stream.

Everything here is pure: :class:`EventParser` turns received bytes into :class:`ServerEvent` values and
:func:`apply_event` updates a value tree. What a hostile stream can do is bounded: a line longer than
``max_event_bytes`` is skipped up to its end (never held), an event whose data grows over it is dropped,
and lines that are not SSE are skipped; each is counted in :attr:`EventParser.malformed`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["DEFAULT_MAX_EVENT_BYTES", "EventParser", "FirebaseEvent", "ServerEvent", "apply_event", "decode"]

#: The largest event accepted. HN's biggest streamed value is a 500-id list (about 5 KB as JSON); an event
#: far larger is hostile or broken.
DEFAULT_MAX_EVENT_BYTES = 256 * 1024

#: The most leading-field (``path``) segments followed into a value tree.
MAX_PATH_DEPTH = 8

_KNOWN_FIELDS = frozenset({b"event", b"data", b"id", b"retry"})


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """One SSE event: its type (``message`` when none was named) and its data lines joined by newlines."""

    event: str
    data: str


@dataclass(frozen=True, slots=True)
class FirebaseEvent:
    """A decoded Firebase event: ``kind`` is put, patch, keep-alive, cancel or auth_revoked.

    ``path`` is a tuple of child keys below the streamed location (``()`` for the location itself).
    """

    kind: str
    path: tuple[str, ...] = ()
    data: Any = None


class EventParser:
    """Split a byte stream into SSE events, holding at most ``max_event_bytes`` of one event.

    Feed it chunks as they arrive (:meth:`feed`); it returns the events those chunks completed. It never
    raises on input: what it cannot use is skipped and counted in ``malformed`` (``oversized`` counts the
    dropped oversized lines and events among them).
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        if max_event_bytes < 64:
            raise ValueError(f"max_event_bytes must be at least 64, got {max_event_bytes}")
        self.max_event_bytes = max_event_bytes
        self.malformed = 0
        self.oversized = 0
        self._partial = bytearray()
        self._skipping = False  # inside a line already known to be too long: drop up to its end
        self._event = b""
        self._data: list[bytes] = []
        self._size = 0
        self._spoiled = False  # the event being read went over the bound: drop it at its blank line

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        """Take the next bytes of the stream; return the events completed by them, in order."""
        events: list[ServerEvent] = []
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                self._hold(chunk[start:])
                return events
            piece = chunk[start:end]
            start = end + 1
            if self._skipping:
                self._skipping = False
                self._partial.clear()
                continue
            if self._partial:
                self._partial += piece
                piece, self._partial = bytes(self._partial), bytearray()
            if len(piece) > self.max_event_bytes:
                self._too_big()
                continue
            event = self._line(piece.rstrip(b"\r"))
            if event is not None:
                events.append(event)

    def _hold(self, rest: bytes) -> None:
        if self._skipping or not rest:
            return
        if len(self._partial) + len(rest) > self.max_event_bytes:
            self._partial.clear()
            self._skipping = True
            self._too_big()
            return
        self._partial += rest

    def _too_big(self) -> None:
        self.oversized += 1
        self.malformed += 1
        self._spoiled = True

    def _line(self, line: bytes) -> ServerEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            return None  # a comment (some servers send these as keep-alives)
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name not in _KNOWN_FIELDS:
            self.malformed += 1
            return None
        if name == b"event":
            self._event = value
        elif name == b"data":
            self._size += len(value) + 1
            if self._size > self.max_event_bytes:
                if not self._spoiled:
                    self._too_big()
                self._data.clear()
            elif not self._spoiled:
                self._data.append(value)
        return None  # id and retry mean nothing to Firebase clients

    def _dispatch(self) -> ServerEvent | None:
        event, data, spoiled = self._event, self._data, self._spoiled
        self._event, self._data, self._size, self._spoiled = b"", [], 0, False
        if spoiled or (not data and not event):
            return None
        try:
            return ServerEvent(event.decode() if event else "message", b"\n".join(data).decode())
        except UnicodeDecodeError:
            self.malformed += 1
            return None


def decode(event: ServerEvent) -> FirebaseEvent | None:
    """The Firebase meaning of an SSE event, or None when it is not one (an unknown type, bad JSON)."""
    kind = event.event
    if kind in ("keep-alive", "cancel", "auth_revoked"):
        return FirebaseEvent(kind)
    if kind not in ("put", "patch"):
        return None
    try:
        body = orjson.loads(event.data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict) or not isinstance(path := body.get("path"), str) or "data" not in body:
        return None
    parts = tuple(p for p in path.split("/") if p)
    if len(parts) > MAX_PATH_DEPTH or (kind == "patch" and not isinstance(body["data"], dict)):
        return None
    return FirebaseEvent(kind, parts, body["data"])


def apply_event(value: Any, event: FirebaseEvent) -> Any:
    """The streamed location's value after a put or patch (lists become their Firebase dict forms and back).

    Firebase addresses a list's elements as children named ``"0"``, ``"1"``...; a list's put at ``/3`` or a
    patch of ``{"3": ...}`` changes one place. ``null`` removes a child.
    """
    if event.kind == "put" and not event.path:
        return event.data
    if event.kind not in ("put", "patch"):
        return value
    root = _as_dict(value)
    node = root
    for key in event.path[:-1] if event.kind == "put" else event.path:
        child = _as_dict(node.get(key))
        node[key] = child
        node = child
    if event.kind == "put":
        _set(node, event.path[-1], event.data)
    else:
        for key, child_value in event.data.items():
            _set(node, str(key), child_value)
    return _normalise(root)


def _set(node: dict[str, Any], key: str, child: Any) -> None:
    if child is None:
        node.pop(key, None)
    else:
        node[key] = child


def _as_dict(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(i): v for i, v in enumerate(value) if v is not None}
    return {}


def _normalise(node: Any) -> Any:
    """Dicts keyed 0..n-1 read back as lists, as Firebase serves arrays; empty means null."""
    if not isinstance(node, dict):
        return node
    out = {k: _normalise(v) for k, v in node.items() if v is not None}
    if not out:
        return None
    if all(k.isdigit() for k in out):
        keys = sorted(int(k) for k in out)
        if keys == list(range(len(keys))):
            return [out[str(k)] for k in keys]
    return out
