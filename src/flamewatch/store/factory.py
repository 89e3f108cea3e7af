"""Opening a store from a location: the embedded SQLite file by default."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import StoreError
from .base import Store
from .connection import Clock
from .sqlite import DEFAULT_BUSY_TIMEOUT, SQLiteStore

__all__ = ["open_store"]


async def open_store(
    location: str | Path,
    *,
    clock: Clock = time.time,
    busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
    read_only: bool = False,
) -> Store:
    """Open the store at ``location``: a file path (or ``":memory:"``) opens the embedded SQLite store.

    A URL such as ``postgresql://...`` will choose a server backend; none exists yet, so any URL is
    refused with a :class:`StoreError`. ``clock`` is where the store reads the time when it needs it
    itself; ``busy_timeout`` is how long (seconds) the SQLite store waits for another process's lock.
    ``read_only`` opens an existing store for reading only (commands that only look at it).
    """
    if isinstance(location, str) and "://" in location:
        # Name only the scheme: the rest of a database URL may carry a password.
        scheme = urlsplit(location).scheme or location.split("://", 1)[0]
        raise StoreError(f"cannot open store {scheme}://...: no store backend for {scheme!r} URLs yet")
    return await SQLiteStore.open(location, clock=clock, busy_timeout=busy_timeout, read_only=read_only)
