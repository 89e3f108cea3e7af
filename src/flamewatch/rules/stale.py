"""The ``stale`` rule: a source that stops changing (HN's ``maxitem``, a watched list) is news too.

Feed users found their feeds frozen only by noticing silence. With ``stale_after`` set, the cycle's
``stale`` stage (:mod:`flamewatch.pipeline.stale`) watches ``maxitem`` (when the stream is on) and each
watched list; one that has not changed for longer than ``stale_after`` gives one event when it starts and
one when it ends, ``/-/ready`` answers 503 naming it, and the status page says so. The rule only holds
the options; keys come from :func:`flamewatch.eventkeys.stale_key`.
"""

from __future__ import annotations

from dataclasses import dataclass

from flamewatch import Duration, LevelOrder, Rule, hookimpl


class StaleRule(Rule):
    """Holds the options of the stale source alert (the ``stale`` stage fires it)."""

    name = "stale"
    description = "maxitem or a watched list stops changing for longer than stale_after"
    level_order = LevelOrder.NONE

    @dataclass(frozen=True)
    class Options:
        """``[rules]`` keys; ``stale_after`` unset (the default) leaves the alert off."""

        stale_after: Duration | None = None
        #: Whether the watched lists are watched too (``maxitem`` always is, when the stream is on).
        stale_lists: bool = True

    def is_active(self) -> bool:
        return self.options.stale_after is not None

    def describe(self) -> str:
        what = "maxitem and the watched lists" if self.options.stale_lists else "maxitem"
        return f"stale source: {what} unchanged for {self.options.stale_after:g}s"


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [StaleRule]
