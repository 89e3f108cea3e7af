"""One delivery attempt: a send (or a digest) through a notifier instance's plugin, and what its failure means.

This is the boundary with plugin code, which may raise anything; everything it can do wrong becomes a
:class:`Failure` the dispatcher knows how to record.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import DeliveryError, PermanentDeliveryError
from ..events import Event
from ..notifier import attempt_timeout as _paused_by_pacing  # pauses only inside not_timed()
from ..tasks import StepTimer
from .instance import NotifierInstance

__all__ = ["Failure", "attempt"]


@dataclass(frozen=True)
class Failure:
    """Why a delivery attempt failed, and what that means for the next one."""

    error: str  #: one line for the logs and the outbox's ``last_error``
    permanent: bool = False  #: never retry: move the rows to the dead letters
    retry_after: float | None = None  #: the server's requested wait, in seconds


async def attempt(
    instance: NotifierInstance, events: list[Event], *, blocking_warn: float, logger: logging.Logger,
    on_timer: Callable[[asyncio.Timeout], None] | None = None,
) -> Failure | None:
    """Send ``events`` (one, or a digest) through ``instance`` within its timeout; None on success.

    A step of the plugin's coroutine that holds the event loop longer than ``blocking_warn`` seconds is
    reported on ``logger``, naming the instance. ``on_timer`` is given the attempt's timeout (suspended
    while the plugin waits its turn) before the plugin runs.
    """
    try:
        # The timeout bounds the exchange with the server; a wait for one's turn inside the plugin
        # (``flamewatch.not_timed``, Slack's pacing) is not counted.
        async with asyncio.timeout(instance.timeout) as timeout:
            if on_timer is not None:
                on_timer(timeout)
            with _paused_by_pacing(timeout):
                # A digest always goes as one; a group (group_wait) of a single event is an ordinary message.
                # Several events for an instance that does not batch: the rows its flood cap held.
                if instance.digest is not None or len(events) > 1:
                    send = instance.notifier.send_digest(events)
                else:
                    send = instance.notifier.send(events[0])
                # A plugin's send may be any awaitable; only coroutines can be driven step by step.
                if asyncio.iscoroutine(send):
                    await StepTimer(send, f"notifier {instance.name}", threshold=blocking_warn, logger=logger)
                else:
                    await send
    except PermanentDeliveryError as exc:
        return Failure(str(exc) or type(exc).__name__, permanent=True)
    except Exception as exc:  # plugin code may raise anything: DeliveryError, TimeoutError or a bug, all retried
        return Failure(_describe_failure(exc, instance.timeout), retry_after=getattr(exc, "retry_after", None))
    return None


def _describe_failure(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"timed out after {timeout:g}s"
    if isinstance(exc, DeliveryError):
        return str(exc) or type(exc).__name__
    # Not a DeliveryError: a bug or an unexpected library error in the plugin; keep it retryable.
    return f"unexpected {type(exc).__name__}: {exc}"
