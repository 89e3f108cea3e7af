"""Benchmark 11: live mode, end to end (issue 19).

**Alert latency.** From the moment the simulator publishes an item (its process takes the time on the
system's monotonic clock, then pokes its event streams) to the moment the signed webhook arrives at a
receiver in this process (verified with the reference ``standardwebhooks`` library, timed on the same
clock). Two ``flamewatch run`` processes watch the same simulator at once, one live and one polling at
the default period (60 s), each with its own store and webhook path, so every published item is timed for
both. Three kinds: a mention (a comment naming a mention's term), a reply (to the watched user's story)
and a comment level (the comment that takes a fresh story to the level of 5). p50 and p99 per kind, mode
and API latency (0 and 20 ms per request); with n samples per cell, p99 is close to the largest.

**Exactness.** A live App in this process (no cycle runs after the first) through a burst of 2,000 new
comments over 50 stories while the simulator drops its streams 3 times: every burst item handed over by
the stream exactly once, and every story's count in the store equal to the simulator's truth.

**Idle CPU.** A live ``flamewatch run`` with nothing happening on HN (keep-alives every 30 s and its own
60 s reconciliation cycles), CPU time over wall time from ``/proc``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from aiohttp import web
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from .live_exact import exactness
from .report import Row, check, percentile
from .simserver import SimProcess

SECTION = "11 live"
SECRET_ENV = "FW_BENCH_LIVE_SECRET"
LEVEL = 5
TARGETS = {"mention": 1.0, "reply": 1.0, "level": 2.0}  # p99 at 20 ms API latency, live mode


@dataclass(frozen=True)
class LiveSizes:
    samples: int  # per kind and API latency
    pool: int = 100  # fresh stories (each level sample takes one)
    idle: float = 120.0  # seconds of idle CPU measured
    burst: int = 2_000
    burst_stories: int = 50
    drops: int = 3
    latencies: tuple[float, ...] = (0.0, 0.02)
    poll_wait: float = 100.0  # how long after the last publish the polling instance may take


class Receiver:
    """Signed webhooks on loopback: verifies each, records (path, event key) -> arrival time."""

    def __init__(self, secret: str) -> None:
        self.hook = Webhook(secret)
        self.arrived: dict[tuple[str, str], float] = {}
        self.rejected = 0
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Self:
        app = web.Application()
        app.router.add_post("/{inst}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        at = time.monotonic()
        raw = await request.read()
        try:
            body = self.hook.verify(raw, dict(request.headers))
        except WebhookVerificationError:
            self.rejected += 1
            return web.Response(status=401)
        key = body.get("data", {}).get("key") if isinstance(body, dict) else None
        if isinstance(key, str):
            self.arrived.setdefault((request.match_info["inst"], key), at)
            self._changed.set()
        return web.Response(status=204)

    async def wait_for(self, inst: str, keys: Sequence[str], within: float) -> None:
        """Until every key arrived at ``/inst`` or ``within`` seconds passed (the missing ones count as misses)."""
        deadline = time.monotonic() + within
        while any((inst, k) not in self.arrived for k in keys) and (left := deadline - time.monotonic()) > 0:
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), left)
            except TimeoutError:
                break


class Flamewatch:
    """``flamewatch -v -c CONFIG run`` in a subprocess; its stderr lines are kept so we can wait on them."""

    def __init__(self, config: Path) -> None:
        self.config = config
        self.lines: list[str] = []
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Self:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flamewatch", "-v", "-c", str(self.config), "run", "--http", "",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None and self._reader is not None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await self._reader

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        async for line in self.proc.stderr:
            self.lines.append(line.decode(errors="replace").rstrip())
            self._changed.set()

    async def wait_for_line(self, text: str, within: float = 120.0) -> None:
        deadline = time.monotonic() + within
        while not any(text in line for line in self.lines):
            if (left := deadline - time.monotonic()) <= 0:
                tail = "\n".join(self.lines[-20:])
                raise RuntimeError(f"flamewatch never said {text!r} within {within:g}s; its last lines:\n{tail}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    def cpu_seconds(self) -> float:
        """User plus system CPU time of the process so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_config(path: Path, sim: SimProcess, receiver: Receiver, inst: str, *, live: bool, top: int) -> Path:
    path.write_text(f"""
[hn]
api_url = "{sim.base_url}"
[watch]
top = {top}
live = {"true" if live else "false"}
[[watch.users]]
name = "you"
front_page = false
[rules]
comment_levels = [{LEVEL}]
points_levels = []
mentions = [{{ name = "rust", terms = ["rustacean"] }}]
[store]
path = "{path.parent / (inst + '.db')}"
[[notifiers]]
type = "webhook"
name = "hook"
url = "{receiver.url}/{inst}"
secret = {{ env = "{SECRET_ENV}" }}
""")
    return path


