"""The daemon's HTTP face over real HTTP: every endpoint, the token rule, /metrics and readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from flamewatch.config import ConfigError, parse_config
from flamewatch.events import CycleStats
from flamewatch.http.api import Source, per_hour, thin
from flamewatch.http.listen import listen_problem, parse_listen
from flamewatch.http.recorder import StatusRecorder
from flamewatch.http.server import make_web_app
from flamewatch.store import CountSample, Store, open_store
from flamewatch.testing import HOSTILE_TITLE, make_event, make_story, outbox_states

NOW = 1_800_000_000.0


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def mem_store() -> AsyncIterator[Store]:
    async with await open_store(":memory:") as store:
        yield store


def cycle(number: int, *stories: Any, failed: str | None = None, skipped: int = 0) -> CycleStats:
    return CycleStats(cycle=number, started_at=datetime.fromtimestamp(NOW, UTC), elapsed=0.4, stories=len(stories),
                      requests=12, errors=1, partial=0, events=0, skipped_ticks=skipped, failed=failed,
                      new_items=7, counted=tuple(stories))


def make_source(store: Store | None, clock: Clock, **kw: Any) -> Source:
    recorder = StatusRecorder(clock=clock)
    return Source(recorder=recorder, store=lambda: store, period=lambda: 60.0, instances=lambda: ["console", "hook"],
                  clock=clock, **kw)


async def client_for(aiohttp_client: Any, source: Source, token: str | None = None) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(make_web_app(source, token=token))
    return client


async def test_page_escapes_a_hostile_title_and_shows_the_stories(aiohttp_client: Any, mem_store: Store) -> None:
    clock = Clock()
    source = make_source(mem_store, clock)
    hostile = make_story(1, title=HOSTILE_TITLE, comments=40, score=9, rank=1, url="https://www.evil.example/x")
    await mem_store.add_snapshots([CountSample(1, NOW - 1800, 10, 5, 10, False), CountSample(1, NOW, 40, 9, 40, False)])
    source.recorder.flamewatch_cycle_done(cycle(0, hostile))
    client = await client_for(aiohttp_client, source)
    response = await client.get("/")
    assert response.status == 200
    html = await response.text()
    assert "<b>tags</b>" not in html and "&lt;b&gt;tags&lt;/b&gt;" in html
    assert "evil.example" in html and "<svg class=\"spark\"" in html and "<polyline" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    stories = await (await client.get("/api/stories")).json()
    # JSON carries data as it is but for controls (the line break); renderers escape
    assert stories[0]["title"] == HOSTILE_TITLE.replace("\r\n", "  ")
    assert stories[0]["domain"] == "evil.example"
    assert stories[0]["per_hour"] == 60.0  # 30 comments in half an hour
    assert stories[0]["history"] == [[NOW - 1800, 10], [NOW, 40]]


async def test_static_files_are_shipped_and_others_are_not(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, make_source(None, Clock()))
    css = await client.get("/static/style.css")
    assert css.status == 200 and "prefers-color-scheme: dark" in await css.text()
    js = await client.get("/static/page.js")
    assert js.status == 200 and "fragment?since=" in await js.text()
    assert (await client.get("/static/..%2Fserver.py")).status == 404
    assert (await client.get("/static/index.html")).status == 404


async def test_fragment_answers_204_until_something_changes(aiohttp_client: Any, mem_store: Store) -> None:
    source = make_source(mem_store, Clock())
    client = await client_for(aiohttp_client, source)
    version = source.recorder.version
    assert (await client.get(f"/fragment?since={version}")).status == 204
    source.recorder.flamewatch_cycle_done(cycle(3, make_story(5, title="Fresh", rank=1)))
    response = await client.get(f"/fragment?since={version}")
    assert response.status == 200
    assert response.headers["X-Flamewatch-Version"] == str(source.recorder.version)
    assert "Fresh" in await response.text()


async def test_events_show_delivered_pending_and_dead_per_instance(aiohttp_client: Any, mem_store: Store) -> None:
    clock = Clock()
    source = make_source(mem_store, clock)
    event = make_event(story_id=7, comments=120, level=100)
    await mem_store.record_events([event], {event.key: ["console", "hook", "mail"]}, NOW)
    rows = {row.instance: row for row in await mem_store.pending()}
    await mem_store.mark_sent([rows["console"].id], NOW)
    await mem_store.mark_retry([rows["hook"].id], next_at=NOW + 30, error="HTTP 503 from receiver")
    await mem_store.mark_dead([rows["mail"].id], error="550 mailbox unknown")
    source.recorder.flamewatch_event_fired(event)
    source.recorder.flamewatch_delivery_done(event, "console", True, None)
    source.recorder.flamewatch_delivery_done(event, "hook", False, "HTTP 503 from receiver")
    client = await client_for(aiohttp_client, source)

    (shown,) = await (await client.get("/api/events")).json()
    states = {d["instance"]: d for d in shown["deliveries"]}
    assert states["console"]["state"] == "sent"  # the store's word, over the hook's "delivered"
    assert states["hook"]["state"] == "pending" and states["hook"]["next_at"] == "2027-01-15T08:00:30+00:00"
    assert states["mail"] == {"instance": "mail", "state": "dead", "attempts": 1, "ref": None,
                              "error": "550 mailbox unknown"}

    outbox = {r["instance"]: r for r in await (await client.get("/api/outbox")).json()}
    assert outbox["hook"] == {"instance": "hook", **outbox_states(pending=1), "next_at": "2027-01-15T08:00:30+00:00"}
    assert outbox["mail"]["dead"] == 1 and outbox["console"]["pending"] == 0

    html = await (await client.get("/")).text()
    assert "mail: dead" in html and "550 mailbox unknown" in html and "hook: pending (retry" in html


async def test_cycles_newest_first_with_failures(aiohttp_client: Any) -> None:
    source = make_source(None, Clock())
    source.recorder.flamewatch_cycle_done(cycle(0))
    source.recorder.flamewatch_cycle_done(cycle(1, failed="timed out after 300s", skipped=2))
    client = await client_for(aiohttp_client, source)
    cycles = await (await client.get("/api/cycles")).json()
    assert [c["cycle"] for c in cycles] == [1, 0]
    assert cycles[0]["failed"] == "timed out after 300s" and cycles[0]["skipped_ticks"] == 2
    assert cycles[1]["requests"] == 12 and cycles[1]["elapsed"] == 0.4
    # The figure is a running total (issue 22 item 8): the page must not label it as this cycle's own.
    html = await (await client.get("/")).text()
    assert "Ticks skipped (total)" in html and ">Skipped ticks<" not in html


async def test_ready_needs_the_store_and_a_recent_good_cycle(aiohttp_client: Any, mem_store: Store) -> None:
    clock = Clock()
    store: list[Store | None] = [None]
    source = make_source(None, clock)
    source.store = lambda: store[0]
    client = await client_for(aiohttp_client, source)
    assert (await client.get("/-/healthy")).status == 200
    not_open = await client.get("/-/ready")
    assert not_open.status == 503 and "store not open" in await not_open.text()
    store[0] = mem_store
    assert (await client.get("/-/ready")).status == 503  # no cycle yet
    source.recorder.flamewatch_cycle_done(cycle(0, failed="FetchError: boom"))
    assert (await client.get("/-/ready")).status == 503  # a failed cycle does not count
    source.recorder.flamewatch_cycle_done(cycle(1))
    assert (await client.get("/-/ready")).status == 200
    clock.now += 3 * 60.0 + 1  # three periods without a good cycle
    stale = await client.get("/-/ready")
    assert stale.status == 503 and "more than 3 periods" in await stale.text()


async def test_token_guards_every_data_endpoint_but_not_the_page_shell(aiohttp_client: Any, mem_store: Store) -> None:
    source = make_source(mem_store, Clock())
    source.recorder.flamewatch_cycle_done(cycle(0, make_story(5, title="Secret plans", rank=1)))
    client = await client_for(aiohttp_client, source, token="s3cret")
    for path in ("/api/stories", "/api/events", "/api/outbox", "/api/cycles", "/api/health", "/metrics",
                 "/fragment"):
        response = await client.get(path)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401
        assert (await client.get(path, headers={"Authorization": "Bearer s3cret"})).status in (200, 204), path
    # The shell and its files load without the token (a browser navigation cannot send a header); the
    # shell holds no data: its script fetches /fragment with the token from the address's #token=.
    shell = await client.get("/")
    assert shell.status == 200 and 'data-version=""' in (text := await shell.text())
    assert "Secret plans" not in text and "static/page.js" in text
    for path in ("/static/page.js", "/static/style.css"):
        assert (await client.get(path)).status == 200, path
    assert (await client.post("/-/reload", json={})).status == 401
    assert (await client.get("/-/healthy")).status == 200
    assert (await client.get("/-/ready")).status == 200  # open: a good cycle just finished
    body = await (await client.get("/", headers={"Authorization": "Bearer s3cret"})).text()
    assert "Secret plans" in body and "s3cret" not in body


def test_listen_beyond_loopback_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"^fw.toml: http.listen: listening on 0.0.0.0 \(beyond loopback\) needs"):
        parse_config({"http": {"listen": "0.0.0.0:8642"}}, "fw.toml")
    monkeypatch.setenv("FW_TOKEN", "t0ken")
    config = parse_config({"http": {"listen": "0.0.0.0:8642", "token": {"env": "FW_TOKEN"}}}, "fw.toml")
    assert config.http.token is not None and "t0ken" not in repr(config)
    assert parse_config({}, "fw.toml").http.listen == "127.0.0.1:8642"
    assert parse_config({"http": {"listen": ""}}, "fw.toml").http.listen == ""
    assert listen_problem("[::1]:80", False) is None and listen_problem("localhost:0", False) is None
    assert listen_problem("example.org:80", False) is not None
    with pytest.raises(ConfigError, match="expected \"host:port\""):
        parse_config({"http": {"listen": "8642"}}, "fw.toml")
    assert parse_listen("[::1]:8642") == ("::1", 8642)


async def test_reload_calls_the_callback_and_reports_its_answer(aiohttp_client: Any) -> None:
    none = await client_for(aiohttp_client, make_source(None, Clock()))
    missing = await none.post("/-/reload", json={})
    assert missing.status == 503 and (await missing.json())["error"] == "reload not available"

    answers: list[str | None] = [None, "fw.toml: watch.top: expected a positive whole number"]
    calls = []

    async def reload() -> str | None:
        calls.append(1)
        return answers[len(calls) - 1]

    client = await client_for(aiohttp_client, make_source(None, Clock(), reload=reload))
    ok = await client.post("/-/reload", json={})
    assert ok.status == 200 and await ok.json() == {"ok": True}
    bad = await client.post("/-/reload", json={})
    assert bad.status == 400 and "watch.top" in (await bad.json())["error"]
    assert (await client.get("/-/reload")).status == 405


async def test_metrics_parse_and_count_what_the_hooks_saw(aiohttp_client: Any, mem_store: Store) -> None:
    source = make_source(mem_store, Clock())
    rec = source.recorder
    rec.flamewatch_cycle_done(cycle(0, make_story(1, rank=1)))
    rec.flamewatch_cycle_done(cycle(1, failed="boom", skipped=3))
    event = make_event(story_id=2, level=100)
    await mem_store.record_events([event], {event.key: ["hook"]}, NOW)
    rec.flamewatch_event_fired(event)
    rec.flamewatch_event_fired(make_event(story_id=2, rule="points", level=100))
    rec.flamewatch_delivery_done(event, "hook", False, "503")
    rec.flamewatch_delivery_done(event, "console", True, None)
    client = await client_for(aiohttp_client, source)
    response = await client.get("/metrics")
    assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(await response.text()) for s in family.samples}
    assert samples[("flamewatch_cycles_total", (("outcome", "ok"),))] == 1
    assert samples[("flamewatch_cycles_total", (("outcome", "failed"),))] == 1
    assert samples[("flamewatch_cycle_duration_seconds_count", ())] == 2
    assert samples[("flamewatch_skipped_ticks_total", ())] == 3
    assert samples[("flamewatch_hn_requests_total", ())] == 24
    assert samples[("flamewatch_hn_failures_total", ())] == 2
    assert samples[("flamewatch_items_fetched_total", ())] == 14
    assert samples[("flamewatch_events_fired_total", (("rule", "comments"),))] == 1
    assert samples[("flamewatch_events_fired_total", (("rule", "points"),))] == 1
    assert samples[("flamewatch_deliveries_total", (("instance", "hook"), ("outcome", "failed")))] == 1
    assert samples[("flamewatch_deliveries_total", (("instance", "console"), ("outcome", "delivered")))] == 1
    assert samples[("flamewatch_outbox_pending", (("instance", "hook"),))] == 1
    assert samples[("flamewatch_outbox_pending", (("instance", "console"),))] == 0
    assert samples[("flamewatch_outbox_dead", (("instance", "hook"),))] == 0
    assert samples[("flamewatch_last_success_timestamp_seconds", ())] == NOW
    assert ("flamewatch_partial_stories", ()) in samples


def test_recorder_rings_are_bounded() -> None:
    rec = StatusRecorder(clock=Clock())
    for n in range(200):
        rec.flamewatch_cycle_done(cycle(n))
        rec.flamewatch_event_fired(make_event(story_id=n))
    assert len(rec.cycles) == 50 and len(rec.events) == 50 and len(rec._by_key) == 50
    assert rec.cycles[-1].cycle == 199


def test_rate_and_thinning() -> None:
    assert per_hour([]) is None and per_hour([(NOW, 5)]) is None
    assert per_hour([(NOW - 7200, 0), (NOW - 3600, 100), (NOW, 160)]) == 60.0  # only the last hour counts
    points = [(float(i), i) for i in range(1000)]
    thinned = thin(points, 60)
    assert len(thinned) == 60 and thinned[0] == points[0] and thinned[-1] == points[-1]

