"""The ``points`` rule: a story's score reaches one of ``points_levels``."""

from __future__ import annotations

from dataclasses import dataclass

from flamewatch import Evaluation, Levels, Rule, RuleContext, StorySnapshot, Wording, hookimpl


class PointsRule(Rule):
    """Fires when a story's score reaches a level; the highest one is announced. Off unless levels are set."""

    name = "points"
    description = "score reaches a level"

    @dataclass(frozen=True)
    class Options:
        """``[rules] points_levels``: the scores that fire (empty, the default: the rule is off)."""

        points_levels: Levels = ()

    def is_active(self) -> bool:
        return bool(self.options.points_levels)

    def describe(self) -> str:
        return f"points at {list(self.options.points_levels)}"

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        return self.announce_highest(story, ctx, self.options.points_levels, story.score,
                                     lambda level: wording(level, story.score))


def wording(level: int, score: int) -> Wording:
    """``Reached 300 points`` / ``reached 300 points (321 now)``."""
    return Wording(f"Reached {level:,} points", f"reached {level} points ({score} now)", emoji="arrow_up")


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [PointsRule]
