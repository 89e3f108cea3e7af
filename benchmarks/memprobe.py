"""Run one counting job in a fresh interpreter and report its peak RSS (used by memory_bench).

    python -m benchmarks.memprobe idle
    python -m benchmarks.memprobe count <base_url> <story_id>
    python -m benchmarks.memprobe incremental <base_url> <story_id>
    python -m benchmarks.memprobe once <base_url> <top>

``once`` is the path ``flamewatch once`` runs (App, IncrementalCounter, store and events, default settings)
over the first ``top`` stories of the list.

Prints one JSON line: ``maxrss_kb`` (``ru_maxrss``, kilobytes on Linux), ``hwm_kb`` (``VmHWM``, see
:func:`vm_hwm_kb`), ``elapsed`` seconds of the
count, and the count's figures. Every mode imports the same modules, so ``idle`` is the floor.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.crawl import count_story
from flamewatch.incremental import IncrementalCounter
from flamewatch.hn import HNClient, make_session


async def _count(mode: str, base_url: str, story_id: int) -> dict[str, Any]:
    async with make_session(limit=100) as session:
        client = HNClient(session, base_url, max_inflight=32)
        started = time.perf_counter()
        if mode == "incremental":
            counter = IncrementalCounter(client)
            await counter.begin_cycle([story_id])
            result = await counter.count(story_id)
        else:
            result = await count_story(client, story_id)
        elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "comments": result.comments, "fetches": result.fetches,
            "depth": result.max_depth_seen, "partial": result.partial}


async def _once(base_url: str, top: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        config = parse_config({"hn": {"api_url": base_url}, "watch": {"top": top},
                               "store": {"path": str(Path(home) / "fw.db")}}, "memprobe")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            started = time.perf_counter()
            stats = await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            elapsed = time.perf_counter() - started
            results = app.monitor.last_results
    return {"elapsed": elapsed, "comments": sum(r.comments for r in results), "fetches": stats.requests,
            "depth": max((r.max_depth_seen for r in results), default=0),
            "partial": any(r.partial for r in results)}


def vm_hwm_kb() -> int | None:
    """This process's own peak RSS (``VmHWM``), or None where /proc is not available.

    Linux carries ``ru_maxrss`` over ``fork`` + ``exec``: a child started by a big parent reports at least
    the parent's RSS at fork time. ``VmHWM`` belongs to the new address space only, so it is the honest
    figure; ``ru_maxrss`` is kept alongside it for comparison.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else ""
    if mode == "idle":
        out: dict[str, Any] = {}
    elif mode in ("count", "incremental") and len(argv) == 3:
        out = asyncio.run(_count(mode, argv[1], int(argv[2])))
    elif mode == "once" and len(argv) == 3:
        out = asyncio.run(_once(argv[1], int(argv[2])))
    else:
        print("usage: python -m benchmarks.memprobe idle | count|incremental <base_url> <story_id>"
              " | once <base_url> <top>", file=sys.stderr)
        return 2
    out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out["hwm_kb"] = vm_hwm_kb()
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
