"""The test kit plugin authors get in ``flamewatch.testing``: the fake service base and the run helper.

Each helper is checked for what a plugin's tests rely on: the fake records what reached it and misbehaves
exactly on cue; ``run_until_delivered`` drives a notifier through flamewatch itself (simulator, cycle,
outbox, retries) and reports every attempt.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from flamewatch import Event, Notifier, raise_for_http_status
from flamewatch.testing import FakeService, RecordingNotifier, plugin_offering, run_until_delivered


class Inbox(FakeService):
    """A fake taking JSON posts on /inbox."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[Any] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/inbox", self.take)

    async def take(self, request: web.Request) -> web.Response:
        self.posts.append(await request.json())
        return web.json_response({"ok": True})


class InboxNotifier(Notifier):
    """A minimal notifier posting each event's key to an :class:`Inbox`."""

    type_name = "inbox"

    @dataclass(frozen=True)
    class Options:
        url: str

    async def send(self, event: Event) -> None:
        async with self.ctx.session.post(f"{self.options.url}/inbox", json={"key": event.key}) as response:
            raise_for_http_status(response.status, "inbox", retry_after=response.headers.get("Retry-After"))


async def test_a_fake_records_every_request_and_refuses_on_cue(session: aiohttp.ClientSession) -> None:
    async with Inbox() as inbox:
        assert inbox.url.startswith("http://127.0.0.1:")
        inbox.fail_next(1, status=429, retry_after=2.5, body={"error": "slow down"})
        inbox.fail_next(1, status=503, body="busy")
        answers = []
        for n in range(3):
            async with session.post(f"{inbox.url}/inbox?n={n}", json={"n": n}) as response:
                answers.append((response.status, response.headers.get("Retry-After"), await response.text()))
    assert answers[0] == (429, "3", '{"error": "slow down"}')  # Retry-After in whole seconds, rounded up
    assert answers[1][::2] == (503, "busy") and answers[2][0] == 200
    assert inbox.posts == [{"n": 2}]  # refused requests never reach the handler
    assert [(r.status, r.body, r.query) for r in inbox.requests] == [
        (429, {"n": 0}, {"n": "0"}), (503, {"n": 1}, {"n": "1"}), (200, {"n": 2}, {"n": "2"})]
    assert [r.status for r in inbox.rejected] == [429, 503]


async def test_a_fault_can_pick_its_requests(session: aiohttp.ClientSession) -> None:
    async with Inbox() as inbox:
        inbox.fail_next(1, status=500, when=lambda request: request.query.get("n") == "1")
        statuses = []
        for n in range(3):
            async with session.post(f"{inbox.url}/inbox?n={n}", json={}) as response:
                statuses.append(response.status)
    assert statuses == [200, 500, 200]


class ShapedInbox(Inbox):
    """A fake whose refusals are in its service's shape and whose limit applies to one kind of request."""

    def refusal(self, status: int, retry_after: float | str | None) -> tuple[Any, dict[str, str]]:
        return {"ok": False, "retry_after": retry_after}, {"X-Limit": "inbox"}

    def limited(self, request: web.Request) -> bool:
        return request.query.get("kind") == "message"


async def test_a_fake_shapes_its_refusals_and_says_what_its_limit_applies_to(session: aiohttp.ClientSession) -> None:
    async with ShapedInbox() as inbox:
        inbox.fail_next(1, retry_after=4)
        answers = []
        for kind in ("ping", "message", "message"):
            async with session.post(f"{inbox.url}/inbox?kind={kind}", json={}) as response:
                answers.append((response.status, response.headers.get("X-Limit"), await response.json()))
    assert answers[0][0] == 200 and answers[2][0] == 200  # the ping is not limited: the message takes the 429
    assert answers[1] == (429, "inbox", {"ok": False, "retry_after": 4})


@pytest.mark.looptime(start=0)
async def test_a_hang_is_left_to_the_clients_timeout(session: aiohttp.ClientSession) -> None:
    async with Inbox() as inbox:
        inbox.hang_next(1)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):  # passes on the fake loop clock, at once
                await session.post(f"{inbox.url}/inbox", json={})
        async with session.post(f"{inbox.url}/inbox", json={"after": True}) as response:
            assert response.status == 200
        await inbox.wait_until(lambda: len(inbox.posts) == 1)
    assert inbox.posts == [{"after": True}]


async def test_run_until_delivered_drives_a_notifier_through_flamewatch(tmp_path: Path) -> None:
    async with Inbox() as inbox:
        inbox.fail_next(1, status=503)
        run = await run_until_delivered({"type": "inbox", "url": inbox.url}, plugins=[plugin_offering(InboxNotifier)],
                                        deliveries=2, store_path=tmp_path / "fw.db",
                                        settings={"delivery": {"retry_base": 0.01, "retry_cap": 0.05}})
    assert len(run.story_ids) == 2 and len(run.delivered) == 2
    assert sorted(e.story.id for e in run.delivered) == run.story_ids  # one event per story, each once
    assert run.failures == ["inbox answered HTTP 503"]  # the refusal, retried by the outbox
    assert sorted(p["key"] for p in inbox.posts) == sorted(e.key for e in run.delivered)
    assert {a.notifier for a in run.attempts} == {"under-test"} and run.took > 0


async def test_run_until_delivered_reports_a_notifier_that_never_delivers(tmp_path: Path) -> None:
    class Refusing(RecordingNotifier):
        type_name = "refusing"

    with pytest.raises(AssertionError, match=r"^0 of 1 events delivered within 1.0s; the attempts failed with: "
                                             r"under-test: refused on purpose$"):
        await run_until_delivered({"type": "refusing", "fail_times": 1000, "permanent": True},
                                  plugins=[plugin_offering(Refusing)], store_path=tmp_path / "fw.db", timeout=1.0)
