"""The simulator in its own process, with a small control API for the benchmarks.

The client being measured must not share an event loop (or, on a 2-core machine, a core) with the
server, so every benchmark talks to a simulator started here as a subprocess::

    async with SimProcess(stories=30, comments=20_000) as sim:
        sim.base_url                 # http://127.0.0.1:<port>/v0, the ordinary HN API
        await sim.control("reset")   # zero the server's statistics

Besides the HN API under ``/v0`` the process serves ``/bench/<command>`` (GET, JSON answers):

* ``reset`` -- zero the request statistics;
* ``stats`` -- requests, item requests, the server-observed max in flight; with ``?per_story=1``
  also the item requests per watched story and which stories ``updates.json`` currently names;
* ``ids`` -- every item id reachable from ``topstories`` (stories and comments);
* ``truth`` -- the true visible comment count of every story on ``topstories``;
* ``dead`` -- how the watched stories' dead comments look: how many, how many hide live replies (which
  HN's search API lists while it leaves their parent out), and how many of those are below the top level;
* ``grow?n=N`` -- one ``World.grow(N)`` step; answers how many items changed;
* ``latency?seconds=S`` -- set the simulated per-request latency;
* ``chain?depth=D`` -- add a story holding one reply chain ``D`` deep; answers its id;
* ``live/...`` -- the live-mode benchmark's routes (:mod:`benchmarks.live_routes`).

Run it directly with ``python -m benchmarks.simserver --stories 30 --comments 20000``; it prints one JSON
line with the base URL once it is listening, then serves until its stdin closes (so it can never outlive
the benchmark that started it).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections import Counter
from types import TracebackType
from collections.abc import Coroutine
from typing import Any, Self

import aiohttp
from aiohttp import web

from flamewatch.simulator import SimulatorServer, World

from .live_routes import add_live_routes
from .precisewait import PreciseWait


def _walk(world: World, story_id: int) -> list[int]:
    """Every item id in a story's served tree, story included (cycle-safe, iterative)."""
    seen = {story_id}
    order = [story_id]
    stack = [story_id]
    while stack:
        item = world.items.get(stack.pop())
        kids = item.get("kids") if isinstance(item, dict) else None
        if not isinstance(kids, list):
            continue
        for kid in kids:
            if isinstance(kid, int) and kid not in seen and kid in world.items:
                seen.add(kid)
                order.append(kid)
                stack.append(kid)
    return order


def _watched(world: World) -> list[int]:
    return list(world.lists["topstories"])


