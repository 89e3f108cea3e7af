"""Shared fixtures: a real simulator on loopback, a real aiohttp session, a real SQLite store."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from hypothesis import settings
from fakes.webhook_receiver import FakeWebhookReceiver

from flamewatch.simulator import SimulatorServer, World
from flamewatch.hn import HNClient
from flamewatch.store import Store, open_store

# Property tests check what holds, not how fast: Hypothesis's default 200 ms deadline per example turns a
# loaded 2-core CI machine into a failure of correct code, so no deadline (timings live in benchmarks/).
settings.register_profile("flamewatch", deadline=None)
settings.load_profile("flamewatch")

#: Run the CLI exactly as a user would, with the interpreter running the tests.
FLAMEWATCH = [sys.executable, "-m", "flamewatch"]

#: The environment variable the webhook signing secret of the process tests is read from.
SECRET_ENV = "FW_FAULTS_WEBHOOK_SECRET"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh Standard Webhooks signing secret, set in :data:`SECRET_ENV` for the processes under test."""
    value = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    monkeypatch.setenv(SECRET_ENV, value)
    return value


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[FakeWebhookReceiver]:
    """A signed-webhook receiver on loopback that checks every signature with :func:`secret`."""
    async with FakeWebhookReceiver(secret) as fake:
        yield fake


@pytest.fixture(autouse=True, scope="session")
def _no_implicit_event_loop() -> None:
    # looptime's plugin calls get_event_loop() for sync tests, which on Python 3.11 creates a loop that is
    # never closed (a ResourceWarning under -W error). With no current loop set, nothing is created.
    asyncio.set_event_loop(None)


@pytest.fixture
def world() -> World:
    """A small calibrated front page (5 stories, about 300 comments)."""
    return World(seed=1, stories=5, total_comments=300)


@pytest.fixture
async def sim(world: World) -> AsyncIterator[SimulatorServer]:
    async with SimulatorServer(world) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def client(session: aiohttp.ClientSession, sim: SimulatorServer) -> HNClient:
    return HNClient(session, sim.base_url, timeout=2.0, retries=2, backoff=0.01, max_inflight=8)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with await open_store(tmp_path / "flamewatch.db") as s:
        yield s


@pytest.fixture(params=["sqlite", "postgres"])
async def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Where a store lives, once per backend: a SQLite file, or a fresh schema on the test PostgreSQL
    server (skipped with a reason when none answers, a failure under CI=true). Open it as many times as
    a test needs processes."""
    if request.param == "sqlite":
        yield str(tmp_path / "store.db")
        return
    from pgserver import fresh_schema

    async with fresh_schema() as url:
        yield url()
