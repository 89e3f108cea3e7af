"""The HTTP face over a store that fails: a clear 503 on every endpoint that needs the store, one log line
naming the store and the error (at most one a minute, no traceback), and the server still up.

Real servers on loopback; the store is a real SQLite file, broken under the running App by overwriting its
bytes (then put back), or a real store whose connection was closed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import pytest
from fakes.status_app import running_face

from flamewatch.http.api import Source
from flamewatch.http.recorder import StatusRecorder
from flamewatch.http.server import HttpServer
from flamewatch.http.storefail import REPORT_EVERY
from flamewatch.simulator import World
from flamewatch.store import open_store

#: Every path that reads the store, and how its 503 reads.
STORE_PATHS = ("metrics", "api/events", "api/outbox", "api/stories", "fragment?since=x", "")


@contextmanager
def corrupted(store: Path) -> Iterator[None]:
    """Every byte of ``store``, its WAL and its shared memory overwritten (same files, same inodes), and
    put back on leaving: SQLite reads "file is not a database" meanwhile."""
    saved = {}
    for path in (store, Path(f"{store}-wal"), Path(f"{store}-shm")):
        if path.exists():
            saved[path] = path.read_bytes()
            with open(path, "r+b") as fh:
                fh.write(b"\x55" * len(saved[path]))
    try:
        yield
    finally:
        for path, data in saved.items():
            with open(path, "r+b") as fh:
                fh.write(data)


def said(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The warnings and errors of the HTTP face and aiohttp (the dispatcher meets the broken store too, and
    says so in its own words)."""
    return [r for r in caplog.records
            if r.name.startswith(("flamewatch.http", "aiohttp")) and r.levelno >= logging.WARNING]


async def test_a_corrupt_store_answers_503_everywhere_in_one_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "fw.db"
    world = World(seed=3, stories=4, total_comments=200)
    caplog.set_level(logging.INFO)
    async with running_face(store, world, top=4) as face, aiohttp.ClientSession() as http:
        await face.cycle()
        with corrupted(store):
            for path in (*STORE_PATHS, *STORE_PATHS):
                async with http.get(face.url + path) as response:
                    body = await response.text()
                    assert response.status == 503, (path, body)
                    assert response.headers["Cache-Control"] == "no-store"
                    assert f"the store cannot be read: store {store}: file is not a database" in body, path
                    if path.startswith("api/"):
                        assert (await response.json())["error"].endswith("file is not a database")
            async with http.get(face.url + "-/healthy") as response:
                assert response.status == 200  # the server is up, only the store is not
            async with http.get(face.url + "api/cycles") as response:
                assert response.status == 200  # the recorder's own data needs no store
        async with http.get(face.url + "metrics") as response:
            assert response.status == 200 and "flamewatch_outbox_pending" in await response.text()
        async with http.get(face.url) as response:
            assert response.status == 200 and "Watched stories" in await response.text()
    (line,) = said(caplog)  # twelve failed requests, one line
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert line.getMessage() == (f"HTTP GET /metrics: store {store}: file is not a database; answering 503")


@pytest.mark.looptime(start=1000.0, end=1000.0 + 3600.0, idle_timeout=10.0)
async def test_a_closed_store_is_said_again_after_a_minute_with_the_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await open_store(tmp_path / "fw.db")
    await store.close()  # a request that comes while the daemon closes its store
    source = Source(recorder=StatusRecorder(), store=lambda: store, period=lambda: 60.0,
                    instances=lambda: ["hook"])
    server = HttpServer(source, "127.0.0.1", 0)
    await server.start()
    caplog.set_level(logging.INFO)
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(3):
                async with http.get(server.url + "metrics") as response:
                    assert response.status == 503
                    assert await response.text() == f"the store cannot be read: store {store.path} is closed\n"
            await asyncio.sleep(REPORT_EVERY)
            async with http.get(server.url + "api/outbox") as response:
                assert response.status == 503
    finally:
        await server.stop()
    assert [r.getMessage() for r in said(caplog)] == [
        f"HTTP GET /metrics: store {store.path} is closed; answering 503",
        f"HTTP GET /api/outbox: store {store.path} is closed; answering 503 (2 more such answers since the last "
        "line)",
    ]
