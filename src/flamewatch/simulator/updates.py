"""The change log behind ``/v0/updates.json``: which items changed, most recent change first.

HN's real ``updates.json`` is a bounded list of the most recent changes: when more items change between
two polls than it holds, the older changes are simply gone, and a client must cope (for instance by
following ``maxitem`` as well). `ChangeLog` serves either that honest bounded list (`limit`) or, by
default, a forgiving one that keeps every change listed for `window_steps` growth steps and so never
overflows.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ChangeLog", "updates_body"]

#: HN lists at most this many changed profiles.
PROFILES_LIMIT = 100


def updates_body(ids: list[int], items: dict[int, dict[str, Any]]) -> dict[str, list[Any]]:
    """The ``updates.json`` document: changed item ids and, as ``profiles``, the authors of those items."""
    profiles: dict[str, None] = {}  # a dict keeps first-seen order without repeats
    for item_id in ids:
        item = items.get(item_id)
        by = item.get("by") if isinstance(item, dict) else None
        if isinstance(by, str):
            profiles[by] = None
    return {"items": ids, "profiles": list(profiles)[:PROFILES_LIMIT]}


class ChangeLog:
    """Item ids in the order of their last change, with the growth step of that change.

    Args:
        window_steps: without a limit, a change stays listed for this many growth steps.
        limit: keep only this many most recently changed ids (HN's behaviour); the window then does not
            apply, since an id leaves the list only when newer changes push it out.
    """

    def __init__(self, window_steps: int = 3, limit: int | None = None) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"updates limit must be >= 1, got {limit}")
        self.window_steps = window_steps
        self.limit = limit
        self.step = 0
        #: id -> step of its last change, oldest change first (a re-changed id moves to the end)
        self.changes: dict[int, int] = {}
        self._in_step: set[int] = set()

    def record(self, item_id: int) -> None:
        """Note that `item_id` changed now; with a limit, the oldest change may fall off the list."""
        changes = self.changes
        changes.pop(item_id, None)
        changes[item_id] = self.step
        self._in_step.add(item_id)
        if self.limit is not None and len(changes) > self.limit:
            del changes[next(iter(changes))]  # dicts keep insertion order: the first key is the oldest

    def begin_step(self) -> int:
        """Start a growth step; return its number."""
        self.step += 1
        self._in_step = set()
        return self.step

    def end_step(self) -> list[int]:
        """Finish a growth step: age out changes past the window; return the ids changed in it (sorted)."""
        if self.limit is None:
            oldest = self.step - self.window_steps + 1
            for item_id in [i for i, s in self.changes.items() if s < oldest]:
                del self.changes[item_id]
        return sorted(self._in_step)

    def clear(self) -> None:
        """Forget every change (a freshly built world starts with an empty list)."""
        self.changes.clear()
        self._in_step = set()

    def listed(self) -> list[int]:
        """The ids ``updates.json`` lists now, most recent change first."""
        if self.limit is not None:
            return list(reversed(self.changes))
        oldest = self.step - self.window_steps + 1
        return [i for i, s in reversed(self.changes.items()) if s >= oldest]