async def _publish_round(sim: SimProcess, stories: list[int], fresh: list[int], n: int,
                         rng: random.Random) -> list[tuple[str, str, float]]:
    """``n`` of each kind, interleaved, a random 0.2-0.6 s apart; (kind, event key, published at)."""
    samples: list[tuple[str, str, float]] = []
    for i in range(n):
        for kind in ("mention", "reply", "level"):
            story = fresh.pop() if kind == "level" else stories[i % len(stories)]
            got = await sim.control("live/publish", kind=kind, story=story)
            key = {"mention": f"mention:rust:{got['id']}", "reply": f"reply:{got['id']}",
                   "level": f"{story}:comments:{LEVEL}"}[kind]
            samples.append((kind, key, got["at"]))
            await asyncio.sleep(rng.uniform(0.2, 0.6))
    return samples


def _latency_rows(receiver: Receiver, samples: list[tuple[str, str, float]], latency: float) -> list[Row]:
    rows: list[Row] = []
    for inst in ("live", "poll"):
        for kind in ("mention", "reply", "level"):
            mine = [(key, at) for k, key, at in samples if k == kind]
            got = [receiver.arrived[(inst, key)] - at for key, at in mine if (inst, key) in receiver.arrived]
            missed = len(mine) - len(got)
            name = f"{inst} {kind} @{latency * 1000:g}ms"
            note = f"n={len(got)}" + (f", {missed} never arrived" if missed else "")
            p50, p99 = percentile(got, 50), percentile(got, 99)
            rows.append(Row(SECTION, f"{name} p50", p50, "s", note=note))
            if inst == "live" and latency >= 0.02:
                rows.append(check(SECTION, f"{name} p99", p99, "s", at_most=TARGETS[kind], note=note))
            else:
                rows.append(Row(SECTION, f"{name} p99", p99, "s", note=note))
            if missed and inst == "live":
                rows.append(check(SECTION, f"{name} mismatches (never arrived)", missed, "", at_most=0))
    return rows


async def latency_and_idle(sizes: LiveSizes) -> list[Row]:
    """The latency table (live beside polling) and the idle CPU of a live instance."""
    os.environ[SECRET_ENV] = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    rng = random.Random(19)
    rows: list[Row] = []
    async with SimProcess(stories=0, comments=None) as sim, Receiver(os.environ[SECRET_ENV]) as receiver:
        setup = await sim.control("live/setup", stories=sizes.pool, comments=LEVEL - 1)
        # Mentions go to the first story only: the others each take one comment to their level, once.
        stories, fresh = setup["stories"][:1], list(reversed(setup["stories"][1:]))
        with tempfile.TemporaryDirectory(prefix="fw-live-bench-") as tmp:
            configs = {inst: write_config(Path(tmp) / f"{inst}.toml", sim, receiver, inst, live=inst == "live",
                                          top=sizes.pool + 1) for inst in ("live", "poll")}
            for latency in sizes.latencies:
                await sim.control("latency", seconds=latency)
                async with Flamewatch(configs["live"]) as live, Flamewatch(configs["poll"]) as poll:
                    for proc in (live, poll):
                        await proc.wait_for_line("cycle 0:")
                    await live.wait_for_line("stream /v0/maxitem.json: live")
                    samples = await _publish_round(sim, stories, fresh, sizes.samples, rng)
                    keys = [key for _, key, _ in samples]
                    await receiver.wait_for("live", keys, 30.0)
                    await receiver.wait_for("poll", keys, sizes.poll_wait)
                rows += _latency_rows(receiver, samples, latency)
            rows += await _idle_cpu(configs["live"], sizes.idle)
    return rows


async def _idle_cpu(config: Path, seconds: float) -> list[Row]:
    async with Flamewatch(config) as live:
        await live.wait_for_line("cycle 0:")
        await live.wait_for_line("stream /v0/maxitem.json: live")
        await asyncio.sleep(5.0)  # past the start's one-off work (imports, the first cycle's store writes)
        cpu0, t0 = live.cpu_seconds(), time.monotonic()
        await asyncio.sleep(seconds)
        share = (live.cpu_seconds() - cpu0) / (time.monotonic() - t0) * 100.0
    note = f"over {seconds:g} s, 101 stories watched, 60 s cycles and 30 s keep-alives included"
    return [check(SECTION, "idle live instance CPU", share, "%", at_most=0.5, note=note)]


async def live_mode(sizes: LiveSizes) -> list[Row]:
    """Benchmark 11: latency beside polling, exactness through drops, idle CPU."""
    rows = await exactness(sizes.burst, sizes.burst_stories, sizes.drops, SECTION)
    rows += await latency_and_idle(sizes)
    return rows
