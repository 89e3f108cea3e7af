"""The ``decline`` rule: what happened next to a watched user's story or a followed thread.

It left a watched list (after ``decline_grace`` cycles away, so a one-cycle glitch of the list is not
news), dropped sharply on a list, vanished from a high rank (likely flagged), became dead, was deleted,
or was retitled. The rule only holds the options: the cycle's ``decline`` stage
(:mod:`flamewatch.pipeline.decline`) compares each cycle with the state it keeps in the store, because
leaving a list is seen on the cycles a story is *not* counted, which a per-story rule never sees (the
reverted in-memory attempt lost and repeated events for exactly that reason). Keys come from
:func:`flamewatch.eventkeys.decline_key`; the levels are names and do not order.
"""

from __future__ import annotations

from dataclasses import dataclass

from flamewatch import Duration, LevelOrder, NonNegativeInt, PositiveInt, Rule, hookimpl

from .people import WatchlistRule


class DeclineRule(WatchlistRule):
    """Holds the options of the decline events (the ``decline`` stage fires them)."""

    name = "decline"
    description = "a watched story leaves a list, drops, is flagged, dies, is deleted or retitled"
    level_order = LevelOrder.NONE

    @dataclass(frozen=True)
    class Options:
        """``[rules]`` keys; ``decline = true`` turns the events on for watched users' stories and followed
        threads."""

        decline: bool = False
        #: Cycles a story must be away from a list before "left" fires (a glitch shorter than this is not).
        decline_grace: PositiveInt = 3
        #: Places lost on a list within ``decline_drop_within`` that make a "sharp drop" (0: never).
        decline_rank_drop: NonNegativeInt = 20
        decline_drop_within: Duration = 3600.0
        #: A story gone from a list where it last stood this high or higher is "likely flagged" rather than
        #: "left" (0: never): stories slide off the bottom, they do not vanish from the top.
        decline_flag_rank: NonNegativeInt = 10

    def is_active(self) -> bool:
        # Threads followed by hand (`flamewatch follow`) appear at run time, so no watchlist check here.
        return bool(self.options.decline)

    def describe(self) -> str:
        o = self.options
        drop = (f", a drop of {o.decline_rank_drop} places within {o.decline_drop_within:g}s"
                if o.decline_rank_drop else "")
        flag = f", gone from #{o.decline_flag_rank} or higher: flagged" if o.decline_flag_rank else ""
        return f"decline of watched stories: left after {o.decline_grace} cycles{drop}{flag}, dead, deleted, retitled"


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [DeclineRule]
