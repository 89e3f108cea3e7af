"""The ``comments`` rule: a story's comment count reaches one of ``comment_levels``."""

from __future__ import annotations

from dataclasses import dataclass

from flamewatch import Evaluation, Levels, Rule, RuleContext, StorySnapshot, Wording, hookimpl


class CommentsRule(Rule):
    """Fires when a story's comment count (as HN shows it) reaches a level; the highest one is announced."""

    name = "comments"
    description = "comment count reaches a level"

    @dataclass(frozen=True)
    class Options:
        """``[rules] comment_levels``: the comment counts that fire (empty: the rule is off)."""

        comment_levels: Levels = (50, 100, 250, 500, 1000)

    def is_active(self) -> bool:
        return bool(self.options.comment_levels)

    def describe(self) -> str:
        return f"comments at {list(self.options.comment_levels)}"

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        return self.announce_highest(story, ctx, self.options.comment_levels, story.comments,
                                     lambda level: wording(level, story.comments))


def wording(level: int, comments: int) -> Wording:
    """``Reached 500 comments`` / ``reached 500 comments (512 now)``."""
    return Wording(f"Reached {level:,} comments", f"reached {level} comments ({comments} now)", emoji="speech_balloon")


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [CommentsRule]
