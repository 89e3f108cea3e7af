"""``flamewatch demo``: everything at once, offline, in under a minute.

Starts the simulator on loopback, points a fast watcher at it with low comment levels, lets the
simulated threads grow between cycles, prints alerts on the console and ends with a summary.

It also watches a user called "you" (``[[watch.users]]``): your Show HN story climbs the front page a few
places a cycle ("entered the front page at #14", "reached the top 10", "reached #1") and replies to your
comments arrive as ``reply`` events, quoted.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from .app import App
from .config import ConfigError, parse_config
from .http.listen import parse_listen
from .http.server import HttpServer, start_http, stop_http
from .simulator import Faults, SimulatorServer, World, place_on_list, reply_to_user
from .watch import Watcher

log = logging.getLogger("flamewatch.demo")


#: The demo's comment levels: far lower than a real config's (50, 100, 250...), so alerts come in seconds.
DEMO_LEVELS = [10, 25, 50, 100, 250, 500]

NEXT_STEPS = """\
next steps:
  flamewatch init               write a commented starter config (./flamewatch.toml)
  flamewatch check              see what it watches and where alerts go
  flamewatch notify-test        send a sample alert through each notifier
  flamewatch run                watch Hacker News for real (Ctrl-C stops, SIGHUP reloads the config)"""


def demo_config(api_url: str, period: float, follow: tuple[int, ...] = ()) -> dict[str, object]:
    """The config the demo runs with (the same keys a user writes in flamewatch.toml)."""
    return {
        "hn": {"api_url": api_url, "max_inflight": 16, "timeout": 5.0},
        "watch": {"lists": [{"name": "topstories", "top": 15}, {"name": "showstories", "top": 5}],
                  "period": period, "shutdown_timeout": 5.0, "follow": list(follow),
                  "users": [{"name": "you", "rank_levels": [10, 3, 1]}]},
        # Low levels so alerts fire within seconds. (No velocity rule: the demo's threads grow in seconds
        # what real ones grow in hours, so comments per hour would be absurd.)
        "rules": {"comment_levels": DEMO_LEVELS},
        "store": {"path": ":memory:"},
        "notifiers": [{"type": "console", "name": "console", "stream": "stdout"}],
    }


def _demo_world(seed: int) -> tuple[World, int, int]:
    """The simulated HN the demo watches, with the ids of "your" story and of the followed thread."""
    world = World(seed=seed, stories=20, total_comments=1500)
    # "You": a comment on the hottest thread, and a story not on the front page yet.
    world.add_comment(world.lists["topstories"][0], by="you", text="<p>This is <i>exactly</i> what I needed.</p>")
    mine = world.add_story("Show HN: flamewatch, alerts when HN threads heat up", by="you", top=False,
                           url="https://example.com/flamewatch")
    # A thread on no list, followed by hand (as `flamewatch follow ID` does): counted every cycle anyway.
    followed = world.add_story("Ask HN: What are you following this week?", top=False, text="Curious.")
    return world, mine, followed


async def run_demo(*, duration: float = 20.0, period: float = 2.0, seed: int = 7, http: str | None = None) -> int:
    """Run the demo; ``http`` is where to serve the status page (None: the default address, "": none)."""
    world, mine, followed = _demo_world(seed)
    climb = iter((14, 8, 5, 2, 1))
    # A little latency, as over a real network, so bounded concurrency is visible in the summary.
    # The demo prints its own cycle lines; the store's migrations and the stream's start are noise here.
    for name in ("flamewatch.watch", "flamewatch.store", "flamewatch.stream", "flamewatch.hn.live"):
        logging.getLogger(name).setLevel(logging.WARNING)
    async with SimulatorServer(world, Faults(latency=0.002)) as sim:
        print(f"flamewatch demo: simulated Hacker News at {sim.base_url}; watching the top 15 stories every "
              f"{period:g}s for {duration:g}s, user \"you\" and one followed thread; live: new items arrive over "
              "the API's event stream between cycles", flush=True)
        print(f"  alerts fire when a thread crosses {', '.join(map(str, DEMO_LEVELS))} comments (lowered for the "
              "demo; a real config starts at 50) and print below", flush=True)
        config = parse_config(demo_config(sim.base_url, period, (followed,)), "<demo config>")
        async with App(config, owner="demo", live=True) as app:
            assert app.monitor is not None and app.dispatcher is not None

            cycles: list[str] = []

            def on_done(stats: object) -> None:
                from .events import CycleStats

                assert isinstance(stats, CycleStats)
                app.plugins.notify("flamewatch_cycle_done", stats=stats)  # the status page hears of it
                growth = world.grow(n_comments=120)  # threads grow between cycles, some faster than others
                rank = next(climb, None)
                if rank is not None:
                    place_on_list(world, mine, rank)  # your story climbs the front page
                if stats.cycle >= 1:
                    reply_to_user(world, "you", 1)  # and people reply to you
                world.add_replies(followed, 6)
                cycles.append(f"cycle {stats.cycle}: {_n(stats.stories, 'story', 'stories')}, "
                              f"{_n(stats.requests, 'request')}, {_n(stats.events, 'alert')}, {stats.elapsed:.2f}s")
                print(f"  {cycles[-1]} (then the simulated threads grew: {len(growth)} items changed)", flush=True)

            watcher = Watcher(app.monitor.cycle, period, cycle_timeout=period * 5, on_done=on_done)
            server = await _serve(app, http, watcher)
            if server is not None:
                print(f"status page: {server.url} (also {server.url}metrics and {server.url}api/stories)", flush=True)
            started = time.monotonic()
            runner = asyncio.create_task(watcher.run(finish_timeout=period))
            try:
                try:
                    await asyncio.wait_for(asyncio.shield(runner), timeout=duration)
                except TimeoutError:
                    watcher.stop()
                    await runner
                await app.dispatcher.wait_idle()
            finally:
                await stop_http(app, server)
            stats = app.dispatcher.stats
            print(f"\nsummary: {_n(watcher.cycles_started, 'cycle')} in {time.monotonic() - started:.1f}s, "
                  f"{sim.stats.requests} API requests (peak {sim.stats.max_inflight} in flight), "
                  f"{_n(stats.events, 'alert')} fired, {stats.delivered} delivered, "
                  f"{_n(watcher.skipped_ticks, 'tick')} skipped", flush=True)
            print(NEXT_STEPS, flush=True)
    sys.stdout.flush()
    return 0


async def _serve(app: App, http: str | None, watcher: Watcher) -> HttpServer | None:
    """The status page at ``http``; at the default address, a free port when that one is taken (a demo
    must not fail because a daemon, or another demo, already serves there)."""
    try:
        return await start_http(app, listen=http, watcher=watcher)
    except ConfigError as exc:
        if http is not None:  # an address the user chose: theirs to change
            raise
        host, _ = parse_listen(app.config.http.listen)
        print(f"note: {str(exc).removeprefix('http.listen: ')}; taking a free port instead", flush=True)
        return await start_http(app, listen=f"[{host}]:0" if ":" in host else f"{host}:0", watcher=watcher)


def _n(count: int, word: str, many: str | None = None) -> str:
    """``1 alert``, ``2 alerts``."""
    return f"{count} {word if count == 1 else (many or word + 's')}"
