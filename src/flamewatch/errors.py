"""The exceptions flamewatch raises, under one base, so a caller can catch "anything flamewatch said".

Each one carries a message already phrased as one line for the user (naming the file and key, the item
id, the plugin or the notifier instance). The CLI prints that line; ``-vv`` adds the traceback with its
cause, so core code chains with ``raise ... from exc`` (``from None`` only where the cause could carry a
secret).
"""

from __future__ import annotations


class FlamewatchError(Exception):
    """Base of every error flamewatch raises on purpose (as opposed to a bug)."""


class ConfigError(FlamewatchError):
    """A config mistake, already phrased as one line: ``<file>: <key>: <what is wrong>``."""


class PluginError(FlamewatchError):
    """A plugin broke the contract (duplicate notifier or rule name, wrong return value)."""


class FetchError(FlamewatchError):
    """An HN item or list could not be fetched (after retries, when the failure was retryable)."""


class StoreError(FlamewatchError):
    """The store cannot be opened, read or written (the message names the store and the reason)."""


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
