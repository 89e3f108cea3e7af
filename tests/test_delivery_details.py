"""Delivery details: Retry-After as an HTTP-date and past max_age, Slack's pacing outside the attempt
timeout, configuration-shaped failures as permanent, invisible characters stripped, event keys as
Slack message metadata. Real servers on loopback (the fake Slack API), a real store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from email.utils import format_datetime
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.slack_api import FakeSlack

from flamewatch import MemoryState, NotifierContext, PermanentDeliveryError, Secret, parse_retry_after
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.dispatch.attempt import attempt
from flamewatch.notifiers.slack import SlackNotifier, SlackOptions
from flamewatch.rules import Evaluation
from flamewatch.store import Store
from flamewatch.testing import make_event

TOKEN = "xoxb-1111-2222-details-token"
TOKEN_ENV = "FLAMEWATCH_DETAILS_SLACK_TOKEN"


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN) as fake:
        yield fake


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def bot(session: aiohttp.ClientSession, slack: FakeSlack, *, interval: float = 0.0, **options: Any) -> SlackNotifier:
    options.setdefault("token", Secret(env=TOKEN_ENV))
    options.setdefault("channel", "#hn")
    notifier = SlackNotifier(NotifierContext(name="team", session=session, state=MemoryState()),
                             SlackOptions(base_url=slack.api_url, **options))
    notifier.min_interval = interval
    return notifier


# --- Retry-After ---------------------------------------------------------------------------------------


def test_retry_after_takes_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert parse_retry_after("120", now=now) == 120.0
    assert parse_retry_after(format_datetime(datetime(2026, 1, 2, 3, 6, 5, tzinfo=UTC), usegmt=True), now=now) == 120.0
    assert parse_retry_after("Fri, 02 Jan 2026 03:04:00 GMT", now=now) == 0.0  # already past
    assert parse_retry_after("Sat, 02 Jan 2027 03:04:05 GMT", now=now) == 24 * 3600.0  # capped at a day
    for junk in ("", "soon", "-5", "1.5", "\u0663", "Fri, 99 Foo 2026 99:99:99 GMT"):
        assert parse_retry_after(junk, now=now) is None, junk


async def test_a_retry_after_beyond_max_age_is_a_dead_letter_that_says_so(
    store: Store, session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack)
    dispatcher = Dispatcher(store, [NotifierInstance.of(notifier)], retry=RetryPolicy(0.01, 0.05, max_age=3600.0))
    await dispatcher.start()
    slack.fail_next(1, status=429, retry_after=7200)
    await dispatcher.publish(Evaluation(announce=[make_event()]))
    await dispatcher.wait_idle()
    await dispatcher.close(1.0)
    (dead,) = await store.outbox("dead")
    assert dead.attempts == 1 and dead.last_error is not None
    assert dead.last_error.startswith("the server asked to wait 7200s (Retry-After), past delivery.max_age (3600s): ")
    assert [r.method for r in slack.requests] == ["auth.test", "chat.postMessage"]


# --- pacing and the attempt timeout ---------------------------------------------------------------------


@pytest.mark.looptime(start=0)
async def test_pacing_waits_do_not_count_against_the_attempt_timeout(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack, interval=5.0)  # each message waits 5 s for the channel after the previous
    instance = NotifierInstance.of(notifier, timeout=2.0)
    log = logging.getLogger("test")
    events = [make_event(story_id=i) for i in (1, 2, 3)]
    outcomes = await asyncio.gather(*(attempt(instance, [e], blocking_warn=1e9, logger=log) for e in events))
    assert outcomes == [None, None, None]  # before: the 2nd and 3rd timed out while waiting their turn
    stamps = sorted(m.received_at for m in slack.messages)
    assert len(stamps) == 3 and stamps[2] - stamps[0] >= 10.0


@pytest.mark.looptime(start=0)
async def test_the_attempt_timeout_still_bounds_the_request_itself(session: aiohttp.ClientSession) -> None:
    async def hang(request: aiohttp.web.Request) -> aiohttp.web.Response:
        await asyncio.sleep(3600)
        return aiohttp.web.Response()

    app = aiohttp.web.Application()
    app.router.add_post("/api/{method}", hang)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        notifier = SlackNotifier(NotifierContext(name="team", session=session),
                                 SlackOptions(token=Secret(env=TOKEN_ENV), channel="#hn",
                                              base_url=f"http://127.0.0.1:{port}/api/"))
        instance = NotifierInstance.of(notifier, timeout=2.0)
        failure = await attempt(instance, [make_event()], blocking_warn=1e9, logger=logging.getLogger("test"))
    finally:
        await runner.cleanup()
    assert failure is not None and failure.error == "timed out after 2s"


# --- configuration-shaped failures ---------------------------------------------------------------------


async def test_a_token_with_a_control_character_is_permanent(
    session: aiohttp.ClientSession, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "xoxb-1111\n-2222")
    with pytest.raises(PermanentDeliveryError, match="token: the secret holds a control") as caught:
        await bot(session, slack).send(make_event())
    assert "2222" not in str(caught.value) and slack.requests == []


@pytest.mark.parametrize("url", ["https://[::1/services/x", "https:///services/x", "https://hooks example.com/x"])
async def test_an_invalid_webhook_url_is_permanent(session: aiohttp.ClientSession, tmp_path: Path, url: str) -> None:
    secret = tmp_path / "hook"
    secret.write_text(url)
    notifier = SlackNotifier(NotifierContext(name="hook", session=session),
                             SlackOptions(webhook_url=Secret(file=str(secret))))
    notifier.min_interval = 0.0
    with pytest.raises(PermanentDeliveryError, match="webhook_url") as caught:
        await notifier.send(make_event())
    assert "services" not in str(caught.value)


# --- what a message carries ----------------------------------------------------------------------------


async def test_bidi_and_zero_width_characters_are_stripped(session: aiohttp.ClientSession, slack: FakeSlack) -> None:
    title = "Invoice\u202egpj.exe \u2066x\u2069 <!chan\u200bnel> ze\u200dro\ufeff"
    await bot(session, slack).send(make_event(title=title, by="mal\u200blory"))
    (message,) = slack.messages
    text = message.all_text
    for ch in ("\u202e", "\u2066", "\u2069", "\u200b", "\u200d", "\ufeff"):
        assert ch not in text, repr(ch)
    assert "Invoicegpj.exe" in text and "&lt;!channel&gt;" in text and "mallory" in text


async def test_messages_carry_the_event_key_as_metadata(session: aiohttp.ClientSession, slack: FakeSlack) -> None:
    notifier = bot(session, slack)
    one, two = make_event(story_id=1), make_event(story_id=2)
    await notifier.send(one)
    await notifier.send_digest([one, two])
    posted = [r.payload for r in slack.requests if r.method == "chat.postMessage"]
    assert posted[0]["metadata"] == {"event_type": "flamewatch_event", "event_payload": {"key": one.key}}
    assert posted[1]["metadata"] == {"event_type": "flamewatch_digest", "event_payload": {"keys": [one.key, two.key]}}
    assert len(slack.messages) == 2