def add_control_routes(server: SimulatorServer) -> None:
    """Add the ``/bench/...`` routes to a simulator that has not started yet."""
    world = server.world
    owner: dict[int, int] = {}  # item id -> story id, rebuilt lazily after the world changes
    fresh = False

    def owners() -> dict[int, int]:
        nonlocal fresh
        if not fresh:
            owner.clear()
            for sid in _watched(world):
                for item_id in _walk(world, sid):
                    owner.setdefault(item_id, sid)
            fresh = True
        return owner

    def answer(value: Any) -> web.Response:
        return web.json_response(value)

    async def reset(_: web.Request) -> web.Response:
        server.reset_stats()
        return answer({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        s = server.stats
        out: dict[str, Any] = {
            "requests": s.requests,
            "item_requests": s.item_requests,
            "search_requests": s.search_requests,
            "max_inflight": s.max_inflight,
            "mean_latency": s.delayed_seconds / s.delayed if s.delayed else None,
            "statuses": {str(k): v for k, v in s.statuses.items()},
        }
        if request.query.get("per_story"):
            own = owners()
            per_story: Counter[int] = Counter()
            for item_id, n in s.item_fetches.items():
                sid = own.get(item_id)
                if sid is not None:
                    per_story[sid] += n
            updated = set(world.updates()["items"])
            out["per_story"] = {str(sid): per_story.get(sid, 0) for sid in _watched(world)}
            out["named_in_updates"] = sorted({own[i] for i in updated if i in own})
        return answer(out)

    async def ids(_: web.Request) -> web.Response:
        return answer(list(owners()))

    async def truth(_: web.Request) -> web.Response:
        return answer({str(sid): world.visible_count(sid) for sid in _watched(world)})

    async def dead(_: web.Request) -> web.Response:
        found: Counter[str] = Counter()
        for item_id, sid in owners().items():
            item = world.items.get(item_id)
            if item_id == sid or not isinstance(item, dict):
                continue
            found["comments"] += 1
            if not item.get("dead"):
                continue
            found["dead"] += 1
            kids = [world.items.get(k) for k in item.get("kids") or ()]
            if any(isinstance(k, dict) and not k.get("dead") and not k.get("deleted") for k in kids):
                found["hiding_live_replies"] += 1
                found["hiding_below_top"] += item.get("parent") != sid
        return answer(dict(found))

    async def grow(request: web.Request) -> web.Response:
        nonlocal fresh
        changed = world.grow(int(request.query.get("n", "50")))
        fresh = False
        return answer({"changed": len(changed), "items": len(owners())})

    async def latency(request: web.Request) -> web.Response:
        server.faults.latency = float(request.query.get("seconds", "0"))
        return answer({"latency": server.faults.latency})

    async def chain(request: web.Request) -> web.Response:
        nonlocal fresh
        sid = world.add_story("A very deep reply chain", top=True)
        world.add_chain(sid, int(request.query.get("depth", "10000")))
        fresh = False
        return answer({"story": sid})

    async def flat(request: web.Request) -> web.Response:
        """A story with ``top`` direct replies and ``total`` comments in all (the rest one level down)."""
        nonlocal fresh
        top, total = int(request.query.get("top", "15000")), int(request.query.get("total", "50000"))
        sid = world.add_story("A very wide thread", top=True)
        firsts = world.add_replies(sid, top)
        for n in range(total - top):
            world.add_comment(firsts[n * 7919 % len(firsts)])
        fresh = False
        return answer({"story": sid})

    for name, handler in [("flat", flat), ("reset", reset), ("stats", stats), ("ids", ids), ("truth", truth),
                          ("dead", dead), ("grow", grow), ("latency", latency), ("chain", chain)]:
        server.app.router.add_get(f"/bench/{name}", handler)


async def serve(stories: int, comments: int | None, seed: int, updates_limit: int | None) -> None:
    """Serve until stdin reaches EOF (the parent closed it or died)."""
    world = World(seed=seed, stories=stories, total_comments=comments, start_time=1_700_000_000,
                  updates_limit=updates_limit)
    wait = PreciseWait()
    wait.start()
    server = SimulatorServer(world, wait=wait)
    add_control_routes(server)
    add_live_routes(server)
    try:
        async with server:
            print(json.dumps({"base_url": server.base_url, "pid": os.getpid()}), flush=True)
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, sys.stdin.buffer.read)
    finally:
        wait.stop()


class SimProcess:
    """A simulator subprocess (an async context manager) and a client for its control API."""

    def __init__(self, *, stories: int, comments: int | None, seed: int = 7, updates_limit: int | None = None) -> None:
        self.args = ["--stories", str(stories), "--seed", str(seed)]
        if updates_limit is not None:
            self.args += ["--updates-limit", str(updates_limit)]
        if comments is not None:
            self.args += ["--comments", str(comments)]
        self.proc: asyncio.subprocess.Process | None = None
        self.base_url = ""
        self._control_url = ""
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.simserver", *self.args,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )
        try:
            assert self.proc.stdout is not None
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout=120)
            if not line:
                raise RuntimeError("the simulator process exited before it was ready (see its error above)")
            self.base_url = json.loads(line)["base_url"]
            self._control_url = self.base_url.removesuffix("/v0") + "/bench"
            self._session = aiohttp.ClientSession()
        except BaseException:
            await self._stop()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def control(self, command: str, **params: Any) -> Any:
        """Call ``/bench/<command>`` with ``params`` as the query; the decoded JSON answer."""
        assert self._session is not None
        query = {k: str(v) for k, v in params.items()}
        async with self._session.get(f"{self._control_url}/{command}", params=query) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def _stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the server's signal to stop
        try:
            await asyncio.wait_for(proc.wait(), timeout=10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if proc.stdout is not None:
            await proc.stdout.read()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop when it is installed (it is, with the ``test`` extra), else on asyncio.

    The server is not what is measured: the lighter it is, the more of each round trip is the client's
    own doing (on asyncio it added about 2.5 ms to every 20 ms answer, on uvloop about 1.5 ms).
    """
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def main() -> None:
    parser = argparse.ArgumentParser(description="the HN simulator with a benchmark control API")
    parser.add_argument("--stories", type=int, default=30)
    parser.add_argument("--comments", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--updates-limit", type=int, default=None,
                        help="keep only this many latest changes in updates.json, as HN does")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):  # run by hand, Ctrl-C stops it quietly
        _run(serve(args.stories, args.comments, args.seed, args.updates_limit))


if __name__ == "__main__":
    main()
