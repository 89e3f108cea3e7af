"""Benchmark 5: peak RSS while counting one huge story, and the time for a very deep reply chain.

Each count runs in a fresh interpreter (``benchmarks.memprobe``) so the peak RSS is that count's own;
an idle interpreter with the same imports gives the floor. The simulator is another process. The peak
is ``VmHWM`` on Linux (``ru_maxrss`` carries the parent's RSS over fork + exec), ``ru_maxrss`` elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any

from .report import Row, check
from .simserver import SimProcess


@dataclass(frozen=True)
class MemorySizes:
    comments: int
    chain_depth: int
    flat_top: int = 15_000
    over_idle_mb: float = 25.0  # peak RSS may exceed an idle interpreter with the same imports by this


async def probe(*args: str) -> dict[str, Any]:
    """Run ``python -m benchmarks.memprobe *args`` and decode its JSON line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.memprobe", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"memprobe {args[0]} failed: {err.decode(errors='replace').strip()[-500:]}")
    return json.loads(out)


async def memory(sizes: MemorySizes) -> list[Row]:
    section = "5 memory/depth"
    idle = await probe("idle")
    async with SimProcess(stories=1, comments=sizes.comments) as sim:
        truth = await sim.control("truth")
        story, true_count = next(iter(truth.items()))
        full = await probe("count", sim.base_url, story)
        inc = await probe("incremental", sim.base_url, story)
        chain_story = (await sim.control("chain", depth=sizes.chain_depth))["story"]
        chain = await probe("count", sim.base_url, str(chain_story))
        top = min(sizes.flat_top, sizes.comments // 3)
        flat_story = (await sim.control("flat", top=top, total=sizes.comments))["story"]
        flat = await probe("count", sim.base_url, str(flat_story))

    def mb(result: dict[str, Any]) -> float:
        # VmHWM where Linux has it: ru_maxrss would include the RSS this big parent had when it forked.
        return (result["hwm_kb"] or result["maxrss_kb"]) / 1024

    limit = mb(idle) + sizes.over_idle_mb
    return [
        Row(section, "idle interpreter, same imports", mb(idle), "MB",
            note=f"VmHWM floor; ru_maxrss says {idle['maxrss_kb'] / 1024:.0f} MB (inherited from this parent)"),
        check(section, f"peak RSS, count_story, {true_count:,}-comment story", mb(full), "MB", at_most=limit,
              note=f"{full['fetches']:,} fetches in {full['elapsed']:.1f}s; +{mb(full) - mb(idle):.1f} MB over idle"),
        check(section, "peak RSS, IncrementalCounter (keeps the tree)", mb(inc), "MB", at_most=limit,
              note=f"+{mb(inc) - mb(idle):.1f} MB over idle"),
        check(section, f"peak RSS, flat tree ({top:,} top-level of {sizes.comments:,})", mb(flat), "MB",
              at_most=limit, note=f"+{mb(flat) - mb(idle):.1f} MB over idle; {flat['comments']:,} counted"),
        check(section, "flat tree fully counted", abs(flat["comments"] - sizes.comments), "off", at_most=0),
        check(section, "count == truth (big story, both ways)",
              abs(full["comments"] - true_count) + abs(inc["comments"] - true_count), "off", at_most=0),
        Row(section, f"{sizes.chain_depth:,}-deep chain: time", chain["elapsed"], "s",
            note=f"depth reached {chain['depth']:,}, {chain['comments']:,} comments, partial={chain['partial']}"),
        check(section, "deep chain fully counted", abs(chain["comments"] - sizes.chain_depth), "off", at_most=0),
        *await _once_rows(sizes, mb(idle), limit),
    ]


async def _once_rows(sizes: MemorySizes, idle_mb: float, limit: float) -> list[Row]:
    """``flamewatch once``'s path with default settings: a story of only top-level replies, and a chain."""
    section = "5 memory/depth"
    # updates.json bounded as HN's is (a few hundred ids), not listing the 50,000 new ones.
    async with SimProcess(stories=0, comments=None, updates_limit=500) as sim:
        await sim.control("flat", top=sizes.comments, total=sizes.comments)
        flat = await probe("once", sim.base_url, "1")
    async with SimProcess(stories=0, comments=None, updates_limit=500) as sim:
        await sim.control("chain", depth=sizes.chain_depth)
        chain = await probe("once", sim.base_url, "1")
    rows = []
    for name, got, want in [(f"once, {sizes.comments:,} top-level replies", flat, sizes.comments),
                            (f"once, a {sizes.chain_depth:,}-deep chain", chain, sizes.chain_depth)]:
        peak = (got["hwm_kb"] or got["maxrss_kb"]) / 1024
        rows.append(check(section, f"peak RSS, {name}", peak, "MB", at_most=limit,
                          note=f"+{peak - idle_mb:.1f} MB over idle; {got['fetches']:,} requests in "
                               f"{got['elapsed']:.1f}s; depth {got['depth']:,}"))
        rows.append(check(section, f"{name}: fully counted (defaults)", abs(got["comments"] - want), "off",
                          at_most=0, note=f"{got['comments']:,} counted, partial={got['partial']}"))
    return rows
