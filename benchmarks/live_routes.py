"""The simulator process's control routes for the live-mode benchmark (``/bench/live/...``).

* ``setup?stories=N&comments=C`` -- N fresh stories with C comments each on top of ``topstories``, and a
  story by ``you`` above them; answers their ids;
* ``publish?kind=mention|reply|level&story=ID`` -- one new item, published (the streams poked) at once;
  answers its id and ``at``, the moment it was published on the system's monotonic clock (the benchmark
  process reads the same clock, so arrival minus ``at`` is the end-to-end latency);
* ``burst?n=N&stories=S&steps=K&drops=D&pause=P&streams=C`` -- N comments spread over the first S stories
  in K steps P seconds apart, every stream dropped D times in between (each drop once the client's C
  streams are all connected again); answers the ids;
* ``fetches?first=A&last=B`` -- how many times each id in A..B was fetched: the ids never fetched and
  those fetched more than once.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from flamewatch.simulator import SimulatorServer

MENTION = "Is any rustacean around?"


async def _connected(server: SimulatorServer, streams: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while server.streams.stats.open < streams and time.monotonic() < deadline:  # noqa: ASYNC110 - no event to wait on
        await asyncio.sleep(0.005)


def add_live_routes(server: SimulatorServer) -> None:
    """Add the ``/bench/live/...`` routes to a simulator that has not started yet."""
    world = server.world
    state: dict[str, Any] = {"stories": [], "mine": None}

    def answer(value: Any) -> web.Response:
        return web.json_response(value)

    async def setup(request: web.Request) -> web.Response:
        n, comments = int(request.query.get("stories", "50")), int(request.query.get("comments", "4"))
        stories = [world.add_story(f"Live bench story {i}", score=10) for i in range(n)]
        for story in stories:
            world.add_replies(story, comments)
        mine = world.add_story("Show HN: the bench user's project", by="you", score=5, rank=0)
        state["stories"], state["mine"] = stories, mine
        return answer({"stories": stories, "mine": mine})

    async def publish(request: web.Request) -> web.Response:
        kind = request.query.get("kind", "mention")
        story = int(request.query.get("story", str(state["stories"][0])))
        if kind == "mention":
            item = world.add_comment(story, text=MENTION)
        elif kind == "reply":
            item = world.add_comment(state["mine"], text="Nice work")
        else:
            item = world.add_comment(story)
        at = time.monotonic()
        server.streams.poke()
        return answer({"id": item, "at": at})

    async def burst(request: web.Request) -> web.Response:
        n, spread = int(request.query.get("n", "2000")), int(request.query.get("stories", "50"))
        steps, drops = int(request.query.get("steps", "40")), int(request.query.get("drops", "3"))
        pause = float(request.query.get("pause", "0.02"))
        targets = state["stories"][:spread]
        drop_at = {steps * (k + 1) // (drops + 1) for k in range(drops)}
        ids: list[int] = []
        dropped = 0
        streams = int(request.query.get("streams", "1"))  # the client's (maxitem and each list)
        for step in range(steps):
            for k in range(n * step // steps, n * (step + 1) // steps):
                ids.append(world.add_comment(targets[k % len(targets)]))
            server.streams.poke()
            if step in drop_at:
                await _connected(server, streams)  # a drop while a stream is still reconnecting misses it
                dropped += server.streams.drop_all()
            await asyncio.sleep(pause)
        return answer({"ids": ids, "dropped": dropped})

    async def fetches(request: web.Request) -> web.Response:
        first, last = int(request.query["first"]), int(request.query["last"])
        counts = server.stats.item_fetches
        return answer({
            "missing": [i for i in range(first, last + 1) if counts.get(i, 0) == 0],
            "repeated": [i for i in range(first, last + 1) if counts.get(i, 0) > 1],
        })

    for name, handler in [("setup", setup), ("publish", publish), ("burst", burst), ("fetches", fetches)]:
        server.app.router.add_get(f"/bench/live/{name}", handler)
