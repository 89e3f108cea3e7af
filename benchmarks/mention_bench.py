"""Benchmark 8: the cost of matching one new HN item against 100 mention rules (target: under 1 ms).

The items are comments and stories of realistic length (a few sentences of HN-style HTML, a title and a
link). Three figures, each the median over rounds of the mean time per item, with the spread over rounds:

* a **baseline** in the same run: the work every item rule pays anyway (HN's HTML to plain text plus a
  substring test), so the mention figure can be read against it on any machine;
* the **stream**: 100 mentions over a stream where about 2% of items mention something (about what a
  few dozen product and name alerts see on HN);
* an item that **hits one** mention (the prefilter passes, every mention is tried, one snippet is built);
* the **worst case** for context: every item mentions 90 of the 100 mentions, so 90 matches are built
  per item; shown per match as well, since each match becomes an event (a store write and a delivery).

A correctness row checks that the matches found are exactly the ones planted.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from flamewatch import Item, ItemContext
from flamewatch.hn.text import html_to_text
from flamewatch.rules.mentions import MentionRule, MentionSpec

from .mention_real import long_item, mention_specs, realistic_items, reference_matches
from .report import Row, check, spread

SECTION = "8 mentions"
RULES = 100

_TEXT = (
    "the a of to and in is it that for on with as this be are was not but you have or by can at from"
    " they we more one all about there their so what if when which would like just than people time"
    " system data code compiler memory latency database server browser kernel thread queue cache"
    " performance startup funding market product design language library framework license"
)
_WORDS = _TEXT.split()


@dataclass(frozen=True)
class MentionSizes:
    items: int
    rounds: int


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(8, 20))]
    return " ".join(words).capitalize() + "."


def _comment_html(rng: random.Random, extra: str = "") -> str:
    paragraphs = [" ".join(_sentence(rng) for _ in range(rng.randint(1, 3))) for _ in range(rng.randint(1, 3))]
    if extra:
        paragraphs[-1] += f" {extra}"
    return "<p>" + "<p>".join(p.replace(" code ", " <i>code</i> ") for p in paragraphs)


def _specs() -> tuple[list[MentionSpec], list[str]]:
    """100 mentions of 2-4 terms each (phrases, some regexes, some exclusions, some scoped), and for each
    mention one phrase that matches it."""
    specs: list[MentionSpec] = []
    hits: list[str] = []
    for i in range(RULES):
        terms = [f"product{i}", f"acme widget {i}"]
        if i % 4 == 0:
            terms.append(f"re:gizmo-?{i}(x|y)?")
        if i % 5 == 0:
            terms.append(f"-unrelated{i}")
        scopes: tuple[str, ...] = ("title", "text") if i % 3 else ("title", "url", "domain", "text")
        specs.append(MentionSpec(name=f"m{i}", terms=tuple(terms), scopes=scopes,  # type: ignore[arg-type]
                                 authors=("someone",) if i % 10 == 9 else ()))
        hits.append(f"product{i}")
    return specs, hits


def _items(rng: random.Random, count: int, hits: Sequence[str], *, hit_rate: float,
           all_hits: bool = False) -> tuple[list[Item], int]:
    items: list[Item] = []
    planted = 0
    hittable = [h for i, h in enumerate(hits) if i % 10 != 9]  # every tenth mention wants an author these lack
    for n in range(count):
        extra = ""
        if all_hits:
            extra = " ".join(hittable)
        elif rng.random() < hit_rate:
            extra = rng.choice(hittable)
            planted += 1
        if n % 10 == 0:  # one item in ten is a story with a title and a link
            items.append(Item(1_000_000 + n, type="story", by=f"user{n % 97}", title=f"{_sentence(rng)[:80]} {extra}",
                              url=f"https://example{n % 13}.com/post/{n}", text=None))
        else:
            items.append(Item(1_000_000 + n, type="comment", by=f"user{n % 97}", text=_comment_html(rng, extra),
                              parent=999))
    if all_hits:
        planted = count * len(hittable)
    return items, planted


def _per_item_us(work: Callable[[Item], object], items: Sequence[Item], rounds: int) -> list[float]:
    """Mean microseconds per item, once per round."""
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            work(item)
        out.append((time.perf_counter() - started) * 1e6 / len(items))
    return out


async def mention_matching(sizes: MentionSizes) -> list[Row]:
    rng = random.Random(8)
    specs, hits = _specs()
    rule = MentionRule(MentionRule.Options(mentions=tuple(specs)))
    ctx = ItemContext(now=0.0)
    stream, planted = _items(rng, sizes.items, hits, hit_rate=0.02)
    worst, worst_planted = _items(rng, max(20, sizes.items // 20), hits, hit_rate=0.0, all_hits=True)

    def baseline(item: Item) -> object:
        return "product" in html_to_text(item.text or item.title or "")

    def observe(item: Item) -> object:
        return rule.observe_item(item, ctx)

    one_hit = [item for item in stream if rule.observe_item(item, ctx)]
    found = sum(len(rule.observe_item(item, ctx)) for item in stream)
    found_worst = sum(len(rule.observe_item(item, ctx)) for item in worst)
    base = _per_item_us(baseline, stream, sizes.rounds)
    mixed = _per_item_us(observe, stream, sizes.rounds)
    single = _per_item_us(observe, one_hit, sizes.rounds * 5)
    heavy = _per_item_us(observe, worst, sizes.rounds)
    base_med, mixed_med, single_med, heavy_med = (statistics.median(x) for x in (base, mixed, single, heavy))
    note = f"{sizes.items} items x {sizes.rounds} rounds; spread {{}}"
    return [
        Row(SECTION, "baseline: HTML to text + substring", base_med, "us/item", note=note.format(spread(base))),
        check(SECTION, f"{RULES} mentions, 2% of items hit", mixed_med, "us/item", at_most=1000.0,
              note=note.format(spread(mixed))),
        Row(SECTION, "stream vs baseline", mixed_med / base_med if base_med else 0.0, "x"),
        check(SECTION, f"{RULES} mentions, an item hitting one", single_med, "us/item", at_most=1000.0,
              note=f"{len(one_hit)} items x {sizes.rounds * 5} rounds; spread {spread(single)}"),
        Row(SECTION, f"{RULES} mentions, every item hits 90", heavy_med, "us/item",
            note=f"{heavy_med / 90:.1f} us a match; {len(worst)} items x {sizes.rounds} rounds; "
                 f"spread {spread(heavy)}"),
        check(SECTION, "match mismatches vs planted", abs(found - planted) + abs(found_worst - worst_planted), "",
              at_most=0, note=f"{found} matches in the stream, {found_worst} in the worst case"),
        *_realistic(sizes),
    ]


def _realistic(sizes: MentionSizes) -> list[Row]:
    """100 mentions of real terms (python, rust, go, ai...) over prose full of words that hold them."""
    rng = random.Random(23)
    specs = mention_specs()
    rule = MentionRule(MentionRule.Options(mentions=tuple(specs)))
    ctx = ItemContext(now=0.0)
    stream = realistic_items(rng, sizes.items)
    dense = realistic_items(rng, max(20, sizes.items // 10), dense=True)
    longest = long_item(rng)
    wrong = sum({m.level for m in rule.observe_item(item, ctx)} != reference_matches(specs, item)
                for item in [*stream, *dense, longest])
    hits = sum(bool(rule.observe_item(item, ctx)) for item in stream)

    def observe(item: Item) -> object:
        return rule.observe_item(item, ctx)

    def text_only(item: Item) -> object:
        return html_to_text(item.text or item.title or "")

    base = _per_item_us(text_only, stream, sizes.rounds)
    mixed = _per_item_us(observe, stream, sizes.rounds)
    packed = _per_item_us(observe, dense, sizes.rounds)
    one = _per_item_us(observe, [longest], sizes.rounds * 10)
    note = f"{len(stream)} items x {sizes.rounds} rounds, {hits / len(stream):.0%} hit; spread {{}}"
    return [
        Row(SECTION, "real terms: HTML to text alone", statistics.median(base), "us/item",
            note=note.format(spread(base))),
        check(SECTION, f"real terms: {RULES} mentions, HN-like stream", statistics.median(mixed), "us/item",
              at_most=100.0, note=note.format(spread(mixed))),
        Row(SECTION, "real terms: every sentence names one", statistics.median(packed), "us/item",
            note=f"{len(dense)} items; spread {spread(packed)}"),
        check(SECTION, f"real terms: a {len(longest.text or ''):,}-character comment", max(one) / 1000, "ms",
              at_most=5.0, note=f"the worst of {len(one)} rounds; median {statistics.median(one) / 1000:.2f} ms"),
        check(SECTION, "real terms: mismatches vs a plain re reading", wrong, "", at_most=0,
              note=f"{len(stream) + len(dense) + 1} items"),
    ]
