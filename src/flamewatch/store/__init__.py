"""Where flamewatch keeps what must survive a restart.

:class:`Store` is the contract the rest of flamewatch relies on; :func:`open_store` opens one (the
embedded SQLite file by default, :class:`SQLiteStore`).
"""

from ..errors import StoreError
from .base import Backlog, CountSample, Delivery, DeliveryStatus, InstanceLock, StateWrite, Store
from .factory import open_store
from .sqlite import SQLiteStore, default_store_path

__all__ = [
    "Backlog",
    "CountSample",
    "Delivery",
    "DeliveryStatus",
    "InstanceLock",
    "SQLiteStore",
    "StateWrite",
    "Store",
    "StoreError",
    "default_store_path",
    "open_store",
]
