"""The ``domain`` rule: stories from a watched domain, when posted and when they enter a watched list.

Which domains, and what they want, comes from ``[[watch.domains]]`` (``posted``, ``lists``) through the
:class:`~flamewatch.people.Watchlist` the core binds to this rule, as ``[[watch.users]]`` reach the
``rank`` rule. A domain matches its subdomains too (``example.com`` takes ``blog.example.com``).

* posted: every new story on HN is seen once, from the stream of new items; key
  ``domain:<story>:posted`` (:func:`flamewatch.eventkeys.domain_key`);
* entered: a story on a watched list this cycle; key ``domain:<story>:<list>:entered``, once per list.

The level is the domain (levels are names: they do not order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flamewatch import Evaluation, Item, ItemContext, ItemMatch, LevelOrder, Rule, RuleContext, StorySnapshot
from flamewatch import Wording, hookimpl
from flamewatch.eventkeys import domain_key
from flamewatch.hn.item import domain_of, on_domain

from .people import WatchlistRule
from .rank import list_label

if TYPE_CHECKING:  # a type only: rules sit below config in the layers (pyproject's import-linter contract)
    from flamewatch.config.model import WatchDomain


class DomainRule(WatchlistRule):
    """Fires when a story from a watched domain is posted, and when one enters a watched list."""

    name = "domain"
    description = "a story from a watched domain is posted or enters a list"
    level_order = LevelOrder.NONE

    def domains(self) -> tuple[WatchDomain, ...]:
        """The ``[[watch.domains]]`` tables (none before the watchlist is bound)."""
        return self.watchlist.settings.domains if self.watchlist is not None else ()

    def is_active(self) -> bool:
        return bool(self.domains())

    def describe(self) -> str:
        return "stories from " + ", ".join(d.name for d in self.domains())

    def _matching(self, host: str | None, *, posted: bool) -> WatchDomain | None:
        for d in self.domains():
            if (d.posted if posted else d.lists) and on_domain(host, (d.name,)):
                return d
        return None

    def observe_item(self, item: Item, ctx: ItemContext) -> Sequence[ItemMatch]:
        if item.type not in (None, "story") or item.parent is not None or item.deleted or item.dead:
            return ()
        host = domain_of(item.url)
        watched = self._matching(host, posted=True)
        if watched is None:
            return ()
        by = item.by or "someone"
        wording = Wording(summary=f"New story from {host}", headline=f"was posted from {host} by {by}",
                          emoji="newspaper")
        # ItemMatch.key is the key after "domain:" (the core prefixes the rule's name).
        key = domain_key(item.id).removeprefix("domain:")
        return [ItemMatch(level=watched.name, wording=wording, value=float(item.id), key=key)]

    def evaluate(self, story: StorySnapshot, ctx: RuleContext) -> Evaluation:
        watched = self._matching(story.domain, posted=False)
        if watched is None:
            return Evaluation()
        out = Evaluation()
        for list_name, rank in story.lists.items():
            wording = Wording(summary=f"From {story.domain}: entered {list_label(list_name)} at #{rank}",
                              headline=f"({story.domain}) entered {list_label(list_name)} at #{rank}",
                              emoji="newspaper")
            out.announce.append(self.event_with_key(domain_key(story.id, list_name), story, ctx, watched.name,
                                                    float(rank), wording, source_list=list_name))
        return out


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [DomainRule]
