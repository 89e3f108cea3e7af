"""The ``rank`` rule: a watched user's story enters a watched list, or climbs past a rank level.

Which users, and what they want, comes from ``[[watch.users]]`` (``front_page``, ``rank_levels``) through
the :class:`~flamewatch.people.Watchlist` the core binds to this rule; it has no ``[rules]`` keys.
Keys (made by :mod:`flamewatch.eventkeys`): ``rank:<story>:<list>:entered`` and ``rank:<story>:<level>``
(level 1 is "#1 on the front page"). Smaller levels are better news (``level_order`` is LOWER), so "#1"
supersedes "the top 10" wherever levels are compared.
"""

from __future__ import annotations

from flamewatch import Evaluation, LevelOrder, Rule, RuleContext, StorySnapshot, Wording, hookimpl
from flamewatch.eventkeys import entered_key, rank_key

from .base import best_announced
from .people import WatchlistRule

#: The list rank levels are measured on.
FRONT_PAGE = "topstories"

_LIST_NAMES = {
    "topstories": "the front page", "newstories": "new", "beststories": "best", "askstories": "Ask HN",
    "showstories": "Show HN", "jobstories": "jobs",
}


def list_label(name: str) -> str:
    """How a list reads in a sentence: ``the front page``, ``Show HN``."""
    return _LIST_NAMES.get(name, name)


class RankRule(WatchlistRule):
    """Fires when a watched user's story enters a list, and when its front-page rank reaches a level."""

    name = "rank"
    description = "a watched user's story enters a list or reaches a rank"
    level_order = LevelOrder.LOWER

    def is_active(self) -> bool:
        return self.watchlist is not None and any(
            u.settings.front_page or u.settings.rank_levels for u in self.watchlist.users.values()
        )

    def describe(self) -> str:
        names = sorted(self.watchlist.users) if self.watchlist is not None else []
        return f"rank of stories by {', '.join(names)}"

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        user = self.watchlist.user_of_story(story.id, story.by) if self.watchlist is not None else None
        if user is None:
            return Evaluation()
        out = Evaluation()
        if user.settings.front_page:
            for list_name, rank in story.lists.items():
                wording = Wording(
                    summary=f"Entered {list_label(list_name)} at #{rank}",
                    headline=f"by {user.settings.name} entered {list_label(list_name)} at #{rank}",
                    emoji="rocket",
                )
                out.announce.append(self.event_with_key(entered_key(story.id, list_name), story, ctx, list_name,
                                                        float(rank), wording, source_list=list_name))
        front = story.lists.get(FRONT_PAGE)
        if front is not None:
            events = []
            for level in self.level_order.crossed(user.settings.rank_levels, front):
                top = "#1" if level == 1 else f"the top {level}"
                wording = Wording(
                    summary=f"Reached {top} on the front page",
                    headline=f"by {user.settings.name} reached {top} on the front page (#{front} now)",
                    emoji="trophy" if level == 1 else "chart_with_upwards_trend",
                )
                events.append(self.event_with_key(rank_key(story.id, level), story, ctx, level, float(front),
                                                  wording, source_list=FRONT_PAGE))
            # Only the best level reached is announced; the ones passed on the way are recorded.
            out.extend(best_announced(events))
        return out


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [RankRule]
