"""A faithful local Hacker News API over a growing synthetic world, with fault injection.

Serves the official Firebase shapes under ``/v0``: ``item/<id>.json`` (``null`` for a missing item),
``user/<id>.json``, the six story lists, ``maxitem.json`` and ``updates.json``. Bodies come from the
`World`'s per-item JSON cache, so the simulator stays far cheaper than any crawler that uses it.

    async with SimulatorServer(World(seed=7)) as sim:
        ...  # point a client at sim.base_url, e.g. "http://127.0.0.1:54321/v0"

`Faults` can be changed while the server runs (tests switch faults off mid-run). The world lives in
`flamewatch.simulator.world`; this module only adds HTTP, faults and statistics (the ``simulate`` command is in
`flamewatch.simulator.cli`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from .lists import LIST_NAMES
from .sse import StreamFaults, StreamHub, wants_stream
from .searchapi import add_search_api
from .world import World

__all__ = ["Faults", "SimStats", "SimulatorServer", "make_app"]

_JSON = "application/json"
_HEADERS = {"Cache-Control": "no-cache"}
#: How long a closing server waits for in-flight handlers before cancelling them.
SHUTDOWN_TIMEOUT = 0.5


@dataclass
class Faults:
    """Fault injection, all off by default; fields may be changed while the server runs.

    Each request draws against the rates in this order: `fail_ids` (items that always answer 500),
    hang, 401, 500, then (for a 200 answer) a malformed body. `latency` is how long after a request
    arrives its answer leaves: the server's own work happens inside it, as a real server's does inside a
    real network's round trip, so a busy simulator does not make every request slower than asked.
    """

    error_rate: float = 0.0
    latency: float = 0.0
    malformed_rate: float = 0.0
    hang_rate: float = 0.0
    unauthorized_rate: float = 0.0
    fail_ids: set[int] = field(default_factory=set)
    #: Faults of the event stream (`flamewatch.simulator.sse`); its events wait out `latency` too.
    stream: StreamFaults = field(default_factory=StreamFaults)
    seed: int = 0
    rng: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("error_rate", "malformed_rate", "hang_rate", "unauthorized_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} must be between 0 and 1, got {value}")
        if self.latency < 0:
            raise ValueError(f"Faults.latency must be >= 0 seconds, got {self.latency}")
        self.rng = random.Random(self.seed)

    def hit(self, rate: float) -> bool:
        """Draw one fault with probability `rate` (no draw at all when the rate is 0)."""
        return rate > 0.0 and (rate >= 1.0 or self.rng.random() < rate)


@dataclass
class SimStats:
    """What the server saw. `max_inflight` is the high-water mark of concurrently handled requests."""

    requests: int = 0
    item_requests: int = 0
    list_requests: int = 0
    other_requests: int = 0
    search_requests: int = 0  # to the search API's shape (/api/v1/...)
    inflight: int = 0
    max_inflight: int = 0
    #: Requests answered under ``Faults.latency``, and the seconds they were held in all (arrival to answer).
    delayed: int = 0
    delayed_seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)
    #: id -> times requested (left out of the repr: it can hold tens of thousands of ids)
    item_fetches: Counter[int] = field(default_factory=Counter, repr=False)
    _waiters: list[asyncio.Future[None]] = field(default_factory=list, repr=False, compare=False)

    async def wait_until(self, condition: Callable[[SimStats], bool]) -> None:
        """Wait until `condition(stats)` holds; it is checked again whenever a request starts or ends."""
        while not condition(self):
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def reset(self) -> None:
        """Zero the counters; requests still in flight stay counted in `inflight`."""
        self.requests = self.item_requests = self.list_requests = self.other_requests = self.search_requests = 0
        self.max_inflight = self.inflight
        self.delayed, self.delayed_seconds = 0, 0.0
        self.statuses.clear()
        self.item_fetches.clear()


WORLD_KEY = web.AppKey("flamewatch_sim_world", World)
FAULTS_KEY = web.AppKey("flamewatch_sim_faults", Faults)
STATS_KEY = web.AppKey("flamewatch_sim_stats", SimStats)
CLOSING_KEY = web.AppKey("flamewatch_sim_closing", asyncio.Event)
WAIT_KEY: web.AppKey[Callable[[float], Awaitable[None]]] = web.AppKey("flamewatch_sim_wait")
HUB_KEY = web.AppKey("flamewatch_sim_streams", StreamHub)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _track(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Count requests, the in-flight high-water mark and answer statuses.

    Event-stream requests are left out (the stream hub counts them): one stays open for as long as its
    client listens, which would make every in-flight figure and request count read differently."""
    if wants_stream(request):
        return await handler(request)
    stats = request.app[STATS_KEY]
    stats.requests += 1
    stats.search_requests += request.path.startswith("/api/v1/")
    stats.inflight += 1
    stats.max_inflight = max(stats.max_inflight, stats.inflight)
    stats._changed()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        stats.inflight -= 1
        stats.statuses[status] += 1
        stats._changed()


def _json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type=_JSON, charset="utf-8", headers=_HEADERS)


