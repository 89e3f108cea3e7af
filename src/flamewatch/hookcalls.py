"""Calling observer hooks through pluggy's own hook caller, each implementation isolated.

``pm.hook.<name>(...)`` is what calls the implementations, so pluggy's order (``tryfirst``,
``trylast``, then newest first), hook wrappers and call monitoring all apply. pluggy stops at the first
implementation that raises, and it never awaits, so each plain implementation of an observer hook is
wrapped when its plugin registers (:func:`isolate`):

* a synchronous implementation that raises is logged with its plugin's name and gives no result; the
  next implementation still runs;
* an ``async def`` implementation gives a coroutine: it comes back from the hook call as a
  :class:`HookCall` naming its plugin, and :class:`HookRunner` runs it in its own tracked task with its
  own timeout, so a slow or failing one delays and stops nothing else.

Tracing: with ``FLAMEWATCH_TRACE_PLUGINS=1`` in the environment, or debug logging (``-vv``), every
hook call is logged on ``flamewatch.plugins.trace`` with its arguments and the plugins it reached, as
datasette's ``DATASETTE_TRACE_PLUGINS`` does.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pluggy

from .tasks import CloseReport, TaskRegistry

__all__ = ["HOOK_TIMEOUT", "OBSERVER_HOOKS", "TRACE_ENV", "HookCall", "HookRunner", "isolate", "trace_calls"]

log = logging.getLogger("flamewatch.plugins")
trace_log = logging.getLogger("flamewatch.plugins.trace")

#: The hooks that tell plugins what happened (they return nothing the core reads).
OBSERVER_HOOKS = frozenset({"flamewatch_event_fired", "flamewatch_delivery_done", "flamewatch_cycle_done",
                            "flamewatch_new_item"})

#: Seconds an ``async def`` observer may run before it is cancelled (and named in the log).
HOOK_TIMEOUT = 10.0

#: Set (to anything but "" or "0") to log every hook call.
TRACE_ENV = "FLAMEWATCH_TRACE_PLUGINS"


@dataclass(frozen=True)
class HookCall:
    """The awaitable an ``async def`` implementation returned, with who returned it."""

    plugin: str
    hook: str
    awaitable: Awaitable[Any]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def failed(plugin: str, hook: str, exc: BaseException) -> None:
    """Log one implementation's failure: one line, the traceback with debug logging."""
    log.error("plugin %s: hook %s raised %s: %s", plugin, hook, type(exc).__name__, _one_line(exc),
              exc_info=exc if log.isEnabledFor(logging.DEBUG) else None)


def isolate(pm: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Wrap ``plugin``'s plain observer implementations (see the module docstring); wrappers stay as they are."""
    for caller in pm.get_hookcallers(plugin) or []:
        if caller.name not in OBSERVER_HOOKS:
            continue
        for impl in caller.get_hookimpls():
            if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                # pluggy offers no hook to wrap an implementation as it registers, and stops at the first
                # one that raises; swapping the function on its HookImpl (typed Final, but a plain slot)
                # keeps its place in pluggy's order. tests/test_plugins.py checks both still hold.
                setattr(impl, "function", _isolated(impl.function, name, caller.name))  # noqa: B010


def _isolated(function: Callable[..., Any], plugin: str, hook: str) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        try:
            result = function(*args)
        except Exception as exc:  # plugin code may raise anything; the other implementations still run
            failed(plugin, hook, exc)
            return None
        return HookCall(plugin, hook, result) if inspect.isawaitable(result) else result

    call.__name__ = getattr(function, "__name__", hook)
    return call


class HookRunner:
    """Calls observer hooks through pluggy's caller and runs their coroutines as tracked tasks."""

    def __init__(self, pm: pluggy.PluginManager, *, timeout: float = HOOK_TIMEOUT) -> None:
        self.pm = pm
        self.timeout = timeout
        self.tasks = TaskRegistry("plugin hooks")

    def call(self, hook_name: str, kwargs: Mapping[str, Any]) -> None:
        """``pm.hook.<hook_name>(**kwargs)``; every coroutine it gave starts in its own task."""
        try:
            results = getattr(self.pm.hook, hook_name)(**kwargs)
        except Exception as exc:  # only a hook wrapper can get here: plain implementations are isolated
            log.error("hook %s: a hook wrapper raised %s: %s", hook_name, type(exc).__name__, _one_line(exc))
            return
        for result in results or ():
            if isinstance(result, HookCall):
                self._start(result)

    def _start(self, call: HookCall) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _close(call.awaitable)
            log.error("plugin %s: hook %s is async but was called outside the event loop; not run",
                      call.plugin, call.hook)
            return
        if self.tasks.closed:
            _close(call.awaitable)
            return
        self.tasks.spawn(self._run(call), name=f"hook:{call.hook}:{call.plugin}")

    async def _run(self, call: HookCall) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await call.awaitable
        except TimeoutError:
            log.error("plugin %s: hook %s did not finish within %gs and was cancelled", call.plugin, call.hook,
                      self.timeout)
        except Exception as exc:
            failed(call.plugin, call.hook, exc)

    async def close(self, grace: float) -> CloseReport:
        """Give running hook tasks ``grace`` seconds, then cancel the rest; no new ones start."""
        return await self.tasks.close(grace)

    async def drain(self, grace: float) -> None:
        """Give running hook tasks ``grace`` seconds, then cancel the rest; new ones may start later (the
        plugin manager may outlive one App, as in tests)."""
        try:
            async with asyncio.timeout(grace):
                await self.tasks.wait_idle()
        except TimeoutError:
            log.warning("%d plugin hook task(s) did not finish within %gs and were cancelled", len(self.tasks), grace)
            self.tasks.cancel_all()
            await self.tasks.wait_idle()


def _close(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # never started: no "coroutine was never awaited" warning


def trace_calls(pm: pluggy.PluginManager, *, force: bool = False) -> bool:
    """Log every hook call when ``FLAMEWATCH_TRACE_PLUGINS`` is set or debug logging is on; whether it does."""
    if not (force or os.environ.get(TRACE_ENV, "") not in ("", "0") or log.isEnabledFor(logging.DEBUG)):
        return False
    trace_log.setLevel(logging.INFO)

    def before(hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        args = ", ".join(f"{k}={_short(v)}" for k, v in kwargs.items())
        trace_log.info("hook %s(%s) -> %s", hook_name, args, ", ".join(i.plugin_name for i in reversed(impls))
                       or "no plugin")

    def after(outcome: Any, hook_name: str, impls: Sequence[pluggy.HookImpl], kwargs: Mapping[str, Any]) -> None:
        exc = outcome.exception
        if exc is not None:
            trace_log.info("hook %s raised %s: %s", hook_name, type(exc).__name__, _one_line(exc))

    pm.add_hookcall_monitoring(before, after)
    return True


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
