"""The exceptions flamewatch raises, under one base, so a caller can catch "anything flamewatch said".

Each one carries a message already phrased as one line for the user (naming the file and key, the item
id, the plugin or the notifier instance). The CLI prints that line; ``-vv`` adds the traceback with its
cause, so core code chains with ``raise ... from exc`` (``from None`` only where the cause could carry a
secret).
"""

from __future__ import annotations

from collections.abc import Sequence


class FlamewatchError(Exception):
    """Base of every error flamewatch raises on purpose (as opposed to a bug)."""


class ConfigError(FlamewatchError):
    """A config mistake, already phrased as one line: ``<file>: <key>: <what is wrong>``.

    Reading a file goes on past the first mistake, so one error may carry several: :attr:`problems` has
    every line (the message is the first), and the CLI prints them all.
    """

    def __init__(self, message: str, problems: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.problems: tuple[str, ...] = tuple(problems) or (message,)

    @classmethod
    def of(cls, problems: Sequence[str]) -> ConfigError:
        """One error carrying every line of ``problems`` (at least one)."""
        return cls(problems[0], problems)


class PluginError(FlamewatchError):
    """A plugin broke the contract (duplicate notifier or rule name, wrong return value)."""


class FetchError(FlamewatchError):
    """An HN item or list could not be fetched (after retries, when the failure was retryable)."""


class StoreError(FlamewatchError):
    """The store cannot be opened, read or written (the message names the store and the reason)."""


class StoreSetupError(StoreError):
    """The store cannot work as configured: a URL or path that cannot be used, a login the server refuses,
    a database that does not exist, a read-only file, a schema that is not flamewatch's or is newer. A setup
    mistake, which the CLI reports like a config one (exit status 2); a server that is down or a disk that
    fails is a plain :class:`StoreError` (exit status 1)."""


class StoreLockedError(StoreError):
    """Another flamewatch holds the store's sending lock; the message names the store and the holder."""


class DeliveryError(FlamewatchError):
    """A send failed but may succeed later (timeouts, connection errors, 5xx, 429).

    ``retry_after`` is the server's requested wait in seconds (``Retry-After``), if any.
    """

    retryable: bool = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentDeliveryError(DeliveryError):
    """A send failed and retrying cannot help (4xx other than 408/429, bad token, bad address)."""

    retryable = False
