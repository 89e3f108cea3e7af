"""Soak: two ``flamewatch run`` instances sharing one PostgreSQL schema, with faults, for N minutes.

    PYTHONPATH=src python scripts/soak_failover.py --minutes 10            # churn, kill -9, cuts
    PYTHONPATH=src python scripts/soak_failover.py --minutes 3 --faults none

The HN simulator grows its threads every second (so alerts keep firing); both instances post to one
local webhook receiver that answers after a short random delay (so kills land on deliveries in flight).
Every few seconds (seeded) a fault hits: ``kill -9`` of the leader or of the standby, a cut of the
leader's sessions (``pg_terminate_backend``), or churn (SIGTERM and restart). At the end the faults
stop, the survivors drain the outbox, and the script prints generated / delivered / duplicated / lost,
duplicates split by whether a kill or cut could have caught the first copy in flight. Exit status 1
when any alert was lost or a duplicate has no fault to explain it.

The server is ``FLAMEWATCH_TEST_POSTGRES`` (default: the local test server); the schema is a fresh one,
dropped at the end (``--keep`` keeps it and the instances' logs).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import secrets
import signal
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from flamewatch.simulator import SimulatorServer, World

SECRET_ENV = "FW_SOAK_WEBHOOK_SECRET"
TIMEOUT = 3.0  # the webhook attempt timeout: leases lapse TIMEOUT + 5 s after a claim
SERVER = os.environ.get("FLAMEWATCH_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


class Receiver:
    """Answers every POST with 200 after a random short delay; records each arrival's time by webhook-id."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.key_of: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        msg_id = request.headers["webhook-id"]
        self.arrivals[msg_id].append(time.monotonic())
        self.key_of[msg_id] = body["data"]["key"]
        await asyncio.sleep(self.rng.uniform(0.0, 0.4))  # a window in which the sender has not heard back
        return web.Response(text="ok")


