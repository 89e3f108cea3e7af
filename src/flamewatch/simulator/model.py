"""The thread-shape model: how comment trees grow, calibrated on real Hacker News data.

The calibration table is packaged as ``flamewatch/data/hn_shape.json`` (see ``data/README.md``): front-page
comment counts and points come from a real 300-story front page, and the tree model below was fitted to a
real 2,170-comment thread (top-level share, depth profile, branching, deleted/dead fractions) by
``scripts/derive_hn_shape.py``. This module is pure: no I/O besides reading the packaged table.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

__all__ = ["DEAD", "DELETED", "DELETED_DEAD", "VISIBLE", "ThreadModel", "grow_tree", "load_shape"]

# A comment's status as the model draws it; plain ints because the generator is a hot loop.
VISIBLE, DELETED, DEAD, DELETED_DEAD = 0, 1, 2, 3


@functools.cache
def load_shape() -> dict[str, Any]:
    """Return the packaged calibration table (``flamewatch/data/hn_shape.json``)."""
    text = (resources.files("flamewatch") / "data" / "hn_shape.json").read_text(encoding="utf-8")
    return cast("dict[str, Any]", json.loads(text))


@dataclass(frozen=True)
class ThreadModel:
    """Parameters of the comment-tree growth model (fitted in ``scripts/derive_hn_shape.py``).

    A new comment is top-level with probability ``top_exponent * n ** (top_exponent - 1)`` (so a thread of
    n comments has about ``n ** top_exponent`` top-level ones); otherwise it replies to an existing comment
    picked preferentially (by how many replies it already has) with probability ``preferential`` and
    uniformly otherwise, then kept with probability ``accept_by_depth[depth - 1]`` (deeper comments draw
    fewer replies) times a status factor (dead and deleted comments draw fewer replies).
    """

    top_exponent: float = 0.71
    preferential: float = 0.5
    accept_by_depth: tuple[float, ...] = (1.0, 0.8, 0.4, 0.15, 0.135, 0.12)
    deleted_fraction: float = 0.045
    dead_fraction: float = 0.058
    deleted_and_dead_fraction: float = 0.0097
    dead_reply_factor: float = 0.55
    deleted_reply_factor: float = 0.15

    @classmethod
    def from_shape(cls, shape: dict[str, Any]) -> ThreadModel:
        """Build the model from the ``model`` section of the calibration table."""
        m = shape["model"]
        return cls(
            top_exponent=m["top_exponent"],
            preferential=m["preferential"],
            accept_by_depth=tuple(m["accept_by_depth"]),
            deleted_fraction=m["deleted_fraction"],
            dead_fraction=m["dead_fraction"],
            deleted_and_dead_fraction=m["deleted_and_dead_fraction"],
            dead_reply_factor=m["dead_reply_factor"],
            deleted_reply_factor=m["deleted_reply_factor"],
        )

    def p_top(self, n: int) -> float:
        """Probability that the next comment of an n-comment thread is top-level."""
        if n <= 0:
            return 1.0
        return min(1.0, self.top_exponent * math.pow(n, self.top_exponent - 1.0))

    def accept(self, depth: int, status: int) -> float:
        """Probability of keeping a comment at `depth` (1 = top-level) with `status` as a reply target."""
        table = self.accept_by_depth
        p = table[depth - 1] if depth <= len(table) else table[-1]
        if status == VISIBLE:
            return p
        if status == DEAD:
            return p * self.dead_reply_factor
        return p * self.deleted_reply_factor

    def draw_status(self, rng: random.Random) -> int:
        """Draw a new comment's status with the calibrated deleted/dead fractions."""
        u = rng.random()
        both = self.deleted_and_dead_fraction
        if u < both:
            return DELETED_DEAD
        if u < self.deleted_fraction:
            return DELETED
        if u < self.deleted_fraction + self.dead_fraction - both:
            return DEAD
        return VISIBLE


def grow_tree(n: int, rng: random.Random, model: ThreadModel) -> tuple[list[int], list[int], list[int]]:
    """Generate the shape of an n-comment thread.

    Returns ``(parent, depth, status)`` lists indexed by comment in creation order; ``parent[i]`` is the
    index of the parent comment or -1 for a top-level comment. Creation order is also time order, so a
    parent always precedes its replies. O(n) expected.
    """
    parent: list[int] = []
    depth: list[int] = []
    status: list[int] = []
    pool: list[int] = []  # each comment once, plus once per reply it has: preferential attachment
    for i in range(n):
        st = model.draw_status(rng)
        if i == 0 or rng.random() < model.p_top(i):
            p, d = -1, 1
        else:
            p = _pick(rng, model, i, pool, depth, status)
            d = depth[p] + 1
            pool.append(p)
        parent.append(p)
        depth.append(d)
        status.append(st)
        pool.append(i)
    return parent, depth, status


def _pick(rng: random.Random, model: ThreadModel, n: int, pool: list[int], depth: list[int], status: list[int]) -> int:
    """Pick a reply target among the first n comments (indices into depth/status)."""
    j = 0
    for _ in range(64):  # the acceptance is >= ~2%, so this practically always ends early
        j = pool[rng.randrange(len(pool))] if rng.random() < model.preferential else rng.randrange(n)
        if rng.random() < model.accept(depth[j], status[j]):
            return j
    return j
