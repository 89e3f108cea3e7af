"""The embedded store: one SQLite file holding what must survive a restart.

It keeps four things, each in its own module:

* **fired event keys** and **the delivery outbox** (:mod:`.outbox`): an event whose key is recorded never
  fires again; its deliveries are written in the same transaction, before any send.
* **story count history** (:mod:`.history`): each story's counts at each cycle, for velocity and growth.
* **plugin state** (:mod:`.state`): small JSON values, one namespace per notifier instance.

:mod:`.connection` holds the one connection and its transaction discipline, :mod:`.schema` the
migrations. The file is in WAL mode so ``flamewatch`` CLI commands can read while the watcher writes.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

import aiosqlite

from .filelock import SQLiteFileLock
from ..errors import StoreError, StoreSetupError
from .connection import Clock
from .history import SQLiteHistory
from .outbox import SQLiteOutbox
from .schema import check_current, configure, migrate, prepare_directory, reason
from .lifecycle import StoreLifecycle
from .state import SQLitePluginState

__all__ = ["DEFAULT_BUSY_TIMEOUT", "SQLiteStore", "default_store_path"]

log = logging.getLogger("flamewatch.store")

#: How long a statement waits for another process's write lock before failing, in seconds.
DEFAULT_BUSY_TIMEOUT = 5.0


def default_store_path() -> Path:
    """Where the store lives by default: ``$XDG_STATE_HOME/flamewatch/flamewatch.db``.

    Falls back to ``~/.local/state/flamewatch/flamewatch.db`` when ``XDG_STATE_HOME`` is unset or not an
    absolute path (the XDG spec says relative values are to be ignored).
    """
    base = os.environ.get("XDG_STATE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "state"
    return root / "flamewatch" / "flamewatch.db"


class SQLiteStore(SQLiteOutbox, SQLiteHistory, SQLitePluginState, StoreLifecycle):
    """The flamewatch store on one SQLite file (a :class:`~flamewatch.store.base.Store`).

    Open with ``await SQLiteStore.open(path)`` (or :func:`~flamewatch.store.open_store`), then share
    between tasks; close it, or use it as an async context manager.
    """

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        clock: Clock = time.time,
        busy_timeout: float = DEFAULT_BUSY_TIMEOUT,
        read_only: bool = False,
    ) -> SQLiteStore:
        """Open (creating it and its parent directories if needed) and migrate the store at ``path``.

        ``read_only``: open an existing store for reading only (SQLite's ``mode=ro``), for commands that
        only look (``flamewatch outbox list``): nothing is created or migrated, it never waits for a
        running ``flamewatch run``'s write lock, and any write raises :class:`StoreError`.

        ``":memory:"`` gives a private in-memory store (tests). ``clock`` is read where the store needs the
        time itself (when plugin state is written); ``busy_timeout`` is how many seconds a statement waits
        for another process's write lock. Raises :class:`StoreError` with a one-line message when the file
        cannot be opened, is not a flamewatch store, or is newer than this code.
        """
        if read_only:
            return cls(*await _connect_read_only(path, busy_timeout), clock=clock)
        name = _prepared_location(path)
        try:
            conn = await aiosqlite.connect(name, isolation_level=None)  # we issue BEGIN/COMMIT ourselves
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open store {name}: {reason(exc)}") from exc
        try:
            await configure(conn, in_memory=name == ":memory:", busy_timeout=busy_timeout)
            await migrate(conn, name)
        except BaseException as exc:
            await _close_quietly(conn)
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"cannot open store {name}: {reason(exc)}") from exc
            raise
        store = cls(name, conn, clock=clock)
        store._identity = _identity(name)
        return store

    #: ``(st_dev, st_ino)`` of the file as opened (None in memory), to notice it removed or replaced.
    _identity: tuple[int, int] | None = None

    def file_problem(self) -> str | None:
        """See :meth:`Store.file_problem <flamewatch.store.base.Store.file_problem>`."""
        if self._identity is None:
            return None
        try:
            now = _identity(self.path)
        except OSError as exc:
            return f"store {self.path} cannot be found any more ({reason(exc)}): it was removed while in use"
        if now != self._identity:
            return f"store {self.path} was replaced by another file while in use"
        return None

    @classmethod
    async def open_readonly(cls, path: str | Path, *, clock: Clock = time.time) -> SQLiteStore:
        """Open an existing store for reading only (SQLite ``mode=ro``): nothing is created or migrated,
        and every write raises :class:`StoreError`. For commands that look while a daemon writes."""
        return await cls.open(path, clock=clock, read_only=True)

    def __repr__(self) -> str:
        return f"SQLiteStore({self.path!r})"

    def instance_lock(self, owner: str) -> SQLiteFileLock:
        """The lock that makes this process the store's one sender (see :mod:`.filelock`)."""
        return SQLiteFileLock(str(self.path), owner)

    def _connected(self) -> bool:
        return self._conn is not None


async def _connect_read_only(path: str | Path, busy_timeout: float) -> tuple[str, aiosqlite.Connection]:
    """``(name, connection)`` of an existing, current store file opened with SQLite's ``mode=ro``."""
    name, uri = _read_only_uri(path)
    try:
        conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {name}: {reason(exc)}") from exc
    try:
        await conn.execute(f"PRAGMA busy_timeout = {max(0, round(busy_timeout * 1000))}")
        await check_current(conn, name)
    except BaseException as exc:
        await _close_quietly(conn)
        if isinstance(exc, sqlite3.Error):
            raise StoreError(f"cannot open store {name}: {reason(exc)}") from exc
        raise
    return name, conn


def _read_only_uri(path: str | Path) -> tuple[str, str]:
    """``(name, mode=ro URI)`` of an existing store file; StoreError when there is none to read."""
    if str(path) == ":memory:":
        raise StoreError("cannot open store :memory: read-only: an in-memory store holds nothing to read")
    file = Path(path).expanduser()
    name = str(file)
    if not file.is_file():
        what = "it is not a file" if file.exists() else "no such file (nothing has run with it yet)"
        raise StoreError(f"cannot open store {name}: {what}")
    return name, f"{file.resolve().as_uri()}?mode=ro"  # as_uri percent-encodes '?', '#' and spaces


def _identity(name: str) -> tuple[int, int] | None:
    """The file's ``(st_dev, st_ino)`` (None in memory); OSError when there is no such file."""
    if name == ":memory:":
        return None
    info = os.stat(name)
    return info.st_dev, info.st_ino


def _prepared_location(path: str | Path) -> str:
    """The name to connect to: ``":memory:"``, or the expanded file path once its directory is ready.

    An existing file that cannot be written is refused here: SQLite would open it read-only without a
    word, and every write of the running daemon would fail later instead of once, at start.
    """
    if str(path) == ":memory:":
        return ":memory:"
    file = Path(path).expanduser()
    prepare_directory(file)
    try:
        read_only = read_only_problem(file)
    except FileNotFoundError:
        return str(file)
    except OSError as exc:
        raise StoreError(f"cannot open store {file}: {reason(exc)}") from exc
    if read_only is not None:
        raise StoreSetupError(f"cannot open store {file}: {read_only}")
    return str(file)


def read_only_problem(file: Path) -> str | None:
    """Why the existing store ``file`` cannot be written (one line), or None; OSError when it cannot be
    looked at (FileNotFoundError when there is none). ``flamewatch check`` asks it too."""
    info = file.stat()
    read_only_fs = bool(os.statvfs(file).f_flag & os.ST_RDONLY)
    # No write bit at all means "keep this read-only" even to root, whom os.access never refuses.
    if read_only_fs or not info.st_mode & 0o222 or not os.access(file, os.W_OK):
        where = "on a read-only file system" if read_only_fs else f"mode {stat.filemode(info.st_mode)}"
        return (f"the file is read-only ({where}); flamewatch must write to it (fix its permissions, or use "
                "'flamewatch outbox list' to only look)")
    return None


async def _close_quietly(conn: aiosqlite.Connection) -> None:
    """Close a connection that failed to open; the error that made us close it is the one to report."""
    try:
        await conn.close()
    except sqlite3.Error as exc:
        log.debug("closing a store connection that failed to open: %s", exc)
