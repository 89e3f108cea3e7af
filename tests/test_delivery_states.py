"""Delivery states are values of their own in both stores (pending, sent, grouped, silenced, superseded,
dead), shown as such by ``flamewatch outbox`` (text and JSON), ``/api``, the page and ``/metrics``; and
a store written when closed-unsent rows were "done" with a prefix in ``last_error`` migrates to them."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import FLAMEWATCH
from prometheus_client.parser import text_string_to_metric_families

from flamewatch.dispatch import Dispatcher, NotifierInstance
from flamewatch.http.api import Source
from flamewatch.http.recorder import StatusRecorder
from flamewatch.http.server import make_web_app
from flamewatch.rules import Evaluation
from flamewatch.silences import SilenceList
from flamewatch.store import DeliveryStatus, Store, open_store
from flamewatch.store.schema import MIGRATIONS
from flamewatch.testing import RecordingNotifier, make_event, make_story, notifier_context, outbox_states


async def flamewatch_outbox(location: str, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "-c", os.devnull, "outbox", "--store", location, *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def close_one_silenced_and_one_superseded(store: Store, session: aiohttp.ClientSession) -> RecordingNotifier:
    """Story 1 reaches 100 and 500 comments together (100 is superseded); story 2 links to a silenced domain."""
    sink = RecordingNotifier(notifier_context(session, "sink"), RecordingNotifier.Options())
    dispatcher = Dispatcher(store, [NotifierInstance.of(sink)])
    book = await SilenceList.load(store)
    book.add("domain:example.com", 3600.0, "launch day", dispatcher.clock())
    await book.save(store, dispatcher.clock())
    await dispatcher.start()
    events = [make_event(make_story(1, comments=520), level=100), make_event(make_story(1, comments=520), level=500),
              make_event(make_story(2, comments=130, url="https://www.example.com/x"), level=100)]
    await dispatcher.publish(Evaluation(announce=events))
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    return sink


async def test_a_silenced_and_a_superseded_row_show_their_state_everywhere(
    store_location: str, aiohttp_client: Any
) -> None:
    async with await open_store(store_location) as store, aiohttp.ClientSession() as session:
        sink = await close_one_silenced_and_one_superseded(store, session)
        assert [e.key for e in sink.sent] == ["1:comments:500"]
        assert await store.outbox_counts() == outbox_states(sent=1, silenced=1, superseded=1)

        # The CLI, as text and as JSON.
        text = await flamewatch_outbox(store_location, "--status", "all")
        lines = {line.split()[3]: line for line in text.splitlines()[1:]}
        assert text.splitlines()[0] == "outbox: 0 pending, 1 sent, 1 silenced, 1 superseded, 0 dead"
        assert lines["1:comments:100"].split()[1] == "superseded"
        assert "(superseded by 1:comments:500)" in lines["1:comments:100"]
        assert lines["2:comments:100"].split()[1] == "silenced"
        assert "(silenced by s1 domain:example.com (launch day))" in lines["2:comments:100"]
        assert lines["1:comments:500"].split()[1] == "sent"
        listing = json.loads(await flamewatch_outbox(store_location, "--status", "all", "--json"))
        rows = {row["key"]: row for row in listing["rows"]}
        assert (rows["1:comments:100"]["status"], rows["1:comments:100"]["ref"]) == ("superseded", "1:comments:500")
        assert rows["2:comments:100"]["status"] == "silenced" and rows["2:comments:100"]["last_error"] is None
        assert listing["counts"] == outbox_states(sent=1, silenced=1, superseded=1)
        only = json.loads(await flamewatch_outbox(store_location, "--status", "superseded", "--json"))
        assert [row["key"] for row in only["rows"]] == ["1:comments:100"]

        # The HTTP face: /api/events, /api/outbox, the page and /metrics.
        source = Source(recorder=StatusRecorder(), store=lambda: store, period=lambda: 60.0,
                        instances=lambda: ["sink"])
        client = await aiohttp_client(make_web_app(source))
        events = {e["key"]: e for e in await (await client.get("/api/events")).json()}
        (superseded,) = events["1:comments:100"]["deliveries"]
        assert (superseded["state"], superseded["ref"]) == ("superseded", "1:comments:500")
        (silenced,) = events["2:comments:100"]["deliveries"]
        assert (silenced["state"], silenced["ref"]) == ("silenced", "s1 domain:example.com (launch day)")
        (outbox,) = await (await client.get("/api/outbox")).json()
        assert outbox == {"instance": "sink", **outbox_states(sent=1, silenced=1, superseded=1), "next_at": None}
        page = await (await client.get("/")).text()
        assert "sink: superseded by 1:comments:500" in page
        assert "sink: silenced by s1 domain:example.com (launch day)" in page
        assert "no notifier took it" not in page
        metrics = await (await client.get("/metrics")).text()
        rows_by_state = {s.labels["state"]: s.value for f in text_string_to_metric_families(metrics)
                         for s in f.samples if s.name == "flamewatch_outbox_rows" and s.labels["instance"] == "sink"}
        assert rows_by_state == {"pending": 0, "sent": 1, "grouped": 0, "silenced": 1, "superseded": 1, "dead": 0}


async def test_rows_sent_in_one_message_are_sent_and_grouped_into_it(store: Store) -> None:
    events = [make_event(make_story(i)) for i in (1, 2, 3)]
    await store.record_events(events, {e.key: ["digest"] for e in events}, now=10.0)
    first, *rest = await store.pending()
    await store.mark_sent([first.id], 11.0, grouped=[r.id for r in rest], into=first.event.key)
    rows = await store.outbox()
    grouped = (DeliveryStatus.GROUPED, "1:comments:100")
    assert [(r.status, r.ref) for r in rows] == [(DeliveryStatus.SENT, None), grouped, grouped]
    assert rows[1].describe_state() == "grouped into 1:comments:100"
    assert await store.purge_done(older_than=12.0) == 3  # every finished state ages out alike


async def test_mark_skipped_takes_only_the_states_of_rows_closed_unsent(store: Store) -> None:
    event = make_event(make_story(1))
    await store.record_events([event], {event.key: ["hook"]}, now=10.0)
    (row,) = await store.pending()
    with pytest.raises(ValueError, match="not a state of a row closed unsent"):
        await store.mark_skipped([row.id], 11.0, status=DeliveryStatus.SENT, ref="x")


#: Rows as the schema before states had values left them: closed-unsent rows are "done" with a prefix in
#: last_error (SQLite version 3, PostgreSQL version 1).
_OLD_ROWS = [("1:comments:100", "done", "superseded: by 1:comments:500"), ("1:comments:500", "done", None),
             ("2:comments:100", "done", "silenced: s1 domain:example.com (launch day)"),
             ("3:comments:100", "done", "HTTP 503 (retried, then sent)"), ("4:comments:100", "dead", "HTTP 401"),
             ("5:comments:100", "pending", None)]


def _version_3_store(path: Path) -> None:
    """A SQLite store as version 3 left it, holding :data:`_OLD_ROWS`."""
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:3]:
            for statement in step:
                conn.execute(statement)
        conn.execute("PRAGMA user_version = 3")
        for key, status, error in _OLD_ROWS:
            story = int(key.split(":")[0])
            data = json.dumps(make_event(make_story(story), level=int(key.split(":")[2])).to_dict())
            conn.execute("INSERT OR IGNORE INTO fired VALUES (?, ?, 'comments', 1.0, ?)", (key, story, data))
            conn.execute("INSERT INTO outbox (event_key, instance, status, created_at, next_at, done_at, last_error)"
                         " VALUES (?, 'hook', ?, 1.0, 1.0, 2.0, ?)", (key, status, error))
        conn.execute("DELETE FROM outbox WHERE event_key = '5:comments:100'")  # the highest id, gone
        conn.execute("INSERT INTO outbox (event_key, instance, status, created_at, next_at)"
                     " VALUES ('5:comments:100', 'mail', 'pending', 1.0, 1.0)")
    conn.close()


MIGRATED = {
    "1:comments:100": (DeliveryStatus.SUPERSEDED, "1:comments:500", None),
    "1:comments:500": (DeliveryStatus.SENT, None, None),
    "2:comments:100": (DeliveryStatus.SILENCED, "s1 domain:example.com (launch day)", None),
    "3:comments:100": (DeliveryStatus.SENT, None, "HTTP 503 (retried, then sent)"),
    "4:comments:100": (DeliveryStatus.DEAD, None, "HTTP 401"),
    "5:comments:100": (DeliveryStatus.PENDING, None, None),
}


async def test_a_version_3_sqlite_store_migrates_its_rows_to_their_states(tmp_path: Path) -> None:
    path = tmp_path / "v3.db"
    _version_3_store(path)
    async with await open_store(path) as store:
        rows = await store.outbox()
        assert {r.event.key: (r.status, r.ref, r.last_error) for r in rows} == MIGRATED
        assert [r.id for r in rows] == [1, 2, 3, 4, 5, 7]  # ids kept
        fresh = make_event(make_story(9))
        await store.record_events([fresh], {fresh.key: ["hook"]}, now=3.0)
        (new,) = [r for r in await store.pending() if r.event.key == fresh.key]
        assert new.id == 8  # the counter went on: an id is never reused
    conn = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError):  # the CHECK constraint knows the new states only
            conn.execute("UPDATE outbox SET status = 'done' WHERE id = 1")
    finally:
        conn.close()


async def test_a_version_1_postgres_schema_migrates_its_rows_to_their_states() -> None:
    import asyncpg
    from pgserver import fresh_schema, server_url

    from flamewatch.store.postgres.schema import MIGRATIONS as PG_MIGRATIONS

    async with fresh_schema() as url:
        schema = url().rsplit("schema=", 1)[1]
        conn = await asyncpg.connect(server_url())
        try:
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            await conn.execute(f'SET search_path TO "{schema}"')
            await conn.execute("CREATE TABLE schema_version (version integer NOT NULL)")
            await conn.execute("INSERT INTO schema_version VALUES (1)")
            for statement in PG_MIGRATIONS[0]:
                await conn.execute(statement)
            for key in MIGRATED:
                story, level = int(key.split(":")[0]), int(key.split(":")[2])
                data = json.dumps(make_event(make_story(story), level=level).to_dict())
                await conn.execute("INSERT INTO fired VALUES ($1, $2, 'comments', 1.0, $3)", key, story, data)
            for key, status, error in _OLD_ROWS:
                await conn.execute("INSERT INTO outbox (event_key, instance, status, created_at, next_at, done_at,"
                                   " last_error) VALUES ($1, 'hook', $2, 1.0, 1.0, 2.0, $3)", key, status, error)
        finally:
            await conn.close()
        async with await open_store(url()) as store:
            rows = await store.outbox()
            assert {r.event.key: (r.status, r.ref, r.last_error) for r in rows} == MIGRATED

