"""The ``reply`` rule: a new comment answers a watched user's story or comment.

The watched users (``[[watch.users]]`` with ``replies = true``) and the bounded set of their item ids come
from the :class:`~flamewatch.people.Watchlist` the core binds to this rule (their ``submitted`` at start,
and their new items from the stream). A new comment whose ``parent`` is one of those ids is a reply. The
event's ``subject`` is the reply (author, plain-text excerpt, link) and its ``story`` the thread; its key
is ``reply:<comment id>``. A user's own answers to themselves are not replies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from flamewatch import LevelOrder, Item, ItemContext, ItemMatch, Rule, Wording, hookimpl

if TYPE_CHECKING:
    from flamewatch.people import Watchlist


class WatchlistRule(Rule):
    """A rule about watched users: the core binds the watchlist to it (``bind_watchlist``), at start and
    on every reload, before the rule engine is built."""

    def __init__(self, options: object = None) -> None:
        super().__init__(options)
        self.watchlist: Watchlist | None = None

    def bind_watchlist(self, watchlist: Watchlist) -> None:
        """Called by the core with the watched users (before the rule engine is built)."""
        self.watchlist = watchlist


class ReplyRule(WatchlistRule):
    """Fires for every new comment replying to a watched user."""

    name = "reply"
    level_order = LevelOrder.NONE  # the level is the user replied to
    description = "a new reply to a watched user's story or comment"

    def is_active(self) -> bool:
        return self.watchlist is not None and any(u.settings.replies for u in self.watchlist.users.values())

    def describe(self) -> str:
        names = sorted(n for n, u in self.watchlist.users.items() if u.settings.replies) if self.watchlist else []
        return f"replies to {', '.join(names)}"

    def observe_item(self, item: Item, ctx: ItemContext) -> Sequence[ItemMatch]:
        if self.watchlist is None or item.type != "comment" or item.parent is None or item.deleted or item.dead:
            return ()
        user = self.watchlist.owner_of(item.parent)
        if user is None or item.by == user.settings.name:
            return ()
        name = user.settings.name
        author = item.by or "someone"
        wording = Wording(
            summary=f"Reply to {name} from {author}",
            headline=f"has a new reply to {name} from {author}",
            emoji="speech_balloon",
        )
        return [ItemMatch(level=name, wording=wording, value=float(item.parent), key=str(item.id))]


@hookimpl
def flamewatch_rule_types() -> list[type[Rule]]:
    """This module's rule, offered like any plugin's."""
    return [ReplyRule]