class Instance:
    """One ``flamewatch run`` process at a time under one name, restarted after each fault."""

    def __init__(self, name: str, args: list[str], logdir: Path) -> None:
        self.name, self.args, self.logdir = name, args, logdir
        self.proc: asyncio.subprocess.Process | None = None
        self.leading = False
        self.starts = 0
        self.up = asyncio.Event()  # set once this run of the process leads or stands by
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.starts += 1
        self.leading = False
        self.up = asyncio.Event()
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flamewatch", *self.args,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        self._reader = asyncio.create_task(self._read(self.proc, self.logdir / f"{self.name}-{self.starts}.log"))

    async def _read(self, proc: asyncio.subprocess.Process, path: Path) -> None:
        assert proc.stderr is not None
        with path.open("w") as log:
            while line := (await proc.stderr.readline()).decode(errors="replace"):
                log.write(line)
                if proc is self.proc:
                    if "leading " in line or "standby: waiting" in line:
                        self.up.set()
                    if "leading " in line:
                        self.leading = True
                    elif "lost the leader lock" in line or "standby: waiting" in line:
                        self.leading = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else None

    async def stop(self, sig: int, timeout: float = 15.0) -> int | None:  # noqa: ASYNC109
        """Send ``sig`` and wait for the exit (SIGKILL after ``timeout``); returns the exit status."""
        proc = self.proc
        if proc is None or proc.returncode is not None:
            return None
        self.leading = False
        proc.send_signal(sig)
        try:
            await asyncio.wait_for(proc.wait(), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._reader is not None:
            await self._reader
        return proc.returncode


def write_config(path: Path, hook_url: str) -> None:
    path.write_text("\n".join([
        "[watch]", "top = 30", "period = 1.0", "shutdown_timeout = 3.0",
        "[rules]", "comment_levels = [3, 6, 10, 15, 25, 40, 60, 90, 130, 180, 250, 350, 500, 700, 1000]",
        "points_levels = [10, 25, 50, 100, 200, 400]",
        "[delivery]", "retry_base = 0.5", "retry_cap = 2.0",
        "[[notifiers]]", 'type = "webhook"', 'name = "hook"', f'url = "{hook_url}"',
        f'secret = {{ env = "{SECRET_ENV}" }}', f"timeout = {TIMEOUT}", "concurrency = 4", "",
    ]))
    path.chmod(0o600)


async def end_sessions(admin: asyncpg.Connection, pid: int) -> int:
    ended: int = await admin.fetchval(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
        " WHERE application_name LIKE $1 OR application_name = $2",
        f"flamewatch pid {pid} on %", f"flamewatch store pid {pid}",
    )
    return ended


async def faults(instances: list[Instance], admin: asyncpg.Connection, rng: random.Random,
                 until: float, log: list[tuple[float, str]], bad_exits: list[str]) -> None:
    """Hit the instances with a seeded fault every 4-10 s until ``until``; each hit one is restarted."""
    while time.monotonic() + 4 < until:
        await asyncio.sleep(rng.uniform(4.0, 10.0))
        leader = next((i for i in instances if i.leading and i.pid), None)
        other = next((i for i in instances if i is not leader), instances[0])
        kind = rng.choice(["kill9-leader", "kill9-leader", "cut-leader", "cut-leader", "churn", "kill9-standby"])
        target = other if kind == "kill9-standby" or leader is None else leader
        if kind.startswith("cut"):
            if target.pid is None:
                continue
            log.append((time.monotonic(), f"{kind} {target.name}"))
            await end_sessions(admin, target.pid)
            continue
        log.append((time.monotonic(), f"{kind} {target.name}"))
        status = await target.stop(signal.SIGKILL if kind.startswith("kill9") else signal.SIGTERM)
        if kind == "churn" and status not in (0, None):
            bad_exits.append(f"{target.name}: {status}")  # SIGTERM must stop it cleanly
        await asyncio.sleep(rng.uniform(0.5, 3.0))
        await target.start()


async def grow(world: World, n: int, until: float) -> None:
    while time.monotonic() < until:
        world.grow(n)
        await asyncio.sleep(1.0)


async def outbox(url: str, schema: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(
            f'SELECT event_key, status, last_error FROM "{schema}".outbox WHERE instance = $1', "hook"
        ))
    finally:
        await conn.close()


async def drain(url: str, schema: str, limit: float) -> None:
    """Wait (polling: the instances are other processes) until no row is pending, at most ``limit`` s."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not any(r["status"] == "pending" for r in await outbox(SERVER, schema)):
            return
        await asyncio.sleep(1.0)


def _skipped(row: asyncpg.Record) -> bool:
    """Whether an outbox row was closed without sending (superseded or silenced), in either schema form."""
    reason = (row["last_error"] or "").split(":", 1)[0]
    return row["status"] in ("superseded", "silenced") or (row["status"] == "done" and reason in
                                                           ("superseded", "silenced"))


def classify(receiver: Receiver, fault_log: list[tuple[float, str]]) -> tuple[int, int, list[str]]:
    """Duplicates whose first copy a kill or cut could have caught in flight, the others, and those ids."""
    explained = unexplained = 0
    odd: list[str] = []
    for msg_id, times in receiver.arrivals.items():
        first = times[0]
        for again in times[1:]:
            # In flight at a fault: the fault came after the first copy was sent (at most an attempt
            # timeout before it arrived) and before its outcome could be recorded and the copy resent.
            if any(first - TIMEOUT - 1 <= at <= min(again, first + TIMEOUT + 5) for at, _ in fault_log):
                explained += 1
            else:
                unexplained += 1
                odd.append(msg_id)
    return explained, unexplained, odd


async def soak(args: argparse.Namespace) -> int:
    rng = random.Random(args.seed)
    schema = f"soak_{secrets.token_hex(4)}"
    url = f"{SERVER}{'&' if '?' in SERVER else '?'}schema={schema}"
    logdir = Path(tempfile.mkdtemp(prefix="flamewatch-soak-"))
    os.environ[SECRET_ENV] = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    receiver = Receiver(random.Random(args.seed + 1))
    await receiver.start()
    write_config(logdir / "fw.toml", receiver.url)
    world = World(seed=args.seed, stories=30, total_comments=3000)
    admin = await asyncpg.connect(SERVER)
    fault_log: list[tuple[float, str]] = []
    bad_exits: list[str] = []
    started = time.monotonic()
    until = started + args.minutes * 60
    try:
        async with SimulatorServer(world) as sim:
            run = ["-c", str(logdir / "fw.toml"), "run", "--api-url", sim.base_url, "--store", url,
                   "--http", "127.0.0.1:0"]
            instances = [Instance("a", run, logdir), Instance("b", run, logdir)]
            for instance in instances:
                await instance.start()
            jobs = [grow(world, args.grow, until)]
            if args.faults == "all":
                jobs.append(faults(instances, admin, rng, until, fault_log, bad_exits))
            await asyncio.gather(*jobs)
            for instance in instances:  # both up for the drain
                if instance.pid is None:
                    await instance.start()
                await asyncio.wait_for(instance.up.wait(), 60)
            await drain(SERVER, schema, limit=120.0)
            statuses = [await i.stop(signal.SIGTERM) for i in instances]
        rows = await outbox(SERVER, schema)
    finally:
        await receiver.stop()
        if not args.keep:
            await admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await admin.close()
    # Rows closed unsent by design (a higher level taken with them, a silence) are not alerts to deliver.
    skipped = {r["event_key"] for r in rows if _skipped(r)}
    keys = {r["event_key"] for r in rows} - skipped
    arrived = set(receiver.key_of.values())
    ids_per_key: dict[str, set[str]] = defaultdict(set)
    for msg_id, key in receiver.key_of.items():
        ids_per_key[key].add(msg_id)
    explained, unexplained, odd = classify(receiver, fault_log)
    figures: dict[str, Any] = {
        "minutes": args.minutes, "faults": args.faults, "seed": args.seed, "schema": schema,
        "fault_count": len(fault_log), "fault_kinds": sorted({k.split()[0] for _, k in fault_log}),
        "generated": len(keys), "delivered": len(keys & arrived), "lost": len(keys - arrived),
        "duplicated": explained + unexplained, "duplicated_fault_in_flight": explained,
        "duplicated_no_fault": unexplained, "keys_with_two_ids": sum(len(v) > 1 for v in ids_per_key.values()),
        "skipped_by_design": len(skipped), "dead": sum(r["status"] == "dead" for r in rows),
        "pending": sum(r["status"] == "pending" for r in rows),
        "final_exit_statuses": statuses,
        "churn_bad_exits": bad_exits, "logs": str(logdir) if args.keep else None,
    }
    print(f"SOAK {json.dumps(figures)}")
    print(f"generated {figures['generated']} / delivered {figures['delivered']} / duplicated "
          f"{figures['duplicated']} ({explained} with a kill or cut in flight, {unexplained} without) / "
          f"lost {figures['lost']}; faults {len(fault_log)}")
    if odd:
        print(f"duplicates with no fault in flight: {odd[:20]}")
    return 1 if figures["lost"] or unexplained or figures["pending"] or figures["churn_bad_exits"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to run before draining (10)")
    parser.add_argument("--faults", choices=["all", "none"], default="all", help="kills, cuts and churn, or none")
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument("--grow", type=int, default=40, help="comments the simulator adds per second (40)")
    parser.add_argument("--keep", action="store_true", help="keep the schema and the instances' logs")
    return asyncio.run(soak(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
