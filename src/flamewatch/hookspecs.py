"""Every hook flamewatch calls, with what it is for and what it may return.

Registration hooks (``flamewatch_notifier_types``, ``flamewatch_rule_types``) are plain functions.
Notifiers do their async work in :class:`flamewatch.Notifier` methods, which the core awaits in tracked
tasks with timeouts and retries. Observer hooks (``flamewatch_event_fired``, ``flamewatch_cycle_done``,
``flamewatch_delivery_done``, ``flamewatch_new_item``) are called through pluggy's hook caller, so
``tryfirst``/``trylast`` and hook wrappers apply; each implementation is isolated (a raising one is
reported by its plugin's name and the others still run). An observer may be ``async def``: pluggy never
awaits, so the core runs the coroutine it returns in its own task with a timeout. Plain observers must be
quick and must not block (schedule slow work on a notifier instead). ``FLAMEWATCH_TRACE_PLUGINS=1`` (or
``-vv``) logs every hook call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .events import CycleStats, Event
    from .hn import Item
    from .notifier import Notifier
    from .rules.base import Rule

hookspec = pluggy.HookspecMarker("flamewatch")


# --- registration -------------------------------------------------------------------------------


@hookspec
def flamewatch_notifier_types() -> Sequence[type[Notifier]]:  # type: ignore[empty-body]
    """Return the notifier types this plugin provides.

    Called once when the plugin manager is built. Each type is a :class:`flamewatch.Notifier`
    subclass with a unique ``type_name``; users create instances of it with ``[[notifiers]]`` tables
    in config (``type = "<type_name>"``). Two plugins offering the same ``type_name`` is an error that
    names both plugins.
    """


@hookspec
def flamewatch_rule_types() -> Sequence[type[Rule]]:  # type: ignore[empty-body]
    """Return the rule types this plugin provides.

    Called once when the plugin manager is built, like ``flamewatch_notifier_types``. Each type is a
    :class:`flamewatch.Rule` subclass with a unique ``name`` (what its events carry as ``Event.rule``);
    the fields of its ``Options`` dataclass are its keys in the config's ``[rules]`` table. Two plugins
    offering the same rule name, or two rules claiming the same key, is an error that names both plugins.
    The built-in rules (comments, points, velocity, keyword) are offered this way too.
    """


# --- observation ---------------------------------------------------------------------------------


@hookspec
def flamewatch_event_fired(event: Event) -> None:
    """Called once for every new event, after it is stored and before it is delivered.

    Use it for metrics or logging. Do not block; do not deliver from here (declare a notifier type,
    so the core can retry and persist deliveries).
    """


@hookspec
def flamewatch_delivery_done(event: Event, notifier: str, ok: bool, error: str | None) -> None:
    """Called after each delivery attempt of ``event`` to the notifier instance named ``notifier``.

    ``ok`` says whether it succeeded; ``error`` is the one-line reason when it did not.
    A failed attempt may be retried later, so this can be called several times per event and instance.
    """


@hookspec
def flamewatch_cycle_done(stats: CycleStats) -> None:
    """Called at the end of every watcher cycle with its statistics, from the cycle's done callback.

    A cycle that failed or timed out is reported too, with ``stats.failed`` saying why (its counts
    are then zero); a cycle cancelled at shutdown is not reported.
    """


@hookspec
def flamewatch_new_item(item: Item) -> None:
    """Called once for every new item on Hacker News (stories, comments, jobs, polls), in id order.

    The stream follows HN's ``maxitem`` every cycle, so this sees all of HN (about 11,000 items a day),
    not only the watched threads. ``item`` is already parsed and checked (:class:`flamewatch.Item`); its
    text is untrusted. Keep it quick: it runs on the cycle's path, once per item.
    """
