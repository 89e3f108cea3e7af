"""The HTTP face's edges over real HTTP: Host names (DNS rebinding), cross-site reloads, idle and surplus
connections, the accept-error log, bounded reads of a big outbox, and control characters in HN text."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from flamewatch.config import parse_config
from flamewatch.http import api
from flamewatch.http.api import Source
from flamewatch.http.guard import allowed_host_set
from flamewatch.http.recorder import StatusRecorder
from flamewatch.http.server import HttpServer, make_web_app
from flamewatch.http.transport import AcceptErrorFilter, connection_cap
from flamewatch.store import Store, open_store
from flamewatch.testing import make_event, make_story
from flamewatch.testing import outbox_states

NOW = 1_800_000_000.0


@pytest.fixture
async def mem_store() -> AsyncIterator[Store]:
    async with await open_store(":memory:") as store:
        yield store


def make_source(store: Store | None = None, **kw: Any) -> Source:
    return Source(recorder=StatusRecorder(clock=lambda: NOW), store=lambda: store, period=lambda: 60.0,
                  instances=lambda: ["hook"], clock=lambda: NOW, **kw)


async def client_for(aiohttp_client: Any, source: Source, **kw: Any) -> TestClient[Any, Any]:
    client: TestClient[Any, Any] = await aiohttp_client(make_web_app(source, **kw))
    return client


# --- Host names ------------------------------------------------------------------------------------


async def test_only_expected_host_names_are_answered(aiohttp_client: Any) -> None:
    client = await client_for(aiohttp_client, make_source())
    port = client.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", "LOCALHOST", "localhost."):
        assert (await client.get("/api/health", headers={"Host": host})).status == 200, host
    for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}", "[::2]:80"):
        for path in ("/", "/api/stories", "/metrics", "/fragment", "/static/page.js"):
            refused = await client.get(path, headers={"Host": host})
            assert refused.status == 421, (host, path)
            assert "[http] allowed_hosts" in await refused.text()
        assert (await client.post("/-/reload", json={}, headers={"Host": host})).status == 421
        # Probes may name the machine any way; the health checks tell nothing worth a rebinding.
        assert (await client.get("/-/healthy", headers={"Host": host})).status == 200


async def test_allowed_hosts_add_names_and_a_star_allows_any(aiohttp_client: Any) -> None:
    hosts = allowed_host_set("0.0.0.0", ["status.example.org"])
    assert hosts is not None and "0.0.0.0" not in hosts and "localhost" in hosts
    client = await client_for(aiohttp_client, make_source(), hosts=hosts)
    assert (await client.get("/api/health", headers={"Host": "Status.Example.org:8642"})).status == 200
    assert (await client.get("/api/health", headers={"Host": "evil.example"})).status == 421
    assert allowed_host_set("::1") == allowed_host_set("127.0.0.1")
    assert "flamewatch.lan" in (allowed_host_set("flamewatch.lan") or ())
    anything = await client_for(aiohttp_client, make_source(), hosts=allowed_host_set("127.0.0.1", ["*"]))
    assert (await anything.get("/api/health", headers={"Host": "evil.example"})).status == 200
    config = parse_config({"http": {"allowed_hosts": ["status.example.org"]}}, "fw.toml")
    assert config.http.allowed_hosts == ("status.example.org",)


# --- POST /-/reload ----------------------------------------------------------------------------------


async def test_reload_refuses_cross_site_requests_and_form_posts(aiohttp_client: Any) -> None:
    calls: list[int] = []

    async def reload() -> str | None:
        calls.append(1)
        return None

    client = await client_for(aiohttp_client, make_source(reload=reload))
    origin = f"http://127.0.0.1:{client.port}"
    refused = [
        ({"data": {"x": "1"}}, "Content-Type: application/json"),  # the form a foreign page can post
        ({"data": "{}", "headers": {"Content-Type": "text/plain"}}, "application/json"),
        ({}, "application/json"),
        ({"json": {}, "headers": {"Origin": "http://evil.example"}}, "another origin"),
        ({"json": {}, "headers": {"Origin": "null"}}, "another origin"),
        ({"json": {}, "headers": {"Sec-Fetch-Site": "cross-site"}}, "cross-site"),
        ({"json": {}, "headers": {"Sec-Fetch-Site": "same-site"}}, "same-site"),
    ]
    for kwargs, why in refused:
        response = await client.post("/-/reload", **kwargs)
        assert response.status == 403, kwargs
        assert why in (await response.json())["error"], kwargs
    assert calls == []
    for headers in ({}, {"Origin": origin, "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}):
        assert (await client.post("/-/reload", json={}, headers=headers)).status == 200, headers
    assert len(calls) == 3


# --- connections ----------------------------------------------------------------------------------


async def _raw_get(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return reader, writer


async def test_idle_connections_are_closed_and_surplus_ones_refused() -> None:
    server = HttpServer(make_source(), "127.0.0.1", 0, idle_timeout=0.3, cap=3)
    await server.start()
    try:
        held = [await _raw_get(server.port) for _ in range(3)]
        await asyncio.sleep(0)  # let the server see them
        reader, writer = await _raw_get(server.port)
        async with asyncio.timeout(10):  # a bound, not a wait: the answer comes at once
            answer = await reader.read()
        assert answer.startswith(b"HTTP/1.1 503") and b"too many connections" in answer
        writer.close()
        assert server.refused == 1
        # Idle ones (no request ever sent) are closed by the server: each read ends with EOF.
        async with asyncio.timeout(10):
            for idle_reader, _ in held:
                assert await idle_reader.read() == b""
        for _, idle_writer in held:
            idle_writer.close()
        # Room again: a real request is answered.
        reader, writer = await _raw_get(server.port)
        writer.write(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        async with asyncio.timeout(10):
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()
    finally:
        await server.stop()


def test_the_connection_cap_leaves_most_descriptors_to_the_rest(monkeypatch: pytest.MonkeyPatch) -> None:
    import resource

    monkeypatch.setattr(resource, "getrlimit", lambda _: (1024, 4096))
    assert connection_cap() == 256 and connection_cap(100) == 100
    monkeypatch.setattr(resource, "getrlimit", lambda _: (256, 4096))
    assert connection_cap() == 64


def test_repeated_accept_errors_are_summed_up_not_repeated() -> None:
    now = [0.0]
    quiet = AcceptErrorFilter(every=60.0, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            info = sys.exc_info()
        return logging.LogRecord("asyncio", logging.ERROR, __file__, 1, msg, None, info)

    accept = "socket.accept() out of system resource\nexception: OSError(24, 'Too many open files')"
    assert quiet.filter(record(accept))  # the first one, with its traceback
    passed = 0
    for _ in range(5000):
        now[0] += 0.001
        passed += quiet.filter(record(accept))
    assert passed == 0
    assert quiet.filter(record("something else entirely"))
    now[0] += 60.0
    summary = record(accept)
    assert quiet.filter(summary)
    assert "(5000 more like it since the last such line)" in summary.getMessage() and summary.exc_info is None


# --- a big outbox ------------------------------------------------------------------------------------


async def test_a_big_outbox_is_counted_not_loaded(aiohttp_client: Any, mem_store: Store,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api, "OPEN_ROWS", 10)
    events = [make_event(story_id=n, level=100, at=datetime.fromtimestamp(NOW + n, UTC)) for n in range(1, 41)]
    await mem_store.record_events(events, {e.key: ["hook", "mail"] for e in events}, NOW)
    dead = [row.id for row in await mem_store.outbox("pending", limit=6) if row.instance == "mail"]
    await mem_store.mark_dead(dead, error="550")
    client = await client_for(aiohttp_client, make_source(mem_store))
    outbox = {r["instance"]: r for r in await (await client.get("/api/outbox")).json()}
    assert outbox["hook"]["pending"] == 40 and outbox["mail"] == {
        "instance": "mail", **outbox_states(pending=37, dead=3), "next_at": outbox["hook"]["next_at"]}
    shown = await (await client.get("/api/events")).json()
    # The newest 10 rows: the 5 newest events, each with both instances.
    assert [e["story"]["id"] for e in shown] == [40, 39, 38, 37, 36]
    text = await (await client.get("/metrics")).text()
    samples = {(s.name, tuple(s.labels.items())): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("flamewatch_outbox_pending", (("instance", "mail"),))] == 37
    assert samples[("flamewatch_outbox_dead", (("instance", "mail"),))] == 3


# --- control characters ------------------------------------------------------------------------------

NASTY = "Evil\x00 \x1b[31mred\x1b[0m \x07bell \u202etxt.exe\u202c \u2066iso\u2069\u200f\u2028end\tand tab"


async def test_control_and_bidi_characters_never_reach_the_page_or_the_json(aiohttp_client: Any,
                                                                           mem_store: Store) -> None:
    source = make_source(mem_store)
    story = make_story(3, title=NASTY, rank=1, url="https://ex\u202eample.org/x")
    source.recorder.flamewatch_cycle_done(_cycle(story))
    event = make_event(story, level=100)
    await mem_store.record_events([event], {event.key: ["hook"]}, NOW)
    source.recorder.flamewatch_event_fired(event)
    client = await client_for(aiohttp_client, source)
    bodies = [await (await client.get(path)).text() for path in ("/", "/fragment", "/api/stories", "/api/events")]
    for body in bodies:
        for bad in ("\x00", "\x1b", "\x07", "\u202e", "\u202c", "\u2066", "\u2069", "\u200f", "\u2028",
                    "\\u0000", "\\u001b", "\\u0007", "\\u202e", "\\u2028"):
            assert bad not in body, (bad, body[:200])
    (title,) = [s["title"] for s in await (await client.get("/api/stories")).json()]
    assert title == "Evil [31mred[0m bell txt.exe isoend and tab"
    assert api.shown({"a": ["x\x00y", 3, None]}) == {"a": ["xy", 3, None]}
    # Joiners stay: emoji sequences and some scripts need them.
    assert api.shown("caf\u00e9 \U0001f468\u200d\U0001f469 ok") == "caf\u00e9 \U0001f468\u200d\U0001f469 ok"


def _cycle(*stories: Any) -> Any:
    from flamewatch.events import CycleStats

    return CycleStats(cycle=0, started_at=datetime.fromtimestamp(NOW, UTC), elapsed=0.1, stories=len(stories),
                      requests=1, errors=0, partial=0, events=0, skipped_ticks=0, failed=None, new_items=0,
                      counted=tuple(stories))


async def test_held_connections_cannot_starve_the_daemon_of_descriptors() -> None:
    """A demo limited to 256 descriptors, 300 connections opened to its face and held: the cycles go on
    fetching HN, the surplus is refused, and the log stays quiet."""
    import os
    import resource
    import signal

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "demo", "--duration", "8", "--period", "1", "--http", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, preexec_fn=low_limit,
    )
    assert proc.stdout is not None and proc.stderr is not None
    held: list[asyncio.StreamWriter] = []
    try:
        async with asyncio.timeout(60):  # a bound for a stuck demo, not a wait
            port = 0
            while not port:
                line = (await proc.stdout.readline()).decode()
                assert line, "the demo ended before printing its status page"
                if line.startswith("status page: "):
                    port = int(line.split()[2].rstrip("/").rsplit(":", 1)[1])
            for _ in range(300):
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except ConnectionRefusedError:  # the listen queue is full for a moment: fine, go on
                    continue
                held.append(writer)
            after_flood, err = await proc.communicate()
    finally:
        for writer in held:
            writer.close()
        if proc.returncode is None:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-2000:]
    cycles = [line for line in after_flood.decode().splitlines() if line.startswith("  cycle ")]
    # The flood was held from before cycle 0 to the end; without the cap, every cycle from the moment
    # descriptors ran out counted 0 stories (each HN request failed with "Too many open files").
    assert len(cycles) >= 4 and any(" 0 stories" not in line for line in cycles[-3:]), cycles
    assert b"Too many open files" not in err and len(err) < 20_000, err.decode()[-2000:]
