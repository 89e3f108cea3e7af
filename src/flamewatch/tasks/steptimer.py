"""Find the code that blocks the event loop: time each synchronous step of a coroutine.

A coroutine that calls a blocking function (``time.sleep``, ``requests.post``) freezes the whole event
loop, and asyncio alone cannot say who did it. :class:`StepTimer` drives a coroutine one step at a time,
as a task does, so it measures exactly the synchronous part of each step and can name the culprit.
It lives beside the task registry because both are about running code we do not control (plugins)
without letting it harm the rest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Generator

log = logging.getLogger("flamewatch.tasks")


class StepTimer:
    """Await ``coro``, timing each step it runs between two awaits; warn once if the longest was too long.

    Everything else (the futures it waits on, results, exceptions, cancellation) passes through
    unchanged. The warning names ``owner`` (for example ``"notifier hn-slack"``) and the running task,
    and is logged on ``logger`` when the longest step took more than ``threshold`` seconds.
    """

    def __init__(
        self,
        coro: Coroutine[object, object, None],
        owner: str,
        *,
        threshold: float,
        logger: logging.Logger = log,
    ) -> None:
        self._coro = coro
        self._owner = owner
        self._threshold = threshold
        self._log = logger
        self.longest = 0.0  #: the longest synchronous step so far, in seconds

    def __await__(self) -> Generator[object, object, None]:
        coro = self._coro
        task = asyncio.current_task()
        value: object = None
        error: BaseException | None = None
        try:
            while True:
                started = time.perf_counter()
                try:
                    future = coro.throw(error) if error is not None else coro.send(value)
                except StopIteration:
                    return
                finally:
                    self.longest = max(self.longest, time.perf_counter() - started)
                try:
                    value, error = (yield future), None
                except GeneratorExit:
                    coro.close()
                    raise
                except BaseException as exc:  # cancellation and errors go to the wrapped coroutine
                    value, error = None, exc
        finally:
            if self.longest > self._threshold:
                self._log.warning(
                    "%s blocked the event loop for %.2fs in one step (task %s): it must not call "
                    "blocking functions; use an async library or asyncio.to_thread",
                    self._owner, self.longest, task.get_name() if task else "?",
                )