def _malform(body: bytes, rng: random.Random) -> bytes:
    """A body that no JSON parser accepts: a cut-off document, or an HTML error page."""
    if rng.random() < 0.5:
        return b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    return body[: len(body) // 2] + b"{"  # an unclosed object at the end is never valid JSON


def _route(world: World, tail: str, stats: SimStats) -> tuple[bytes | None, int | None]:
    """Resolve ``/v0/<tail>`` to a body (None: not an API path) and the item id it concerns."""
    if not tail.endswith(".json"):
        stats.other_requests += 1
        return None, None
    name = tail[:-5]
    if name.startswith("item/"):
        stats.item_requests += 1
        raw = name[5:]
        if raw.isascii() and raw.isdigit():
            item_id = int(raw)
            stats.item_fetches[item_id] += 1
            return world.item_bytes(item_id), item_id
        return b"null", None  # Firebase answers null for any path that holds nothing
    if name in LIST_NAMES:
        stats.list_requests += 1
        return world.list_bytes(name), None
    stats.other_requests += 1
    if name == "maxitem":
        return str(world.maxitem).encode(), None
    if name == "updates":
        return _encode_json(world.updates()), None
    if name.startswith("user/"):
        return _encode_json(world.user(name[5:])), None
    return b"null", None


def _stream_name(tail: str) -> str | None:
    """The streamed value a path names (``maxitem`` or a list), else None: other paths answer as usual."""
    name = tail.removesuffix(".json")
    return name if tail.endswith(".json") and (name == "maxitem" or name in LIST_NAMES) else None


def _encode_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8")


def make_app(
    world: World, faults: Faults | None = None, *, wait: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> web.Application:
    """Build the aiohttp application serving `world` with `faults` (read on every request).

    `wait(seconds)` waits out `Faults.latency`; the loop's own timers (the default) fire up to a
    millisecond late, which the benchmarks' simulator avoids with a finer one.
    """
    app = web.Application(middlewares=[_track])
    app[WAIT_KEY] = wait
    app[WORLD_KEY] = world
    app[FAULTS_KEY] = faults if faults is not None else Faults()
    app[STATS_KEY] = SimStats()
    app[CLOSING_KEY] = asyncio.Event()
    app[HUB_KEY] = StreamHub(world, lambda: app[FAULTS_KEY].stream, lambda: app[FAULTS_KEY].latency, wait)

    async def on_shutdown(app: web.Application) -> None:
        app[CLOSING_KEY].set()  # wake hanging handlers so shutdown never waits for them
        await app[HUB_KEY].close()

    app.on_shutdown.append(on_shutdown)

    async def handle(request: web.Request) -> web.StreamResponse:
        faults = app[FAULTS_KEY]
        if wants_stream(request) and (name := _stream_name(request.match_info["tail"])) is not None:
            return await app[HUB_KEY].handle(request, name)
        if faults.latency > 0:
            # Measured on the process clock, not the loop's: uvloop's loop clock moves in whole
            # milliseconds, and the deadline must be the request's own arrival plus the latency.
            latency = faults.latency  # the control API may change it while this request waits
            answer_at = time.perf_counter() + latency
            try:
                return await _answer(app, request, faults)
            finally:  # an error answer (a 404, say) is as late as any other
                if (wait := answer_at - time.perf_counter()) > 0 and not app[CLOSING_KEY].is_set():
                    await app[WAIT_KEY](wait)
                stats = app[STATS_KEY]
                stats.delayed += 1
                stats.delayed_seconds += time.perf_counter() - answer_at + latency
        return await _answer(app, request, faults)

    app.router.add_get("/v0/{tail:.+}", handle)
    add_search_api(app, lambda a: a[WORLD_KEY])  # HN's search API: a story's comments in one answer
    return app


async def _answer(app: web.Application, request: web.Request, faults: Faults) -> web.StreamResponse:
    """The answer to one API request, with the faults the control API set for it."""
    body, item_id = _route(app[WORLD_KEY], request.match_info["tail"], app[STATS_KEY])
    if body is None:
        raise web.HTTPNotFound(text="not an API path (try /v0/topstories.json)\n")
    if item_id is not None and item_id in faults.fail_ids:
        return _json_response(b'{"error":"Internal error (injected)"}', 500)
    if faults.hit(faults.hang_rate):
        await app[CLOSING_KEY].wait()
        return _json_response(b'{"error":"Server shutting down"}', 503)
    if faults.hit(faults.unauthorized_rate):
        return _json_response(b'{"error":"Permission denied"}', 401)
    if faults.hit(faults.error_rate):
        return _json_response(b'{"error":"Internal error (injected)"}', 500)
    if faults.hit(faults.malformed_rate):
        body = _malform(body, faults.rng)
    return _json_response(body)


class SimulatorServer:
    """Run the simulator on a real loopback port; an async context manager.

    ``port=0`` picks a free port; `base_url` is known after `start`.
    """

    def __init__(
        self,
        world: World | None = None,
        faults: Faults | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.world = world if world is not None else World()
        self.faults = faults if faults is not None else Faults()
        self.host = host
        self.port = port
        self.app = make_app(self.world, self.faults, wait=wait)
        self._runner: web.AppRunner | None = None

    @property
    def stats(self) -> SimStats:
        """Live request statistics (the same object across `reset_stats`)."""
        return self.app[STATS_KEY]

    @property
    def streams(self) -> StreamHub:
        """The event streams: their faults are ``faults.stream``; `StreamHub.poke` and `StreamHub.drop_all`."""
        return self.app[HUB_KEY]

    @property
    def base_url(self) -> str:
        """The API root, e.g. ``http://127.0.0.1:54321/v0``."""
        if self._runner is None:
            raise RuntimeError("SimulatorServer: base_url is known only after start()")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v0"

    def reset_stats(self) -> None:
        """Zero the request statistics."""
        self.stats.reset()

    async def start(self) -> None:
        """Bind and start serving."""
        if self._runner is not None:
            raise RuntimeError("SimulatorServer: already started")
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = runner.addresses[0][1]

    async def close(self) -> None:
        """Stop serving; hanging requests are answered 503 and then their connections are closed."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
