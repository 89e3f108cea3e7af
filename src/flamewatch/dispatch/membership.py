"""Which notifier instances a :class:`~.runtime.Dispatcher` runs: starting each one, and adding or removing
instances while it runs (a config reload). A mixin, so the dispatcher's own module stays about delivery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..errors import PermanentDeliveryError, StoreError
from .instance import NotifierInstance
from .policies import FLOOD_WINDOW

if TYPE_CHECKING:
    from ..store import Store

log = logging.getLogger("flamewatch.dispatch")


class Membership:
    """The instance set of a dispatcher (the attributes and methods below are the dispatcher's)."""

    instances: dict[str, NotifierInstance]
    #: Instances whose notifier failed to start, with the exception (``run`` refuses a permanent one).
    start_failures: dict[str, BaseException]
    _pumps: list[asyncio.Task[None]]
    _pump_of: dict[str, asyncio.Task[None]]
    _changes: int
    store: Store
    clock: Callable[[], float]

    async def _pump(self, instance: NotifierInstance) -> None:
        raise NotImplementedError

    async def _wait_for_change_since(self, seen: int) -> None:
        raise NotImplementedError

    async def _start_instance(self, instance: NotifierInstance, *, started: bool = False) -> None:
        """Start ``instance``'s notifier (a failure is logged and kept in :attr:`start_failures`) and pump."""
        try:
            async with asyncio.timeout(instance.timeout):  # a hanging start must not hold up the others
                if not started:
                    await instance.notifier.start()
        except Exception as exc:  # plugin code may raise anything; it must not stop the other instances
            # A bad token or an unreachable server: this instance's deliveries will fail visibly (retry,
            # or dead letters with the reason) until it is fixed.
            self.start_failures[instance.name] = exc
            kind = "permanent" if isinstance(exc, PermanentDeliveryError) else type(exc).__name__
            log.error("notifier %s: failed to start (%s): %s", instance.name, kind, exc)
        instance.wake.set()
        pump = asyncio.create_task(self._pump(instance), name=f"pump:{instance.name}")
        self._pumps.append(pump)
        self._pump_of[instance.name] = pump

    async def count_last_hour(self, instance: NotifierInstance) -> None:
        """Start the flood cap's count from the messages the store says went out in the last hour, not from
        zero: a process restarted over and over, or a standby taking over, must not send ``max_per_hour``
        more each time. Done by the flood cap stage when ``instance.count_from_store`` is set (at start,
        and when this process gains the lead: a standby's count from its own start misses the leader's)."""
        instance.count_from_store = False
        try:
            times = await self.store.sent_since(instance.name, self.clock() - FLOOD_WINDOW)
        except StoreError as exc:
            log.warning("notifier %s: cannot count the last hour's messages (%s); its flood cap counts from now",
                        instance.name, exc)
            return
        instance.sent_times.clear()
        instance.sent_times.extend(times)

    async def add_instance(self, instance: NotifierInstance, *, started: bool = False) -> None:
        """Run ``instance`` (open, with a name not in use) alongside the others (config reload).

        ``started``: its notifier's ``start()`` already ran (a reload checks it before changing anything).
        """
        if instance.name in self.instances:
            raise ValueError(f"notifier {instance.name} is already running")
        if not instance.is_open:
            raise ValueError(f"notifier {instance.name} must be open before dispatching")
        self.instances[instance.name] = instance
        await self._start_instance(instance, started=started)

    async def remove_instance(self, name: str) -> None:
        """Stop running instance ``name`` (config reload): no new deliveries start for it, the running
        ones get its timeout to finish, then its notifier is closed. Its pending rows stay in the outbox."""
        instance = self.instances.pop(name)
        pump = self._pump_of.pop(name)
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
        self._pumps.remove(pump)
        try:
            async with asyncio.timeout(instance.timeout):
                while instance.inflight:
                    await self._wait_for_change_since(self._changes)
        except TimeoutError:
            log.warning("notifier %s: %d deliveries still running when it was removed; they are retried later",
                        name, len(instance.inflight))
        self.start_failures.pop(name, None)
        try:
            async with asyncio.timeout(instance.timeout):
                await instance.notifier.aclose()
        except Exception as exc:  # plugin code may raise anything
            log.error("notifier %s: error while closing: %s", name, exc)

