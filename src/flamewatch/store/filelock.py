"""One sender per SQLite store: an exclusive ``flock`` on ``<store>.lock``, held for the process's life.

``flock`` locks belong to the open file description, so the kernel drops the lock when the process dies,
even by ``kill -9``: a crashed instance never leaves a stale lock behind. The file holds the holder's pid
and host, for the message another instance prints. The lock is advisory: only flamewatch honours it.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from ..errors import StoreError, StoreLockedError

__all__ = ["SQLiteFileLock", "lock_file_of", "lock_holder"]


def lock_file_of(store_path: str) -> Path:
    """The lock file of the store at ``store_path``: ``<real path>.lock``.

    The path is resolved first (``~``, symlinks, ``..``): ``--store link.db`` and ``--store real.db`` name
    one store, so they must contend for one lock, or both would send. A missing target still resolves
    (non-strict), so a symlink to a store not created yet locks the file it will create.
    """
    return Path(os.path.realpath(os.path.expanduser(store_path)) + ".lock")


def lock_holder(store_path: str) -> str | None:
    """Who holds the lock of the store at ``store_path`` now (its ``"pid N on host"`` line), or None when nobody does.

    A non-blocking shared ``flock`` attempt: it fails only while a sender holds its exclusive lock. (A
    sender starting in the instant we hold the shared lock would be refused; the window is microseconds.)
    """
    path = lock_file_of(store_path)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None  # no lock file: nobody ever sent from this store, or it was removed
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
            return (text.splitlines()[0][:200] if text else "holder unknown")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class SQLiteFileLock:
    """The :class:`~flamewatch.store.base.InstanceLock` of a SQLite store file."""

    def __init__(self, store_path: str, owner: str) -> None:
        self.store_path = store_path
        self.path = lock_file_of(store_path) if store_path != ":memory:" else Path(":memory:.lock")
        self.owner = owner
        self._fd: int | None = None
        self._private = False  # an in-memory store: nobody else can open it, so it is always ours

    @property
    def held(self) -> bool:
        return self._fd is not None or self._private

    async def acquire(self, *, wait: bool) -> None:
        if self.store_path == ":memory:":
            self._private = True
            return
        if self._fd is not None:
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StoreError(f"cannot lock store {self.store_path}: {exc.strerror or type(exc).__name__} "
                             f"({self.path})") from exc
        try:
            # A blocking flock would stall the event loop; a standby SQLite instance is not a thing, so
            # waiting means "fail now" here too.
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            holder = await self.holder()
            raise StoreLockedError(
                f"store {self.store_path} is in use by another flamewatch ({holder or 'holder unknown'})"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"pid {os.getpid()} on {socket.gethostname()} ({self.owner})\n".encode())
        except OSError as exc:  # a full disk: give the lock back rather than hold it on a leaked descriptor
            os.close(fd)
            raise StoreError(f"cannot lock store {self.store_path}: {exc.strerror or type(exc).__name__} "
                             f"({self.path})") from exc
        self._fd = fd

    async def holder(self) -> str | None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            return None
        return text.splitlines()[0][:200] if text else None

    async def release(self) -> None:
        self._private = False
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor drops the flock
