"""The ``velocity`` rule: comments per hour over a window, from the story's stored count history.

Configured as ``[[rules.velocity]]`` tables, each with a ``level`` (comments per hour) and a ``window``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flamewatch import (
    Duration,
    Evaluation,
    PositiveInt,
    Rule,
    RuleContext,
    StorySnapshot,
    Wording,
    comments_per_hour,
    hookimpl,
)


@dataclass(frozen=True)
class VelocityLevel:
    """Fire when a story gains at least ``level`` comments per hour over the last ``window`` seconds."""

    level: PositiveInt = field(metadata={"missing": "comments per hour that fires the rule"})
    window: Duration = 3600.0


class VelocityRule(Rule):
    """Fires for every ``[[rules.velocity]]`` entry whose rate the story reaches (each is its own level)."""

    name = "velocity"
    description = "comments per hour over a window reach a level"

    @dataclass(frozen=True)
    class Options:
        """``[[rules.velocity]]`` tables: one level and window each (none, the default: the rule is off)."""

        velocity: tuple[VelocityLevel, ...] = ()

    def is_active(self) -> bool:
        return bool(self.options.velocity)

    def history_windows(self) -> Sequence[float]:
        return [v.window for v in self.options.velocity]

    def describe(self) -> str:
        return "velocity " + ", ".join(f"{v.level}/h over {v.window:g}s" for v in self.options.velocity)

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        out = Evaluation()
        for v in self.options.velocity:
            rate = comments_per_hour(ctx.history, ctx.now, v.window)
            if rate is not None and rate >= v.level:
                out.announce.append(self.event(story, ctx, v.level, rate, wording(v.level, rate)))
        return out


def wording(level: int, rate: float) -> Wording:
    """``150 comments an hour (threshold 100)`` / ``is getting 150 comments an hour (threshold 100)``."""
    return Wording(f"{rate:,.0f} comments an hour", f"is getting {rate:.0f} comments an hour (threshold {level})",
                   detail=f"(threshold {level:,})", emoji="fire")


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [VelocityRule]
