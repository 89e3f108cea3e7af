"""Synthetic text for the simulated Hacker News: story titles, usernames and comment bodies.

Comment bodies use HN's HTML flavour (``<p>`` separators, entities such as ``&#x27;``, the odd link or
``<i>``) so that clients meet the same escaping they meet on the real site.
"""

from __future__ import annotations

import random

__all__ = ["ask_text", "comment_text", "story_title", "username"]

_SUBJECTS = (
    "SQLite",
    "Rust",
    "Postgres",
    "the Linux kernel",
    "WebAssembly",
    "a 1970s minicomputer",
    "Kubernetes",
    "Python's asyncio",
    "a tiny Forth",
    "the B-52",
    "open-source maintainers",
    "remote work",
    "Emacs",
    "the M1 chip",
    "a $5 microcontroller",
    "C++ & Rust interop",
    "Redis",
    "TCP congestion control",
    "GPU drivers",
    "the printing press",
    "type systems",
    "home-cooked software",
    "the US patent system",
)
_ANGLES = (
    "How we rewrote {s} in a weekend",
    "Why {s} is slower than you think",
    "{s}: a retrospective",
    "The hidden cost of {s}",
    "I built a search engine on {s}",
    "What I learned running {s} for 10 years",
    "{s} is not what you need",
    "A visual guide to {s}",
    "Lessons from debugging {s} in production",
    "{s} turns 25",
    "Reverse-engineering {s}",
    "The surprising history of {s}",
)
_ASK = ("Ask HN: How do you learn {s}?", "Ask HN: Is {s} worth it in 2024?", "Ask HN: Who uses {s}?")
_SHOW = ("Show HN: A toy {s} in 500 lines", "Show HN: I made a tool for {s}", "Show HN: {s} in the browser")
_TEMPLATES = {"ask": _ASK, "show": _SHOW}
_SENTENCES = (
    "I&#x27;ve been doing this for years and it still surprises me.",
    "This matches my experience, mostly.",
    "Citation needed &mdash; the benchmark in the article is flawed.",
    "We tried exactly this at my last job. It did not go well.",
    "The real problem is incentives, not technology.",
    "Has anyone measured this on real hardware?",
    "<i>Everything</i> is a trade-off; the post ignores the other side.",
    'Previous discussion: <a href="https:&#x2F;&#x2F;example.com&#x2F;item">link</a>',
    "Strongly disagree.",
    "This is the best thing I&#x27;ve read all week.",
    "The comments here are missing the point of the article.",
    "Fun fact: the original implementation fit in 4 KB.",
)
_NAME_A = ("quiet", "amber", "rapid", "lazy", "clever", "rusty", "misty", "brave", "odd", "pale", "grim", "wry")
_NAME_B = ("fox", "otter", "lambda", "kernel", "heron", "cache", "pixel", "mole", "finch", "monad", "yak")


def username(rng: random.Random) -> str:
    """A plausible HN username such as ``quietfox123``."""
    return f"{rng.choice(_NAME_A)}{rng.choice(_NAME_B)}{rng.randrange(1000)}"


def story_title(rng: random.Random, kind: str = "story") -> str:
    """A story title; `kind` ``"ask"`` or ``"show"`` gives an ``Ask HN:`` or ``Show HN:`` one."""
    return rng.choice(_TEMPLATES.get(kind, _ANGLES)).format(s=rng.choice(_SUBJECTS))


def ask_text(rng: random.Random) -> str:
    """The body of an Ask HN story."""
    return f"<p>{rng.choice(_SENTENCES)}"


def comment_text(rng: random.Random, item_id: int) -> str:
    """A comment body; it names `item_id` so that a reader can tell comments apart."""
    return f"<p>{rng.choice(_SENTENCES)}<p>(comment {item_id})"
