"""``flamewatch backtest``: replay the store's recorded count history against a config's rules and routes,
and count the alerts it would have sent, per rule, level and notifier instance.

Thresholds are guesses ("200 points", "100 comments") until one sees how many alerts a day they give.
The store keeps every story's counts at every cycle (``[store] history_days``); this module walks those
cycles in order, runs the configured story rules over each story as the live cycle does (the same rule
engine, history windows from the same samples, ``growth`` from the sample before), drops keys that fired
already (keys fired before the replayed window count as fired, as they did live), and routes each
announced event through every notifier instance's route.

What it cannot replay: the store keeps counts, not lists or items, so rules about ranks, watched users,
new items (replies, mentions, domains posted), declines and stale sources are listed as not replayed. A
story's title, link and author come from its fired events when it has any (a keyword rule sees nothing
else).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .dispatch.instance import NotifierInstance
from .events import Event, StorySnapshot
from .rules import Evaluation, Rule, RuleEngine
from .store import CountSample

__all__ = ["NOT_REPLAYED", "BacktestReport", "replay"]

#: Rules whose events come from what the store does not keep (lists, items, the decline state, sources).
NOT_REPLAYED = frozenset({"rank", "reply", "mention", "decline", "stale", "domain"})


@dataclass
class BacktestReport:
    """What a replay would have sent: ``counts[(rule, level, instance)]``, over ``days`` days."""

    start: float
    end: float
    days: float
    cycles: int = 0
    stories: int = 0
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    skipped_rules: tuple[str, ...] = ()

    def per_day(self, key: tuple[str, str, str]) -> float:
        """Alerts a day for (rule, level, instance)."""
        return self.counts[key] / self.days if self.days > 0 else float(self.counts[key])

    def to_json(self) -> dict[str, Any]:
        """The report as one JSON-ready object (``--json``)."""
        return {
            "from": datetime.fromtimestamp(self.start, UTC).isoformat(),
            "to": datetime.fromtimestamp(self.end, UTC).isoformat(),
            "days": round(self.days, 3), "cycles": self.cycles, "stories": self.stories,
            "not_replayed": list(self.skipped_rules),
            "alerts": [{"rule": r, "level": lv, "instance": i, "total": n,
                        "per_day": round(self.per_day((r, lv, i)), 2)}
                       for (r, lv, i), n in sorted(self.counts.items())],
        }

    def render(self) -> str:
        """The report as a table, one line per rule, level and instance."""
        head = (f"replayed {self.cycles} cycles of {self.stories} stories over {self.days:.2f} days "
                f"({datetime.fromtimestamp(self.start, UTC):%Y-%m-%d %H:%M} to "
                f"{datetime.fromtimestamp(self.end, UTC):%Y-%m-%d %H:%M} UTC)")
        lines = [head]
        if self.counts:
            lines.append(f"{'rule':<12} {'level':<14} {'instance':<20} {'total':>6} {'a day':>8}")
            for key, n in sorted(self.counts.items()):
                rule, level, instance = key
                lines.append(f"{rule:<12} {level:<14} {instance:<20} {n:>6} {self.per_day(key):>8.1f}")
        else:
            lines.append("no alert would have been sent")
        if self.skipped_rules:
            lines.append("not replayed (the store keeps counts, not lists or items): " + ", ".join(self.skipped_rules))
        return "\n".join(lines)


def replay(samples: Sequence[CountSample], rules: Sequence[Rule], instances: Sequence[NotifierInstance],
           fired: Sequence[Event], *, since: float, start: float, end: float) -> BacktestReport:
    """Run ``rules`` over the cycles in ``samples`` (oldest first) and route what they announce.

    ``fired``: events the store has fired about these stories (their titles and links are used; those
    stamped before ``since``, the window asked for, count as fired already). ``start`` and ``end`` are
    the first and last replayed cycles' times (what "a day" divides).
    """
    engine = RuleEngine([r for r in rules if r.name not in NOT_REPLAYED])
    skipped = tuple(sorted(r.name for r in rules if r.name in NOT_REPLAYED and r.is_active()))
    known = {e.story.id: e.story for e in fired}
    # ``since`` is a whole window before the first sample, not that sample's time: an event of the first
    # replayed cycle is stamped with it, and a float round trip through a datetime must not make it "before".
    fired_keys = {e.key for e in fired if e.at.timestamp() < since}
    report = BacktestReport(start=start, end=end, days=(end - start) / 86400.0, skipped_rules=skipped)
    by_cycle: dict[float, list[CountSample]] = defaultdict(list)
    for sample in samples:
        by_cycle[sample.at].append(sample)
    windows: dict[int, list[tuple[float, int]]] = defaultdict(list)
    previous: dict[int, CountSample] = {}
    span = engine.history_span or 0.0
    for at in sorted(by_cycle):
        report.cycles += 1
        for sample in by_cycle[at]:
            window = windows[sample.story_id]
            if not sample.partial:
                window.append((at, sample.comments))
            while window and window[0][0] < at - span:
                window.pop(0)
            prev = previous.get(sample.story_id)
            growth = sample.comments - prev.comments if prev is not None and not sample.partial else None
            if not sample.partial:
                previous[sample.story_id] = sample
            evaluation = engine.evaluate(_snapshot(sample, known.get(sample.story_id)),
                                         history=window if not sample.partial else (), growth=growth, now=at)
            _route(evaluation, fired_keys, instances, report)
    report.stories = len(previous)
    return report


def _route(evaluation: Evaluation, fired_keys: set[str], instances: Sequence[NotifierInstance],
           report: BacktestReport) -> None:
    """Count, per instance whose route takes it, each announced event not fired before; note every key."""
    for event in evaluation.passed:
        fired_keys.add(event.key)
    for event in evaluation.announce:
        if event.key in fired_keys:
            continue
        fired_keys.add(event.key)
        for instance in instances:
            if instance.route.accepts(event):
                report.counts[(event.rule, str(event.level), instance.name)] += 1


def _snapshot(sample: CountSample, known: StorySnapshot | None) -> StorySnapshot:
    return StorySnapshot(
        id=sample.story_id, title=known.title if known is not None else f"item {sample.story_id}",
        comments=sample.comments, score=sample.score, url=known.url if known is not None else None,
        by=known.by if known is not None else None, descendants=sample.descendants, partial=sample.partial,
    )
