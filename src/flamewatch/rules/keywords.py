"""The ``keyword`` rule: a story's title contains one of ``keywords`` as a whole word (any case)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flamewatch import LevelOrder, Evaluation, Rule, RuleContext, StorySnapshot, Wording, hookimpl


class KeywordRule(Rule):
    """Fires once per story and keyword found in its title; the level is the keyword."""

    name = "keyword"
    level_order = LevelOrder.NONE  # the level is a word: keywords never supersede each other
    description = "the title contains a keyword"

    @dataclass(frozen=True)
    class Options:
        """``[rules] keywords``: words to look for in titles (none, the default: the rule is off)."""

        keywords: tuple[str, ...] = ()

        def __post_init__(self) -> None:
            if any(not kw.strip() for kw in self.keywords):
                raise ValueError("keywords: keywords must not be empty strings")

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        # Whole words only: "rust" must not match "trust"; "c++" must still match "C++".
        self._patterns = [
            (kw, re.compile(rf"(?<!\w){re.escape(kw)}(?!\w)", re.IGNORECASE)) for kw in self.options.keywords
        ]

    def is_active(self) -> bool:
        return bool(self._patterns)

    def describe(self) -> str:
        return f"keywords {list(self.options.keywords)}"

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        out = Evaluation()
        for keyword, pattern in self._patterns:
            if pattern.search(story.title):
                out.announce.append(self.event(story, ctx, keyword, story.comments, wording(keyword)))
        return out


def wording(keyword: str) -> Wording:
    """``Matches keyword “rust”`` / ``matches keyword 'rust'``."""
    return Wording("Matches keyword", f"matches keyword {keyword!r}", detail=f"“{keyword}”", emoji="mag")


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [KeywordRule]
