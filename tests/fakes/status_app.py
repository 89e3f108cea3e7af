"""A real flamewatch App on the simulator with its HTTP face on a free loopback port, for the HTTP and
browser tests. Cycles are run by the test (``cycle()``), so each test decides when the page changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.events import CycleStats
from flamewatch.http.server import HttpServer, start_http, stop_http
from flamewatch.simulator import SimulatorServer, World


@dataclass
class RunningFace:
    app: App
    server: HttpServer
    world: World
    cycles: int = 0

    @property
    def url(self) -> str:
        return self.server.url

    async def cycle(self, grow: int = 0) -> CycleStats:
        """Grow the simulated threads by ``grow`` comments, run one cycle, tell the observers."""
        if grow:
            self.world.grow(grow)
        assert self.app.monitor is not None and self.app.dispatcher is not None
        stats = await self.app.monitor.cycle(self.cycles)
        self.cycles += 1
        self.app.plugins.notify("flamewatch_cycle_done", stats=stats)
        await self.app.dispatcher.wait_idle()
        return stats


@asynccontextmanager
async def running_face(store: Path, world: World, *, period: float = 60.0, top: int = 8,
                       token_file: Path | None = None) -> AsyncIterator[RunningFace]:
    """The face on the simulator; ``token_file``: a file holding the ``[http] token``."""
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": top, "period": period},
            "rules": {"comment_levels": [10, 25, 50, 100]},
            "store": {"path": str(store)},
            "http": {"listen": "127.0.0.1:0", **({"token": {"file": str(token_file)}} if token_file else {})},
            # No notifier prints: a webhook nobody listens on keeps rows pending, with retries shown.
            "notifiers": [{"type": "webhook", "name": "hook", "url": "http://127.0.0.1:9/hook"}],
            "delivery": {"retry_base": 600},
        }, "face.toml")
        async with App(config) as app:
            server = await start_http(app)
            assert server is not None
            try:
                yield RunningFace(app, server, world)
            finally:
                await stop_http(app, server)
