"""The fired keys a dispatcher has seen recorded, so levels crossed long ago cost no store write.

Rules report every level a story has crossed, every cycle; the store ignores a key it holds already, but
asking it (an insert and the event's JSON per level per story) made a quiet cycle's cost grow with the
levels crossed. Fired keys are never deleted from a store, so a key seen recorded once needs no second
write for as long as this process remembers it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

__all__ = ["FIRED_KEYS_KEPT", "FiredKeys"]

#: How many keys are remembered (about 100 bytes each); past it the oldest half is forgotten: a key
#: forgotten and reported again costs one ignored insert, never a second alert.
FIRED_KEYS_KEPT = 200_000


class FiredKeys:
    """A bounded set of keys known to be in the store's ``fired`` table, oldest first."""

    def __init__(self, limit: int = FIRED_KEYS_KEPT) -> None:
        self.limit = limit
        self._keys: dict[str, None] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, keys: Iterable[str]) -> None:
        """Note keys now recorded in the store."""
        self._keys.update(dict.fromkeys(keys))
        if len(self._keys) > self.limit:
            for key in list(itertools.islice(self._keys, len(self._keys) - self.limit // 2)):
                del self._keys[key]
