"""Hostile HN API answers, from a real server on loopback: gzip bombs, malformed and cross-origin redirects.

The simulator serves the API; a middleware put in front of it answers chosen paths with the hostile
response instead, so the client sees exactly what a compromised or broken API (or a proxy) would send.
"""

from __future__ import annotations

import logging
import time
import tracemalloc
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.hn import MAX_BODY_BYTES, FetchError, HNClient
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Hostile:
    """Answers for chosen paths of a :class:`SimulatorServer`, put in front of its own handler."""

    def __init__(self, sim: SimulatorServer) -> None:
        self.answers: dict[str, Answer] = {}
        self.hits: Counter[str] = Counter()
        sim.app.middlewares.append(self._middleware)  # before the server starts (the list freezes then)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Answer) -> web.StreamResponse:
        self.hits[request.path] += 1
        answer = self.answers.get(request.path)
        return await (answer or handler)(request)


def gzip_bomb(size: int) -> bytes:
    """``size`` zero bytes, gzip-compressed (about a thousandth of ``size``), built without holding them."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: a gzip header and trailer
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(size // len(block))]
    return b"".join([*parts, packer.flush()])


def bomb_answer(bomb: bytes, *, chunked: bool) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        if not chunked:
            return web.Response(body=bomb, headers=headers)
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        try:
            for start in range(0, len(bomb), 16384):
                await response.write(bomb[start:start + 16384])
        except (ConnectionError, aiohttp.ClientConnectionResetError):
            pass  # the client hung up, as it should
        return response

    return answer


def redirect_answer(location: str, status: int = 302) -> Answer:
    async def answer(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return answer


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
async def test_a_gzip_bomb_fails_fast_with_bounded_memory(chunked: bool) -> None:
    expanded = 50_000_000
    bomb = gzip_bomb(expanded)
    assert len(bomb) < MAX_BODY_BYTES // 10  # small on the wire: only the decoded size gives it away
    sim = SimulatorServer(World(seed=1, stories=5, total_comments=50))
    hostile = Hostile(sim)
    hostile.answers["/v0/topstories.json"] = bomb_answer(bomb, chunked=chunked)
    async with sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=2, backoff=0.01)
        tracemalloc.start()
        started = time.monotonic()
        try:
            with pytest.raises(FetchError, match=r"topstories\.json: .*over the 2000000-byte limit"):
                await client.story_ids("topstories")
            took = time.monotonic() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    # Refused after about the limit: a few MB at most were ever decoded, never the 50 MB.
    assert peak < 4 * MAX_BODY_BYTES, f"peak {peak / 1e6:.1f} MB"
    assert hostile.hits["/v0/topstories.json"] == 1  # refused, not retried
    print(f"\nGZIP-BOMB {len(bomb)} bytes -> {expanded} expanded: FetchError in {took:.3f}s, "
          f"peak traced memory {peak / 1e6:.1f} MB")


async def test_a_small_gzip_answer_is_read() -> None:
    sim = SimulatorServer(World(seed=1, stories=5, total_comments=50))
    hostile = Hostile(sim)

    async def gzipped(request: web.Request) -> web.StreamResponse:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)
        body = packer.compress(b"[1, 2, 3]") + packer.flush()
        return web.Response(body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})

    hostile.answers["/v0/topstories.json"] = gzipped
    async with sim, aiohttp.ClientSession() as session:
        assert await HNClient(session, sim.base_url).story_ids() == [1, 2, 3]


async def test_redirects_are_followed_within_the_origin_only() -> None:
    sim = SimulatorServer(World(seed=1, stories=5, total_comments=50))
    hostile = Hostile(sim)
    elsewhere = SimulatorServer(World(seed=2, stories=5, total_comments=50))
    other = Hostile(elsewhere)
    async with sim, elsewhere, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=2, backoff=0.01)
        hostile.answers["/v0/topstories.json"] = redirect_answer("/v0/newstories.json", 307)
        assert await client.story_ids("topstories") == sim.world.lists["newstories"]

        hostile.answers["/v0/topstories.json"] = redirect_answer(f"{elsewhere.base_url}/topstories.json")
        with pytest.raises(FetchError, match=r"redirect to another origin \(http://127\.0\.0\.1:\d+\) refused"):
            await client.story_ids("topstories")
        assert other.hits == {}  # never asked

        hostile.answers["/v0/topstories.json"] = redirect_answer("/v0/topstories.json")
        with pytest.raises(FetchError, match="more than 3 redirects"):
            await client.story_ids("topstories")


@pytest.mark.parametrize("location", ["http://[::1/v0/x.json", "http://127.0.0.1:99999/v0/x.json",
                                      "/v0/top\x01stories.json", "", "http://ex\u00e4mple.com/"])
async def test_a_malformed_redirect_is_a_fetch_error(location: str) -> None:
    sim = SimulatorServer(World(seed=1, stories=5, total_comments=50))
    hostile = Hostile(sim)

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.Response(status=302)
        response.headers["Location"] = location
        return response

    hostile.answers["/v0/topstories.json"] = answer
    async with sim, aiohttp.ClientSession() as session:
        client = HNClient(session, sim.base_url, retries=1, backoff=0.01)
        with pytest.raises(FetchError, match=r"^topstories\.json: "):
            await client.story_ids("topstories")


async def test_a_cycle_survives_hostile_answers_with_its_fallbacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sim = SimulatorServer(World(seed=3, stories=6, total_comments=200))
    hostile = Hostile(sim)
    await sim.start()
    try:
        await _two_cycles(sim, hostile, tmp_path, caplog)
    finally:
        await sim.close()


async def _two_cycles(sim: SimulatorServer, hostile: Hostile, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config({
        "hn": {"api_url": sim.base_url, "retries": 1, "timeout": 5.0},
        "watch": {"top": 5},
        "rules": {"comment_levels": [1, 5]},
        "store": {"path": str(tmp_path / "fw.db")},
        "notifiers": [{"type": "recording"}],
    }, "hostile.toml")
    async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
        assert app.monitor is not None
        first = await app.monitor.cycle(0)
        hostile.answers["/v0/topstories.json"] = redirect_answer("/v0/top\x01stories.json")
        hostile.answers["/v0/updates.json"] = bomb_answer(gzip_bomb(20_000_000), chunked=True)
        hostile.answers["/v0/maxitem.json"] = redirect_answer("http://169.254.169.254/latest/meta-data/")
        with caplog.at_level(logging.WARNING):
            second = await app.monitor.cycle(1)
    assert first.stories == second.stories == 5  # the previous cycle's list was counted again
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(w.startswith("topstories unavailable (topstories.json: ") for w in warnings), warnings
    assert any(w.startswith("updates.json unavailable (") and "limit" in w for w in warnings), warnings
    assert any(w.startswith("maxitem.json unavailable (") and "another origin" in w for w in warnings), warnings


async def test_a_maxitem_jumping_absurdly_far_costs_one_page_a_poll_and_loses_no_real_item() -> None:
    from flamewatch import MemoryState
    from flamewatch.stream import BACKWARDS_POLLS, MAX_PENDING, ItemStream

    world = World(seed=3, stories=3, total_comments=50)
    sim = SimulatorServer(world)
    hostile = Hostile(sim)
    await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            client = HNClient(session, sim.base_url, timeout=2.0, retries=0)
            stream = ItemStream(client, MemoryState(), max_gap=100)
            seen: list[int] = []
            stream.subscribe(lambda item: seen.append(item.id))
            await stream.poll()
            first_new = world.maxitem + 1
            world.grow(n_comments=5)
            new = list(range(first_new, world.maxitem + 1))

            async def absurd(request: web.Request) -> web.StreamResponse:
                return web.json_response(world.maxitem + 10**9)

            hostile.answers["/v0/maxitem.json"] = absurd
            batches = [await stream.poll() for _ in range(3)]
            assert all(b.fetched <= 100 + MAX_PENDING and b.behind > 10**8 for b in batches)
            assert new and set(new) <= set(seen) and seen == sorted(seen)  # the real new items, in the first page
            # HN comes back to its senses: trusted again from its own maxitem, and followed from there.
            del hostile.answers["/v0/maxitem.json"]
            for _ in range(BACKWARDS_POLLS):
                await stream.poll()
            assert stream.cursor == world.maxitem
            first_later = world.maxitem + 1
            world.grow(n_comments=3)
            await stream.poll()
            assert seen[-1] == world.maxitem and set(range(first_later, world.maxitem + 1)) <= set(seen)
    finally:
        await sim.close()
