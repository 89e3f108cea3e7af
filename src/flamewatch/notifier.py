"""The notifier side of the public plugin API.

A notifier plugin is a subclass of :class:`Notifier` returned from the ``flamewatch_notifier_types`` hook.
It only says *how to send*: the core decides which events it gets, writes them to the outbox first,
retries with backoff, honours ``Retry-After``, batches digests and drains on shutdown.

A send reports failure by raising :class:`DeliveryError` (retry later) or
:class:`PermanentDeliveryError` (never retry: bad credentials, 4xx, a config mistake).
Any other exception is treated as retryable and logged with the instance name.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

import aiohttp

from .errors import DeliveryError, PermanentDeliveryError
from .events import Event


#: The longest wait a server may ask for: a hostile or broken ``Retry-After: 1e999`` must not park a
#: delivery forever (the core's own backoff cap and max age still apply on top).
MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds: digits only), capped at a day; else None."""
    if not value or not value.strip().isdigit():
        return None
    return min(float(value.strip()), MAX_RETRY_AFTER)


def raise_for_http_status(status: int, what: str, *, retry_after: str | None = None) -> None:
    """Raise the right :class:`DeliveryError` for an HTTP status; return quietly on 2xx.

    2xx is success; 408, 429 and 5xx are retryable; anything else (3xx, other 4xx) is permanent.
    ``what`` names the target in the message (never put a secret URL or token in it).
    """
    if 200 <= status < 300:
        return
    message = f"{what} answered HTTP {status}"
    if status in (408, 429) or status >= 500:
        raise DeliveryError(message, retry_after=parse_retry_after(retry_after))
    raise PermanentDeliveryError(message)


@dataclass(frozen=True, slots=True)
class Secret:
    """A secret referenced from config: ``{env = "NAME"}`` or ``{file = "/path"}``.

    Its repr names where it comes from, never its value, so it is safe to log a config.
    Call :meth:`reveal` at the moment of use.
    """

    env: str | None = None
    file: str | None = None

    def reveal(self) -> str:
        """The secret's value, read now (raises ``LookupError`` with a clear message if unavailable)."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise LookupError(f"environment variable {self.env} is not set")
            return value
        if self.file is not None:
            try:
                return Path(self.file).expanduser().read_text().strip()
            except OSError as exc:  # names the file, never its content
                raise LookupError(f"cannot read secret file {self.file}: {exc.strerror}") from exc
        raise LookupError("secret has neither env nor file")

    def __repr__(self) -> str:
        return f"Secret(env={self.env!r})" if self.env is not None else f"Secret(file={self.file!r})"

    __str__ = __repr__


class PluginState(Protocol):
    """Small persistent key/value storage, one namespace per notifier instance (values are JSON).

    A value not written again within the store's history window (``[store] history_days``, 7 by
    default) is forgotten, so per-story entries do not pile up forever.
    """

    async def get(self, key: str) -> Any | None:
        """The stored value, or None."""
        ...

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` (anything JSON can encode) under ``key``."""
        ...


class MemoryState:
    """A :class:`PluginState` that lives in memory (tests, and runs without a store)."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}

    async def get(self, key: str) -> Any | None:
        """The stored value, or None."""
        return self._data.get(key)

    async def set(self, key: str, value: Any) -> None:
        """Store ``value`` under ``key`` (until the process ends)."""
        self._data[key] = value


@dataclass
class NotifierContext:
    """What the core hands to every notifier instance.

    ``name`` is the instance's name from config; ``session`` is the shared aiohttp session (do not close it);
    ``state`` persists small values across restarts; ``log`` is a logger named after the instance.
    """

    name: str
    session: aiohttp.ClientSession
    state: PluginState = dataclasses.field(default_factory=MemoryState)
    log: logging.Logger = dataclasses.field(default_factory=lambda: logging.getLogger("flamewatch.notifier"))


@dataclass(frozen=True)
class NoOptions:
    """Options of a notifier that takes none."""


class Notifier:
    """Base class of every notifier type.

    Subclasses set ``type_name`` (what users write as ``type = "..."`` in config), optionally
    ``description``, and ``Options``: a dataclass whose fields are the options this type accepts.
    The core validates the config table against ``Options`` (names, types, required fields) before
    anything runs, so ``__init__`` receives a ready ``options`` object. Fields typed :class:`Secret`
    take ``{env = "NAME"}`` or ``{file = "path"}``.

    Override :meth:`send`; override :meth:`send_digest` too if the type can send several events in one
    message (then users may configure ``digest`` for it). :meth:`start` and :meth:`aclose` open and close
    anything the instance owns.
    """

    type_name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    Options: ClassVar[type] = NoOptions

    def __init__(self, ctx: NotifierContext, options: Any) -> None:
        self.ctx = ctx
        self.options = options

    @property
    def name(self) -> str:
        """The instance name from config."""
        return self.ctx.name

    @classmethod
    def supports_digest(cls) -> bool:
        """True when the type overrides :meth:`send_digest`."""
        return cls.send_digest is not Notifier.send_digest

    async def start(self) -> None:
        """Called once before the first send (open clients, check credentials cheaply)."""

    async def send(self, event: Event) -> None:
        """Deliver one event; raise :class:`DeliveryError` or :class:`PermanentDeliveryError` on failure."""
        raise NotImplementedError

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Deliver several events as one message (digest mode). Not every type supports it."""
        raise NotImplementedError

    async def aclose(self) -> None:
        """Called once at shutdown; release what :meth:`start` opened."""
