"""Benchmark 7: the store's hot paths on both backends, side by side.

Two paths run on every cycle with events and on every delivery: recording a batch of events with their
outbox rows (one transaction), and taking one due row then marking it done (two transactions, as a pump
does). Each runs ``rounds`` times on the embedded SQLite file and on PostgreSQL (the server at
``FLAMEWATCH_TEST_POSTGRES``, default the local one, in a throw-away schema); the rows give the median
and its spread. Without a server the PostgreSQL rows say why and carry no figure.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from flamewatch.events import Event
from flamewatch.store import Store, open_store
from flamewatch.testing import make_event, make_story

from .report import Row, spread

SECTION = "7 store"
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class StoreSizes:
    batch: int = 50  # events per record_events call (each routed to two notifiers)
    rounds: int = 20  # batches recorded; also deliveries claimed and marked (x batch)


def _events(round_: int, batch: int) -> list[Event]:
    return [make_event(make_story(round_ * batch + i + 1), level=100) for i in range(batch)]


async def _measure(store: Store, sizes: StoreSizes) -> tuple[list[float], list[float]]:
    """Milliseconds per record_events batch, and per claim-and-mark of one delivery."""
    record_ms: list[float] = []
    now = 1_700_000_000.0
    for r in range(sizes.rounds):
        events = _events(r, sizes.batch)
        routes = {e.key: ["slack", "hook"] for e in events}
        started = time.perf_counter()
        new = await store.record_events(events, routes, now)
        record_ms.append((time.perf_counter() - started) * 1000)
        assert len(new) == len(events)
    claim_ms: list[float] = []
    for _ in range(sizes.rounds * 5):
        started = time.perf_counter()
        (row,) = await store.claim_due(now, instance="hook", claim_for=60, owner="bench", limit=1)
        await store.mark_sent([row.id], now)
        claim_ms.append((time.perf_counter() - started) * 1000)
    return record_ms, claim_ms


def _rows(backend: str, record_ms: list[float], claim_ms: list[float], sizes: StoreSizes) -> list[Row]:
    return [
        Row(SECTION, f"{backend}: record {sizes.batch} events", statistics.median(record_ms), "ms",
            note=f"{spread(record_ms)} ms, 2 outbox rows each"),
        Row(SECTION, f"{backend}: claim + mark one", statistics.median(claim_ms), "ms",
            note=f"{spread(claim_ms)} ms"),
    ]


async def store_paths(sizes: StoreSizes) -> list[Row]:
    rows: list[Row] = []
    medians: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with await open_store(Path(tmp) / "bench.db") as store:
            record_ms, claim_ms = await _measure(store, sizes)
    rows += _rows("sqlite", record_ms, claim_ms, sizes)
    medians["sqlite"] = (statistics.median(record_ms), statistics.median(claim_ms))

    url = os.environ.get("FLAMEWATCH_TEST_POSTGRES", DEFAULT_PG)
    schema = f"fwbench_{uuid.uuid4().hex[:10]}"
    try:
        store = await open_store(f"{url}{'&' if '?' in url else '?'}schema={schema}")
    except Exception as exc:  # no server: say so in the table instead of failing the suite
        reason = str(exc).split(": ", 1)[-1][:80]
        return [*rows, Row(SECTION, "postgres: not measured", 0, "", note=reason)]
    try:
        record_ms, claim_ms = await _measure(store, sizes)
    finally:
        await store.close()
        await _drop_schema(url, schema)
    rows += _rows("postgres", record_ms, claim_ms, sizes)
    pg = (statistics.median(record_ms), statistics.median(claim_ms))
    sq = medians["sqlite"]
    rows += [
        Row(SECTION, "postgres/sqlite record", pg[0] / sq[0], "x"),
        Row(SECTION, "postgres/sqlite claim + mark", pg[1] / sq[1], "x"),
    ]
    return rows


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
