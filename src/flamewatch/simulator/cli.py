"""The ``flamewatch simulate`` command: serve a growing simulated world until stopped."""

from __future__ import annotations

import argparse
import asyncio
import math
from collections.abc import Callable
from typing import Any

from .server import Faults, SimulatorServer
from .world import World

__all__ = ["add_simulate_arguments", "faults_from_args", "run_simulate", "world_from_args"]


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {text!r}")
    return value


def _non_negative(kind: type[int | float]) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a non-negative {kind.__name__}, got {text!r}") from exc
        if value < 0:
            raise argparse.ArgumentTypeError(f"expected a non-negative {kind.__name__}, got {text!r}")
        return value

    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` command's options to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument(
        "--port", type=_non_negative(int), default=8765, help="port to bind, 0 for any free port (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="world seed (default: %(default)s)")
    parser.add_argument(
        "--stories", type=_non_negative(int), default=30, help="stories on topstories (default: %(default)s)"
    )
    parser.add_argument(
        "--comments",
        type=_non_negative(int),
        default=None,
        help="scale the front page to about this many comments (default: as sampled)",
    )
    parser.add_argument(
        "--grow-every",
        type=_non_negative(float),
        default=5.0,
        metavar="SECONDS",
        help="grow the world every SECONDS, 0 to never grow (default: %(default)s)",
    )
    parser.add_argument(
        "--grow-comments",
        type=_non_negative(int),
        default=50,
        metavar="N",
        help="comments added per growth step (default: %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=_non_negative(float),
        default=None,
        metavar="SECONDS",
        help="stop after SECONDS (default: run until interrupted)",
    )
    parser.add_argument(
        "--updates-limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="serve only the N most recently changed ids on updates.json, as HN does "
        "(default: list every change for a few growth steps)",
    )
    parser.add_argument("--error-rate", type=_rate, default=0.0, help="share of 500 answers")
    parser.add_argument(
        "--latency", type=_non_negative(float), default=0.0, metavar="SECONDS", help="delay added to every answer"
    )
    parser.add_argument("--malformed-rate", type=_rate, default=0.0, help="share of unparsable 200 bodies")
    parser.add_argument("--hang-rate", type=_rate, default=0.0, help="share of requests never answered")
    parser.add_argument("--unauthorized-rate", type=_rate, default=0.0, help="share of 401 answers")


def world_from_args(args: argparse.Namespace) -> World:
    """The world the ``simulate`` options describe."""
    return World(
        seed=args.seed,
        stories=args.stories,
        total_comments=args.comments,
        updates_limit=getattr(args, "updates_limit", None),
    )


def faults_from_args(args: argparse.Namespace) -> Faults:
    """The faults the ``simulate`` options describe (seeded with the world's seed)."""
    return Faults(
        error_rate=args.error_rate,
        latency=args.latency,
        malformed_rate=args.malformed_rate,
        hang_rate=args.hang_rate,
        unauthorized_rate=getattr(args, "unauthorized_rate", 0.0),
        seed=args.seed,
    )


async def run_simulate(args: argparse.Namespace, *, on_ready: Callable[[SimulatorServer], None] | None = None) -> int:
    """Serve a growing world until cancelled (or for ``--duration``); print the base URL first.

    `on_ready` is called with the running server once it serves (for embedding, and for tests that must
    know the port). On cancellation the server is closed and the `CancelledError` propagates, as it must;
    with ``--duration`` it returns 0 when the time is up.
    """
    world = world_from_args(args)
    faults = faults_from_args(args)
    grow_every = args.grow_every
    grow_comments = getattr(args, "grow_comments", 50)
    duration = getattr(args, "duration", None)
    async with SimulatorServer(world, faults, host=args.host, port=args.port) as sim:
        comments = sum(world.items[s].get("descendants", 0) for s in world.lists["topstories"])
        growth = f"growing every {grow_every:g}s" if grow_every > 0 else "not growing"
        print(
            f"Simulated HN API at {sim.base_url} ({len(world.lists['topstories'])} stories, "
            f"{comments} comments, {growth}); Ctrl-C stops it.",
            flush=True,
        )
        if on_ready is not None:
            on_ready(sim)
        loop = asyncio.get_running_loop()
        start = loop.time()
        end = math.inf if duration is None else start + duration
        next_grow = start + grow_every if grow_every > 0 else math.inf
        while True:
            target = min(next_grow, end)
            if math.isinf(target):
                await asyncio.Event().wait()  # nothing to do but serve until cancelled
            await asyncio.sleep(max(0.0, target - loop.time()))
            if target >= end:
                return 0
            changed = world.grow(grow_comments)
            print(f"grew: {len(changed)} items changed, maxitem {world.maxitem}", flush=True)
            next_grow += grow_every
            while next_grow <= loop.time():  # fixed rate; a late step skips ahead instead of bursting
                next_grow += grow_every
