"""What is particular to the PostgreSQL store: opening, its schema checks, and errors without secrets.

The contract itself (keys, outbox, claims, history, state) runs on both backends in test_store.py and
test_store_shared.py. These tests use the real server (skipped with a reason when none answers, a
failure under CI=true), each in a schema of its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from pgserver import fresh_schema, require_server, server_url

from flamewatch.store import StoreError, open_store
from flamewatch.store.postgres import SCHEMA_VERSION, PostgresStore
from flamewatch.testing import make_event, make_story


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_schema() as url:
        yield url()


def server_address() -> str:
    """``host:port/db`` of the test server."""
    return server_url().split("@", 1)[-1].split("?")[0].split("://", 1)[-1]


def schema_of(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


async def test_open_creates_the_schema_and_reopens_it(pg_url: str) -> None:
    async with await open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        assert "schema=" not in store.path and store.location.schema == schema_of(pg_url)
        event = make_event(make_story(1))
        await store.record_events([event], {event.key: ["hook"]}, now=1.0)
    async with await open_store(pg_url) as again:  # the second open migrates nothing, keeps the rows
        assert await again.fired_keys() == {event.key}
    conn = await asyncpg.connect(server_url())
    try:
        version = await conn.fetchval(f'SELECT version FROM "{schema_of(pg_url)}".schema_version')
    finally:
        await conn.close()
    assert version == SCHEMA_VERSION


async def test_a_schema_newer_than_the_code_is_refused_in_one_line(pg_url: str) -> None:
    async with await open_store(pg_url):
        pass
    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'UPDATE "{schema_of(pg_url)}".schema_version SET version = 99')
    finally:
        await conn.close()
    with pytest.raises(StoreError, match=r"schema version 99 is newer than this flamewatch supports") as info:
        await open_store(pg_url)
    assert "\n" not in str(info.value)


async def test_a_schema_holding_other_tables_is_refused(pg_url: str) -> None:
    conn = await asyncpg.connect(server_url())
    try:
        await conn.execute(f'CREATE SCHEMA "{schema_of(pg_url)}"')
        await conn.execute(f'CREATE TABLE "{schema_of(pg_url)}".invoices (id int)')
    finally:
        await conn.close()
    with pytest.raises(StoreError, match="already has tables that are not flamewatch's"):
        await open_store(pg_url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://nobody:s3cret@127.0.0.1:5432/test", 'role "nobody" does not exist'),
        ("postgresql://postgres:s3cret@127.0.0.1:1/test", "127.0.0.1:1"),
        ("postgresql://postgres:s3cret@127.0.0.1:5432/test?schema=bad-name", "schema 'bad-name'"),
        ("postgresql://postgres:s3cret@[::1/test", "bad URL"),
        # A '#' or '/' in a password ends the address early: the parser then names the password's pieces.
        ("postgresql://postgres:s3cret#x@127.0.0.1/test", "percent-encode"),
        ("postgresql://postgres:s3cret/x@127.0.0.1/test", "percent-encode"),
        ("postgresql://postgres:12#s3cret@127.0.0.1/test", "percent-encode"),
    ],
)
async def test_a_wrong_url_is_one_line_without_the_password(url: str, expected: str) -> None:
    if "nobody" in url:  # a server must be there to refuse the login
        await require_server()
        url = url.replace("127.0.0.1:5432/test", server_address())
    with pytest.raises(StoreError) as info:
        await open_store(url)
    message = str(info.value)
    assert expected in message
    assert "s3cret" not in message and "\n" not in message


async def test_an_unencoded_at_in_the_password_stays_in_the_password(pg_url: str) -> None:
    """Split at the last '@' as flamewatch shows it, never '<rest of the password>@host' looked up in DNS."""
    from flamewatch.store.postgres import parse_location

    location = parse_location("postgresql://me:s3@cr@t@db.example:5433/x?schema=s")
    assert location.display == "postgresql://me@db.example:5433/x"
    assert location.dsn == "postgresql://me:s3%40cr%40t@db.example:5433/x"
    assert parse_location("postgresql://me:a%40b@h/x").dsn == "postgresql://me:a%40b@h/x"  # encoded stays so
    # The server is reached (trust authentication ignores the password) and the store opens.
    user, rest = pg_url.split("://", 1)[1].split("@", 1)
    async with await open_store(f"postgresql://{user.split(':')[0]}:s3@cret@{rest}") as store:
        assert await store.outbox_counts()
    await require_server()
    with pytest.raises(StoreError) as info:  # a role the server refuses: its word, not a DNS error
        await open_store(f"postgresql://nobody:s3@cret@{server_address()}")
    assert 'role "nobody" does not exist' in str(info.value) and "s3" not in str(info.value)


def run_check(tmp_path: Path, url: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "fw.toml"
    config.write_text('[store]\nurl = { env = "FW_TEST_DB_URL" }\n')
    config.chmod(0o600)  # readable by others would add a warning line
    env = {**os.environ, "FW_TEST_DB_URL": url}
    return subprocess.run([sys.executable, "-m", "flamewatch", "-c", str(config), "check"],
                          check=False, capture_output=True, text=True, timeout=60, env=env)


async def test_check_connects_to_the_store_url_and_a_wrong_password_is_one_line(tmp_path: Path, pg_url: str) -> None:
    ok = run_check(tmp_path, pg_url)
    assert ok.returncode == 0, ok.stderr
    assert "store: postgresql://" in ok.stdout and "no leader running" in ok.stdout
    bad = run_check(tmp_path, f"postgresql://nobody:hunter2@{server_address()}")
    assert bad.returncode == 2  # a configuration mistake (README): the URL's user or password is wrong
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flamewatch: error: cannot open store postgresql://nobody@")
    assert "hunter2" not in bad.stderr + bad.stdout
    # No such database: a mistake in the URL too. A server that does not answer is a runtime failure (1).
    host = server_address().split("/")[0]
    assert run_check(tmp_path, f"postgresql://{host}/no_such_database_here").returncode == 2
    down = run_check(tmp_path, "postgresql://127.0.0.1:9/test")
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1, down.stderr


async def test_once_beside_a_leader_is_refused_in_one_line_with_the_readme_status(tmp_path: Path, pg_url: str) -> None:
    async with await open_store(pg_url) as store:
        assert isinstance(store, PostgresStore)
        lock = store.instance_lock("pid 1 on elsewhere")
        await lock.acquire(wait=False)
        try:
            config = tmp_path / "fw.toml"
            config.write_text('[store]\nurl = { env = "FW_TEST_DB_URL" }\n')
            config.chmod(0o600)
            env = {**os.environ, "FW_TEST_DB_URL": pg_url}
            once = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "flamewatch", "-c", str(config), "once", "--api-url",
                                 "http://127.0.0.1:9/v0"], check=False, capture_output=True, text=True, timeout=60,
                env=env)
        finally:
            await lock.release()
    assert once.returncode == 2, once.stderr
    (line,) = once.stderr.strip().splitlines()
    assert "is led by another" in line and "pid 1 on elsewhere" in line
