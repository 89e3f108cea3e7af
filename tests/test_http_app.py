"""The HTTP face of a real App on the simulator, and ``flamewatch status`` reading it and its store."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
from fakes.status_app import running_face
from prometheus_client.parser import text_string_to_metric_families

from flamewatch.cli.status import gather_status, render
from flamewatch.config import parse_config
from flamewatch.simulator import World
from flamewatch.store.filelock import lock_holder
from flamewatch.store.sqlite import SQLiteStore
from flamewatch.errors import ConfigError, StoreError
from flamewatch.http.server import start_http
from flamewatch.testing import outbox_states, closed_port

import pytest


async def test_a_running_app_serves_ready_stories_metrics_and_events(tmp_path: Path) -> None:
    world = World(seed=3, stories=8, total_comments=400)
    async with running_face(tmp_path / "fw.db", world) as face, aiohttp.ClientSession() as http:
        assert face.url.startswith("http://127.0.0.1:") and not face.url.endswith(":0/")
        async with http.get(face.url + "-/ready") as response:
            assert response.status == 503  # store open, no cycle yet
        stats = await face.cycle()
        async with http.get(face.url + "-/ready") as response:
            assert response.status == 200
        async with http.get(face.url + "api/stories") as response:
            stories = await response.json()
        assert [s["rank"] for s in stories] == list(range(1, 9))
        assert {s["title"] for s in stories} == {world.items[s["id"]]["title"] for s in stories}
        assert any(s["levels"] for s in stories)
        async with http.get(face.url + "api/events") as response:
            events = await response.json()
        assert len(events) == stats.events > 0
        assert all(d["instance"] == "hook" and d["state"] == "pending" and d["next_at"] for e in events
                   for d in e["deliveries"])
        async with http.get(face.url + "metrics") as response:
            text = await response.text()
        values = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples if not s.labels}
        assert values["flamewatch_hn_requests_total"] == stats.requests > 0
        assert values["flamewatch_tick_lateness_seconds_count"] == 0  # no watcher here: cycles run by hand
        pending = {s.labels["instance"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                   if s.name == "flamewatch_outbox_pending"}
        assert pending == {"hook": stats.events}


async def test_status_reads_the_store_and_the_daemon(tmp_path: Path) -> None:
    store = tmp_path / "fw.db"
    world = World(seed=5, stories=6, total_comments=300)
    async with running_face(store, world, top=6) as face:
        await face.cycle()
        config = parse_config({"store": {"path": str(store)}}, "fw.toml")
        listen = f"127.0.0.1:{face.server.port}"
        status = await gather_status(config, http=listen)
        # The running App is the store's one sender: it holds the store's lock.
        assert status["daemon"]["answering"] is True
        assert status["held_by"] is not None and status["held_by"].startswith(f"pid {os.getpid()} on ")
        assert [s["rank"] for s in status["stories"]] == list(range(1, 7))
        assert status["stories"][0]["title"] == world.items[status["stories"][0]["id"]]["title"]
        assert status["outbox"]["pending"] == status["outbox"]["by_instance"]["hook"]["pending"] > 0
        text = render(status)
        assert "answers: ready" in text and "daemon: holds the store (pid" in text
    # The daemon is gone: the store alone still tells the counts of the last cycle.
    alone = await gather_status(config, http=f"127.0.0.1:{closed_port()}")
    assert alone["daemon"]["answering"] is False and alone["held_by"] is None
    text = render(alone)
    assert alone["running"] is False and "daemon: not running" in text
    assert sorted(s["id"] for s in alone["stories"]) == sorted(s["id"] for s in status["stories"])
    assert all("title" not in s for s in alone["stories"])
    assert "api: not answering" in text
    # Issue 22 item 8: no placeholder on every line, one note instead.
    assert "ask the daemon" not in text and text.count("titles and ranks only while") == 1


async def test_status_cli_json_and_a_missing_store(tmp_path: Path) -> None:
    store = tmp_path / "fw.db"
    async with await SQLiteStore.open(store):
        pass
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "status", "--json", "--store", str(store), "--http",
        f"127.0.0.1:{closed_port()}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 1, err  # no daemon runs: said in the JSON, and by the status
    status = json.loads(out)
    assert status["stories"] == [] and status["outbox"]["pending"] == 0 and status["daemon"]["answering"] is False
    assert status["running"] is False
    missing = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "status", "--store", str(tmp_path / "none.db"),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await missing.communicate()
    assert missing.returncode == 1
    assert err.decode().strip() == (
        f"flamewatch: error: cannot open store {tmp_path / 'none.db'}: no such file (nothing has run with it yet)")
    assert not (tmp_path / "none.db").exists()


async def test_readonly_store_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "fw.db"
    async with await SQLiteStore.open(path):
        pass
    async with await SQLiteStore.open_readonly(path) as store:
        assert await store.outbox_counts() == outbox_states()
        with pytest.raises(StoreError, match="readonly"):
            await store.purge_done(0.0)
    assert lock_holder(str(path)) is None


async def test_listen_override_beyond_loopback_without_token_is_refused(tmp_path: Path) -> None:
    world = World(seed=1, stories=2, total_comments=20)
    async with running_face(tmp_path / "fw.db", world) as face:
        with pytest.raises(ConfigError, match=r"^http.listen: listening on 0.0.0.0 \(beyond loopback\) needs"):
            await start_http(face.app, listen="0.0.0.0:0")
        assert await start_http(face.app, listen="") is None


async def test_check_refuses_a_wide_listen_without_token_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "fw.toml"
    config.write_text(f'[http]\nlisten = "0.0.0.0:{closed_port()}"\n')  # never the default port: it may be taken
    config.chmod(0o600)  # readable by others would add a warning line
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "-c", str(config), "check",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "http.listen: listening on 0.0.0.0 (beyond loopback) needs a bearer token" in lines[0]


async def test_run_serves_http_while_it_watches_and_stops_cleanly(tmp_path: Path) -> None:
    world = World(seed=2, stories=4, total_comments=60)
    port = closed_port()
    config = tmp_path / "fw.toml"
    config.write_text('[watch]\ntop = 4\nperiod = "1s"\n[[notifiers]]\ntype = "console"\nstream = "stdout"\n')
    async with running_face(tmp_path / "unused.db", world) as face:
        api_url = face.app.api_url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "flamewatch", "-c", str(config), "run", "--api-url", api_url, "--store",
            str(tmp_path / "fw.db"), "--http", f"127.0.0.1:{port}",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        try:
            async with aiohttp.ClientSession() as http, asyncio.timeout(30):
                while True:  # the daemon answers once it has started; then ready after its first cycle
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/-/ready") as response:
                            if response.status == 200:
                                break
                    except aiohttp.ClientConnectionError:
                        pass
                    await asyncio.sleep(0.1)
                async with http.get(f"http://127.0.0.1:{port}/api/stories") as response:
                    assert len(await response.json()) == 4
            proc.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(proc.communicate(), 30)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert f"status page at http://127.0.0.1:{port}/" in err.decode()


async def test_health_and_metrics_say_the_instance_role_and_who_holds_the_store(tmp_path: Path) -> None:
    world = World(seed=1, stories=3, total_comments=30)
    async with running_face(tmp_path / "fw.db", world) as face, aiohttp.ClientSession() as http:
        await face.cycle()
        async with http.get(face.url + "api/health") as response:
            health = await response.json()
        assert health["role"] == "single" and health["ready"] is True
        assert health["leader"].startswith(f"pid {os.getpid()} on ")  # a single instance holds its store's lock
        async with http.get(face.url + "metrics") as response:
            text = await response.text()
        roles = {s.labels["role"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "flamewatch_leader"}
        assert roles == {"single": 1.0}
        # A standby (another instance leads a shared store) is not ready, and says why.
        face.server.source.role = lambda: "standby"
        async with http.get(face.url + "api/health") as response:
            standby = await response.json()
        assert standby["ready"] is False and standby["reason"].startswith("standby")
        async with http.get(face.url + "metrics") as response:
            text = await response.text()
        roles = {s.labels["role"]: s.value for f in text_string_to_metric_families(text) for s in f.samples
                 if s.name == "flamewatch_leader"}
        assert roles == {"standby": 0.0}
