"""Micro-benchmark: the cost of :meth:`flamewatch.hn.Item.parse` per item, on real HN items.

``python -m benchmarks.parse_bench [path.jsonl]`` parses every item of a real thread (2171 items from
``/work/shared/data/hn-thread-25015967.jsonl`` by default, or the simulator's made-up items when that file
is missing) many times over and prints the best of several rounds in nanoseconds per item, so a change to
the parser's shape can be weighed against the crawl's hot path (issue 18).
"""

from __future__ import annotations

import sys
import timeit
from pathlib import Path
from typing import Any

import orjson

from flamewatch.hn import Item

REAL = Path("/work/shared/data/hn-thread-25015967.jsonl")


def load(path: Path) -> list[dict[str, Any]]:
    """The decoded items of a JSON-lines file, as the client hands them to the parser."""
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def per_item_ns(items: list[dict[str, Any]], rounds: int = 7, loops: int = 20) -> float:
    """The best round's cost of parsing one item, in nanoseconds (``now`` given, as the client does)."""
    parse = Item.parse

    def run() -> None:
        for data in items:
            parse(data, data.get("id"), now=1.9e9)

    best = min(timeit.repeat(run, number=loops, repeat=rounds))
    return best / loops / len(items) * 1e9


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else REAL
    items = load(path)
    print(f"Item.parse: {per_item_ns(items):.0f} ns per item over {len(items)} items from {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
