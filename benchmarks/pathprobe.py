"""One contender of benchmark 10 in a process of its own, for instruction counts under callgrind.

    python -m benchmarks.pathprobe once <base_url> <top> [--idle]
    python -m benchmarks.pathprobe bare <base_url> <ids_file> [--idle] [--json]
    python -m benchmarks.pathprobe quiet <base_url> <top> <cycles>
    python -m benchmarks.pathprobe paths <base_url> <paths_file> <passes>

``once`` opens an App with default settings and a fresh store, runs one cycle and waits for its
deliveries; ``bare`` runs the bare 32-worker loop over the ids in ``ids_file`` (JSON), decoding with
orjson as the App does (with ``--json``: the standard library's ``json.loads``, for reference). With ``--idle``
the same process does everything but the work (imports, App or session opened and closed), so the
difference between the two counts is the work's own. ``quiet`` opens an App, runs its first cycle, waits
for its deliveries, then runs ``cycles`` quiet cycles (nothing changed; none a housekeeping cycle);
``paths`` warms a session with one pass of the bare loop over the API paths in ``paths_file`` (JSON), then
makes ``passes`` more. Their runs with 0 cycles or passes are their idle runs. Prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from flamewatch.app import App
from flamewatch.gctune import tune_for_daemon

from .baselines import bare_workers
from .path_bench import app_config, bare_requests


async def _once(base_url: str, top: int, idle: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        async with App(app_config(base_url, top, Path(home))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            if idle:
                return {"requests": 0}
            stats = await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
    return {"requests": stats.requests}


async def _bare(base_url: str, ids: list[int], idle: bool, stdlib: bool) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        if idle:
            return {"requests": 0}
        loads = json.loads if stdlib else orjson.loads
        return {"requests": await bare_workers(session, base_url, ids, 32, loads)}


async def _quiet(base_url: str, top: int, cycles: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as home:
        async with App(app_config(base_url, top, Path(home))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(1)  # the first count and its events, in the idle run too
            await app.dispatcher.wait_idle()
            number = 1
            for _ in range(cycles):
                number += 2 if (number + 1) % 60 == 0 else 1  # not a housekeeping cycle
                await app.monitor.cycle(number)
            story_ids = [r.story_id for r in app.monitor.last_results]
    return {"story_ids": story_ids}


async def _paths(base_url: str, paths: list[str], passes: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        await bare_requests(session, base_url, paths)  # warm, as the App's session is
        for _ in range(passes):
            await bare_requests(session, base_url, paths)
    return {"passes": passes}


def main(argv: list[str]) -> int:
    tune_for_daemon()  # as `flamewatch once` does once start-up is over (the bare loop gets it too)
    idle, stdlib = "--idle" in argv, "--json" in argv
    args = [a for a in argv if a not in ("--idle", "--json")]
    if len(args) == 3 and args[0] == "once":
        out = asyncio.run(_once(args[1], int(args[2]), idle))
    elif len(args) == 3 and args[0] == "bare":
        out = asyncio.run(_bare(args[1], json.loads(Path(args[2]).read_text()), idle, stdlib))
    elif len(args) == 4 and args[0] == "quiet":
        out = asyncio.run(_quiet(args[1], int(args[2]), int(args[3])))
    elif len(args) == 4 and args[0] == "paths":
        out = asyncio.run(_paths(args[1], json.loads(Path(args[2]).read_text()), int(args[3])))
    else:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
