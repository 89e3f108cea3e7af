"""Running a notifier inside flamewatch for a test: the real path from a watcher cycle to its sends.

:func:`run_until_delivered` configures flamewatch with one ``[[notifiers]]`` table, runs a watcher cycle
against the HN simulator on loopback, and waits until the notifier has delivered N events, through the
outbox, its retries and the notifier's own pacing::

    run = await run_until_delivered({"type": "ntfy", "topic": "hn", "server": fake.url},
                                    plugins=[flamewatch_ntfy], deliveries=3, store_path=tmp_path / "fw.db")
    assert len(run.delivered) == 3 and run.failures == []

:func:`install_plugin` and :func:`flamewatch_cli` check the distribution from the outside, as a user
would meet it: installed, listed by ``flamewatch plugins``, answering ``flamewatch notify-test``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import hookimpl
from ..events import Event

if TYPE_CHECKING:
    from ..simulator import World

#: The comment level every story of the default world crosses once (one event per story).
LEVEL = 5


@dataclass(frozen=True)
class Delivery:
    """One delivery attempt's outcome (``flamewatch_delivery_done``), with the clock time it was reported."""

    event: Event
    notifier: str
    ok: bool
    error: str | None
    at: float


@dataclass
class Run:
    """What :func:`run_until_delivered` saw: every attempt, and how long (clock seconds) until the last delivery."""

    world: World
    attempts: list[Delivery] = field(default_factory=list)
    took: float = 0.0

    @property
    def story_ids(self) -> list[int]:
        """The ids of the world's stories, in order."""
        return sorted(i for i, item in self.world.items.items() if item.get("type") == "story")

    @property
    def delivered(self) -> list[Event]:
        """The events delivered, in order (an event twice if it was delivered twice)."""
        return [a.event for a in self.attempts if a.ok]

    @property
    def failures(self) -> list[str]:
        """The error of every failed attempt, in order."""
        return [a.error or "?" for a in self.attempts if not a.ok]

    def shortfall(self, wanted: int, timeout: float | None) -> str:
        """What to say when fewer than ``wanted`` events were delivered in time: the count and the errors."""
        errors = sorted(set(self.failures))
        said = f"; the attempts failed with: {'; '.join(errors[:5])}" if errors else "; no attempt failed"
        return f"{len(self.delivered)} of {wanted} events delivered within {timeout}s{said}"


class _Recorder:
    """A plugin that keeps every delivery outcome and wakes whoever waits for a count of successes."""

    __name__ = "flamewatch-testing-recorder"

    def __init__(self, run: Run, clock: Callable[[], float]) -> None:
        self.run, self.clock = run, clock
        self._changed = asyncio.Event()

    @hookimpl
    def flamewatch_delivery_done(self, event: Event, notifier: str, ok: bool, error: str | None) -> None:
        self.run.attempts.append(Delivery(event, notifier, ok, error, self.clock()))
        self._changed.set()

    async def wait(self, deliveries: int) -> None:
        while len(self.run.delivered) < deliveries:
            self._changed.clear()
            await self._changed.wait()


def world_of(stories: int) -> World:
    """A world of ``stories`` new stories, each with one more comment than :data:`LEVEL` (one event each)."""
    from ..simulator import World

    world = World(seed=1, stories=0)
    for index in range(stories):
        world.add_replies(world.add_story(f"Story {index + 1} for the notifier under test"), LEVEL + 1)
    return world


async def run_until_delivered(
    notifier: Mapping[str, Any],
    *,
    store_path: str | Path,
    deliveries: int = 1,
    plugins: Sequence[object] = (),
    world: World | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    clock: Callable[[], float] = time.time,
    timeout: float | None = 30.0,  # noqa: ASYNC109 (a default bound: a broken test fails instead of hanging)
) -> Run:
    """Run flamewatch with the ``[[notifiers]]`` table ``notifier`` until it delivered ``deliveries`` events.

    ``plugins`` are plugin objects or modules to load (yours: ``[flamewatch_ntfy]``; entry points are not
    scanned, so what is installed on the machine does not matter). ``world`` is the HN the simulator
    serves; by default one story per delivery, each crossing ``comment_levels = [5]`` once. ``settings``
    adds or replaces config sections (``{"delivery": {"retry_base": 1.0}}``). One watcher cycle runs, then
    the outbox delivers, retrying as configured, until the count is reached; then it waits for the
    outbox to be idle. Falling short within ``timeout`` is an ``AssertionError`` naming the errors seen.
    ``clock`` is every part's clock: ``asyncio.get_running_loop().time`` under looptime, with
    ``timeout=None`` or a fake-time bound, so that retries and pacing take no real time.
    """
    from ..app import App
    from ..config.load import parse_config
    from ..plugins import make_plugin_manager
    from ..simulator import SimulatorServer

    run = Run(world if world is not None else world_of(deliveries))
    recorder = _Recorder(run, clock)
    async with SimulatorServer(run.world) as sim:
        data: dict[str, Any] = {
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [LEVEL]},
            "store": {"path": str(store_path)},
            "plugins": {"entry_points": False},
            "notifiers": [{"name": "under-test", **notifier}],
            **(settings or {}),
        }
        config = parse_config(data, "<run_until_delivered>")
        manager = make_plugin_manager(extra=[*plugins, recorder], load_entry_points=False)
        async with App(config, plugins=manager, clock=clock) as app:
            assert app.monitor is not None and app.dispatcher is not None
            started = clock()
            await app.monitor.cycle(0)
            try:
                async with asyncio.timeout(timeout):
                    await recorder.wait(deliveries)
            except TimeoutError:
                raise AssertionError(run.shortfall(deliveries, timeout)) from None
            run.took = clock() - started
            await app.dispatcher.wait_idle()
    return run


def install_plugin(dist_name: str, source: str | Path, target: str | Path) -> str | None:
    """Where the distribution ``dist_name`` is installed for a test: None when this environment has it
    (CI installs it first), else ``target``, into which ``source`` (its checkout) was just installed for
    real with pip. Put the answer first on ``PYTHONPATH`` (:func:`flamewatch_cli` does)."""
    try:
        distribution(dist_name)
        return None
    except PackageNotFoundError:
        pass
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(source)], check=True, capture_output=True)
    return str(target)


async def flamewatch_cli(*args: str, site: str | None = None) -> str:
    """Run the ``flamewatch`` command line (``site`` first on the path); its stdout. Asserts exit status 0."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "flamewatch", *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
