"""The notifier side of the public plugin API.

A notifier plugin is a subclass of :class:`Notifier` returned from the ``flamewatch_notifier_types`` hook.
It only says *how to send*: the core decides which events it gets, writes them to the outbox first,
retries with backoff, honours ``Retry-After``, batches digests and drains on shutdown.

A send reports failure by raising :class:`DeliveryError` (retry later) or
:class:`PermanentDeliveryError` (never retry: bad credentials, 4xx, a config mistake).
Any other exception is treated as retryable and logged with the instance name.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import datetime
import email.utils
import logging
import os
import stat
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import aiohttp

from .errors import DeliveryError, PermanentDeliveryError
from .events import Event

if TYPE_CHECKING:  # jinja2 is imported only by an instance that has a template
    from .templates import MessageTemplate


#: The longest wait a server may ask for: a hostile or broken ``Retry-After: 1e999`` must not park a
#: delivery forever (the core's own backoff cap and max age still apply on top).
MAX_RETRY_AFTER = 24 * 3600.0


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header, capped at a day; else None.

    Both forms of RFC 9110 are understood: delta-seconds (digits only) and an HTTP-date, which counts
    from ``now`` (Unix seconds, default the current time); a date already past means 0.
    """
    if not value:
        return None
    text = value.strip()
    if text.isdigit() and text.isascii():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" in the date: RFC 5322 says unknown zone; HTTP dates are GMT
        when = when.replace(tzinfo=datetime.UTC)
    wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(0.0, wait), MAX_RETRY_AFTER)


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


#: The running delivery attempt's timeout (set by the core around each send), for :func:`not_timed`.
_ATTEMPT_TIMEOUT: contextvars.ContextVar[asyncio.Timeout | None] = contextvars.ContextVar(
    "flamewatch_attempt_timeout", default=None
)


@contextlib.contextmanager
def attempt_timeout(timeout: asyncio.Timeout) -> Iterator[None]:
    """Core use: make ``timeout`` the one :func:`not_timed` pauses while the body runs."""
    token = _ATTEMPT_TIMEOUT.set(timeout)
    try:
        yield
    finally:
        _ATTEMPT_TIMEOUT.reset(token)


@contextlib.asynccontextmanager
async def not_timed() -> AsyncIterator[None]:
    """A wait inside :meth:`Notifier.send` that does not count against the attempt's timeout.

    For waiting one's turn (a rate limit's pacing): the attempt timeout is there to bound the exchange
    with the server, and a message queued behind others must not time out before it is even sent. The
    deadline is suspended on entering and moved on by the time spent inside on leaving. Outside a
    delivery attempt (``notify-test``, tests) it does nothing.
    """
    timeout = _ATTEMPT_TIMEOUT.get()
    if timeout is None or timeout.expired() or timeout.when() is None:
        yield
        return
    loop = asyncio.get_running_loop()
    deadline = timeout.when()
    assert deadline is not None
    left = deadline - loop.time()
    timeout.reschedule(None)
    try:
        yield
    finally:
        if not timeout.expired():
            timeout.reschedule(loop.time() + max(0.0, left))


_log = logging.getLogger("flamewatch.secrets")
_WARNED_EXPOSED: set[str] = set()


def warn_if_exposed(path: str | Path, what: str, holding: str = "") -> None:
    """Warn once per file (per process) when ``path`` is readable by other users: ``what`` may be secret.

    ``holding`` says what in it is secret (``"a password in store.url"``), for a file that is not all
    secret. A warning, not a refusal (as OpenSSH does for a private key): a shared machine's admin may
    have reasons, and refusing would stop alerts over a file mode.
    """
    key = str(path)
    if key in _WARNED_EXPOSED:
        return
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # reading it reports the problem
    if stat.S_ISREG(mode) and mode & stat.S_IROTH:  # not /dev/null, not a FIFO a secret manager feeds
        _WARNED_EXPOSED.add(key)
        holds = f" and holds {holding}" if holding else ""
        _log.warning("%s %s is readable by other users (mode %s)%s; chmod o-r %s", what, key, stat.filemode(mode),
                     holds, key)


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
            path = Path(self.file).expanduser()
            warn_if_exposed(path, "secret file")
            try:
                return path.read_text().strip()
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


@dataclass(frozen=True)
class StateWrite:
    """One state value to write beside a cycle's samples (``Store.add_snapshots``), as
    ``store.state_for(namespace).set(key, value)`` would, but inside the samples' transaction."""

    namespace: str
    key: str
    value: Any


class SavedValue:
    """The value last written under one state key, so that an unchanged value is not written again.

    An unchanged value is still written once ``refresh`` seconds have passed since the last write: the
    store prunes values not written within its history window."""

    def __init__(self, namespace: str, key: str, *, refresh: float = 86400.0) -> None:
        self.namespace = namespace
        self.key = key
        self.refresh = refresh
        self._value: Any = None
        self._at: float | None = None  # when it was last written (None: not by us yet)

    def loaded(self, value: Any, now: float) -> None:
        """``value`` is what the store holds (just read)."""
        self._value, self._at = value, now

    def write(self, value: Any, now: float) -> StateWrite | None:
        """The write ``value`` needs, or None when the store holds it already and it is fresh enough."""
        if self._at is not None and value == self._value and now - self._at < self.refresh:
            return None
        return StateWrite(self.namespace, self.key, value)

    def written(self, write: StateWrite, now: float) -> None:
        """``write`` is in the store now."""
        self._value, self._at = write.value, now


@dataclass
class NotifierContext:
    """What the core hands to every notifier instance.

    ``name`` is the instance's name from config; ``session`` is the shared aiohttp session (do not close it);
    ``state`` persists small values across restarts; ``log`` is a logger named after the instance.
    ``template`` is the instance's message template (config ``template = "..."``) when the type declares a
    :attr:`Notifier.template_format` and the user wrote one: send ``template.render(event)`` (already
    escaped for that format; None when it failed) instead of the built-in wording. None otherwise.
    """

    name: str
    session: aiohttp.ClientSession
    state: PluginState = dataclasses.field(default_factory=MemoryState)
    log: logging.Logger = dataclasses.field(default_factory=lambda: logging.getLogger("flamewatch.notifier"))
    template: MessageTemplate | None = None


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
    #: The format a ``template`` of this type renders to (``"text"``, ``"html"``, ``"markdown"``,
    #: ``"mrkdwn"``), which decides how values are escaped; None: the type takes no template.
    template_format: ClassVar[str | None] = None

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
