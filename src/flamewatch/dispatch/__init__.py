"""Routing events to notifier instances through the outbox.

:mod:`.policies` holds the pure decisions (routes, digest schedules, retry backoff), :mod:`.instance`
the notifier instance, :mod:`.attempt` one send through a plugin, and :mod:`.runtime` the
:class:`Dispatcher` that runs them.
"""

from .instance import DEFAULT_TIMEOUT, NotifierInstance
from .policies import DigestSchedule, RetryPolicy, Route
from .runtime import BLOCKING_WARN_SECONDS, POLL_SECONDS, STORE_ERROR_BACKOFF, Dispatcher, DispatchStats, HookCaller

__all__ = [
    "BLOCKING_WARN_SECONDS",
    "DEFAULT_TIMEOUT",
    "POLL_SECONDS",
    "STORE_ERROR_BACKOFF",
    "DigestSchedule",
    "DispatchStats",
    "Dispatcher",
    "HookCaller",
    "NotifierInstance",
    "RetryPolicy",
    "Route",
]
