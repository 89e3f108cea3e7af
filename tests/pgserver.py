"""The real PostgreSQL server the store tests use, one fresh schema per test.

The address comes from ``FLAMEWATCH_TEST_POSTGRES`` (default: the local server with trust
authentication). When no server answers the tests are skipped with the reason, except under ``CI=true``,
where a missing server is a failure: the PostgreSQL backend must not go untested there.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    return os.environ.get("FLAMEWATCH_TEST_POSTGRES", DEFAULT_URL)


_reachable: dict[str, str | None] = {}


async def _probe(url: str) -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def require_server() -> str:
    """The server's URL, or skip (fail under CI=true) when it does not answer."""
    url = server_url()
    if url not in _reachable:
        _reachable[url] = await _probe(url)
    problem = _reachable[url]
    if problem is not None:
        where = urlsplit(url).hostname
        message = f"no PostgreSQL server at {where} (FLAMEWATCH_TEST_POSTGRES): {problem}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def with_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}schema={schema}"


@asynccontextmanager
async def fresh_schema() -> AsyncIterator[Callable[[], str]]:
    """A unique schema name for one test (dropped afterwards); yields a function giving its store URL."""
    url = await require_server()
    schema = f"fwtest_{uuid.uuid4().hex[:12]}"
    try:
        yield lambda: with_schema(url, schema)
    finally:
        conn = await asyncpg.connect(url, timeout=5)
        try:
            await asyncio.wait_for(conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'), 30)
        finally:
            await conn.close()
