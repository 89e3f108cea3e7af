"""Smoke test of the benchmark suite: its tiny mode runs end to end and its correctness checks hold.

Timing figures are not asserted (they depend on the machine); exactness and bounds are.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_tiny_suite_prints_the_table_and_its_correctness_checks_hold(tmp_path: Path) -> None:
    out_json = tmp_path / "figures.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--tiny", "--json", str(out_json)],
        check=False, cwd=ROOT, capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "flamewatch benchmarks (tiny)" in proc.stdout
    assert "targets met in" in proc.stdout
    assert "Traceback" not in proc.stderr

    report = json.loads(out_json.read_text())
    rows = {(r["section"], r["name"]): r for r in report["rows"]}
    assert {r["section"] for r in report["rows"]} == {
        "1 full crawl", "2 latency", "3 incremental", "4 slow notifier", "5 memory/depth", "6 ticks", "7 store",
        "8 mentions", "9 budgets", "10 users' path", "11 live",
    }
    # Live mode: every burst item seen once and every count exact through the stream drops.
    assert rows[("11 live", "burst items seen != once (mismatches)")]["value"] == 0
    assert rows[("11 live", "burst count == truth (mismatches)")]["value"] == 0
    assert rows[("11 live", "burst stream drops survived")]["value"] >= 3
    # Mention matching finds exactly the planted mentions, and the baseline was measured in the same run.
    assert rows[("8 mentions", "match mismatches vs planted")]["value"] == 0
    assert rows[("8 mentions", "baseline: HTML to text + substring")]["value"] > 0
    # The store's hot paths are measured on SQLite always (and on PostgreSQL when a server answers).
    assert rows[("7 store", "sqlite: record 5 events")]["value"] > 0
    # Incremental counts equal a full crawl's (and the simulator's truth) every cycle.
    assert rows[("3 incremental", "count mismatches vs truth")]["value"] == 0
    assert rows[("3 incremental", "quiet cycle requests")]["value"] <= 5 + 5 + 3
    # The concurrency bound holds, as the server saw it (under latency) and as the client counted it.
    assert rows[("2 latency", "server max in flight")]["value"] <= 32
    assert rows[("2 latency", "server max in flight")]["value"] >= 2  # the server really saw concurrency
    assert rows[("1 full crawl", "client max in flight")]["value"] <= 32
    # Exact counts everywhere they are checked.
    for key in [("1 full crawl", "count == simulator truth"), ("5 memory/depth", "deep chain fully counted"),
                ("5 memory/depth", "count == truth (big story, both ways)")]:
        assert rows[key]["value"] == 0, key
    # Defaults count a deep chain and a flat story exactly on the users' path (`once`).
    for key in [("5 memory/depth", "once, 1,000 top-level replies: fully counted (defaults)"),
                ("5 memory/depth", "once, a 300-deep chain: fully counted (defaults)"),
                ("8 mentions", "real terms: mismatches vs a plain re reading")]:
        assert rows[key]["value"] == 0, key
    assert rows[("10 users' path", "quiet cycle CPU, fresh store")]["value"] > 0
    # First counts from the search API's comment lists are exact, in a world with HN's dead comments.
    assert rows[("10 users' path", "first counts, both ways: mismatches vs truth")]["value"] == 0
    assert rows[("10 users' path", "first counts' world: comments dead with live replies")]["value"] >= 0.5
    assert report["machine"]["cpus"] >= 1


def test_unknown_benchmark_is_a_one_line_error() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "99"],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2
    assert "unknown benchmark(s) 99" in proc.stderr
    assert "Traceback" not in proc.stderr
