"""The ``flamewar`` rule: a story whose comments outrun its points, and fast.

HN's ranking penalises a thread with more comments than points (story rankers model it: such a story
drops from #1 to #26). That is the moment a poster may want to step in, so this rule warns *before* the
drop: when the story has at least ``flamewar_ratio`` comments per point, at least
``flamewar_min_comments`` comments, and is gaining at least ``flamewar_velocity`` comments an hour over
the last ``flamewar_window``. A merely busy story (many comments, but points keeping up) does not fire,
nor does a slow argument that is already over. Key ``<story>:flamewar:<ratio>``: once per story.

The ratio is on the totals, as HN's penalty is; the velocity is from the story's count history (the
rule asks for its window like the ``velocity`` rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flamewatch import (
    Duration,
    Evaluation,
    LevelOrder,
    PositiveFloat,
    PositiveInt,
    Rule,
    RuleContext,
    StorySnapshot,
    Wording,
    comments_per_hour,
    hookimpl,
)


class FlamewarRule(Rule):
    """Fires once for a story whose comments outrun its points while the thread is still racing."""

    name = "flamewar"
    description = "a story's comments outrun its points, fast: a flamewar warning"
    level_order = LevelOrder.NONE  # one warning per story; the level is the configured ratio

    @dataclass(frozen=True)
    class Options:
        """``[rules]`` keys; ``flamewar_ratio`` unset (the default) leaves the rule off."""

        flamewar_ratio: PositiveFloat | None = None  # comments per point (1.0: more comments than points)
        flamewar_velocity: PositiveFloat = 30.0  # comments an hour over the window
        flamewar_window: Duration = 1800.0
        flamewar_min_comments: PositiveInt = 40

    def is_active(self) -> bool:
        return self.options.flamewar_ratio is not None

    def history_windows(self) -> Sequence[float]:
        return [self.options.flamewar_window]

    def describe(self) -> str:
        o = self.options
        return (f"flamewar: {o.flamewar_ratio:g}+ comments a point, {o.flamewar_min_comments}+ comments, "
                f"{o.flamewar_velocity:g}+/h over {o.flamewar_window:g}s")

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        o = self.options
        assert o.flamewar_ratio is not None
        if story.comments < o.flamewar_min_comments:
            return Evaluation()
        ratio = story.comments / max(story.score, 1)
        rate = comments_per_hour(ctx.history, ctx.now, o.flamewar_window)
        if ratio < o.flamewar_ratio or rate is None or rate < o.flamewar_velocity:
            return Evaluation()
        level = f"{o.flamewar_ratio:g}"
        return Evaluation(announce=[self.event(story, ctx, level, ratio, wording(story, ratio, rate))])


def wording(story: StorySnapshot, ratio: float, rate: float) -> Wording:
    """``Flamewar warning: 2.1 comments a point`` / ``looks like a flamewar: 210 comments on 100 points...``."""
    return Wording(
        summary=f"Flamewar warning: {ratio:.1f} comments a point",
        headline=(f"looks like a flamewar: {story.comments:,} comments on {story.score:,} points, "
                  f"{rate:,.0f} comments an hour (HN ranks such threads down)"),
        detail=f"({rate:,.0f} comments an hour)",
        emoji="fire_extinguisher",
    )


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [FlamewarRule]
