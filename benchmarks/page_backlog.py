"""How long the status page, ``/api/events``, ``/api/outbox`` and ``/metrics`` take with a big backlog.

A receiver that is down for a day leaves thousands of pending rows; the HTTP face is asked every 2 s by
an open page and every 15 s by Prometheus, on the daemon's own loop. This fills a SQLite store with
``--rows`` pending rows (two instances), serves it on loopback and times each path (median of
``--rounds`` requests, with the slowest). Stand-alone, not part of ``python -m benchmarks``:

    PYTHONPATH=src python -m benchmarks.page_backlog --rows 9200
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from flamewatch.http.api import Source
from flamewatch.http.recorder import StatusRecorder
from flamewatch.http.server import HttpServer
from flamewatch.store import Store, open_store
from flamewatch.testing import make_event, make_story

PATHS = ("/", "/fragment", "/api/events", "/api/outbox", "/metrics")


async def _fill(store: Store, rows: int) -> None:
    events = [make_event(make_story(n + 1), level=100) for n in range(rows // 2)]
    for start in range(0, len(events), 500):
        batch = events[start:start + 500]
        await store.record_events(batch, {e.key: ["hook", "mail"] for e in batch}, time.time())


async def _time(session: aiohttp.ClientSession, url: str, rounds: int) -> list[float]:
    took = []
    for _ in range(rounds):
        started = time.perf_counter()
        async with session.get(url) as response:
            await response.read()
            assert response.status == 200, (url, response.status)
        took.append(time.perf_counter() - started)
    return took


async def main(rows: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with await open_store(Path(tmp) / "bench.db") as store:
            await _fill(store, rows)
            recorder = StatusRecorder()
            source = Source(recorder=recorder, store=lambda: store, period=lambda: 60.0,
                            instances=lambda: ["hook", "mail"])
            server = HttpServer(source, "127.0.0.1", 0)
            await server.start()
            try:
                async with aiohttp.ClientSession() as session:
                    print(f"{rows} pending rows; {rounds} requests per path")
                    for path in PATHS:
                        took = await _time(session, server.url.rstrip("/") + path, rounds)
                        print(f"  {path:<12} median {statistics.median(took) * 1000:8.1f} ms   "
                              f"slowest {max(took) * 1000:8.1f} ms")
            finally:
                await server.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=9200)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.rounds))
