"""Garbage-collector settings for a long-running flamewatch process.

A crawl allocates a few container objects per item (a task, its future, the parsed item), and CPython's
default thresholds start a collection every 700 of them. Each collection of the older generations also
walks every long-lived object: the imported modules, the cached trees. So the collector's share of a
crawl grew with the watched set (1.2-1.35x the CPU per item of a bare fetch loop at 500 stories,
against 1.0-1.05x with the collector off). Two settings keep it flat:

* :func:`gc.freeze` after start-up moves everything alive then (modules, settings, plugins) out of the
  collector's sight for good: it is never garbage, and scanning it was the growing part;
* a young-generation threshold of 10,000 makes collections rarer; reference counting still frees almost
  everything at once, the collector is only for cycles, and flamewatch creates few.

Only the command-line entry point calls this: a test session or an embedding application keeps its own
settings (freezing a test session would make every earlier test's garbage immortal).
"""

from __future__ import annotations

import gc

#: Young-generation threshold (CPython's default is 700).
YOUNG_THRESHOLD = 10_000


def tune_for_daemon() -> None:
    """Freeze what start-up created and make young collections rarer (see the module docstring)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
