"""The Slack notifier against a fake Slack API served over loopback (tests/fakes/slack_api.py)."""

from __future__ import annotations

import asyncio
import itertools
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.slack_api import FakeSlack, render, unescape
from flamewatch import (
    DeliveryError,
    MemoryState,
    NotifierContext,
    PermanentDeliveryError,
    Secret,
    testing,
)
from flamewatch.notifiers.slack import SlackNotifier, SlackOptions, flamewatch_notifier_types
from flamewatch.notifiers.slack.format import MAX_BLOCKS
from flamewatch.testing import HOSTILE_TITLE, closed_port

TOKEN = "xoxb-1111-2222-test-token-value"
TOKEN_ENV = "FLAMEWATCH_TEST_SLACK_TOKEN"


# --- helpers ------------------------------------------------------------------------------------------


#: The event most tests here post: story 8863 crossing 500 comments with 512, its velocity and growth known.
make_event = partial(
    testing.make_event,
    comments=512,
    level=500,
    score=230,
    url="https://www.dropbox.com/?ref=hn&x=1",
    rank=3,
    velocity=85.4,
    growth=34,
    at=datetime(2024, 5, 1, 14, 3, tzinfo=UTC),
)


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack(token=TOKEN, channels={"#hn": "C0HN", "#other": "C0OTHER"}) as fake:
        yield fake


@pytest.fixture(autouse=True)
def token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def bot(
    session: aiohttp.ClientSession,
    slack: FakeSlack,
    *,
    state: Any = None,
    interval: float = 0.0,
    **options: Any,
) -> SlackNotifier:
    """A bot-token notifier pointed at the fake (pacing off unless ``interval`` is given)."""
    options.setdefault("token", Secret(env=TOKEN_ENV))
    options.setdefault("channel", "#hn")
    ctx = NotifierContext(name="team-slack", session=session, state=state or MemoryState())
    notifier = SlackNotifier(ctx, SlackOptions(base_url=slack.api_url, **options))
    notifier.min_interval = interval
    return notifier


def webhook(session: aiohttp.ClientSession, url: str, tmp_path: Path, **options: Any) -> SlackNotifier:
    """A webhook notifier whose URL comes from a secret file, as a user would configure it."""
    secret_file = tmp_path / "slack-webhook"
    secret_file.write_text(url + "\n")
    notifier = SlackNotifier(
        NotifierContext(name="hook", session=session),
        SlackOptions(webhook_url=Secret(file=str(secret_file)), **options),
    )
    notifier.min_interval = 0.0
    return notifier


def assert_inert(mrkdwn: str) -> None:
    """Nothing in ``mrkdwn`` pings anyone; every ``<...>`` is an http(s) link we made."""
    rendered = render(mrkdwn)
    assert rendered.mentions == []
    for target, _label in rendered.links:
        assert target.startswith(("https://", "http://")), target
        assert not re.search(r"[\s|<>]", target), target


# --- registration and options ---------------------------------------------------------------------------


def test_plugin_registers_the_slack_type() -> None:
    assert flamewatch_notifier_types() == [SlackNotifier]
    assert SlackNotifier.type_name == "slack"
    assert SlackNotifier.Options is SlackOptions
    assert SlackNotifier.supports_digest()
    assert SlackNotifier.min_interval == 1.0  # Slack's documented ~1 message/second per channel


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({}, "token:"),
        ({"token": Secret(env="T"), "webhook_url": Secret(env="W")}, "webhook_url:"),
        ({"token": Secret(env="T")}, "channel:"),
        ({"token": Secret(env="T"), "channel": "  "}, "channel:"),
        ({"webhook_url": Secret(env="W"), "channel": "#hn"}, "channel:"),
        ({"webhook_url": Secret(env="W"), "live_count": True}, "live_count:"),
        ({"token": Secret(env="T"), "channel": "#hn", "base_url": "slack.com/api"}, "base_url:"),
        ({"token": Secret(env="T"), "channel": "#hn", "icon_emoji": "fire"}, "icon_emoji:"),
    ],
)
def test_bad_option_combinations_give_one_line_errors(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ValueError) as info:
        SlackOptions(**options)
    message = str(info.value)
    assert message.startswith(key)
    assert "\n" not in message


def test_options_repr_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_HOOK", "https://hooks.slack.com/services/T1/B1/secretpart")
    options = SlackOptions(webhook_url=Secret(env="SLACK_HOOK"))
    assert "secretpart" not in repr(options)
    assert TOKEN not in repr(SlackOptions(token=Secret(env=TOKEN_ENV), channel="#hn"))


# --- delivering -----------------------------------------------------------------------------------------


async def test_webhook_mode_posts_one_readable_block_kit_message(
    session: aiohttp.ClientSession, slack: FakeSlack, tmp_path: Path
) -> None:
    notifier = webhook(session, slack.webhook_url, tmp_path)
    await notifier.start()
    await notifier.send(make_event())
    [message] = await slack.wait_for_messages(1)
    await notifier.aclose()

    assert message.via == "webhook"
    assert message.payload["unfurl_links"] is False
    # Plain fallback for notifications, and blocks for the channel.
    assert "Dropbox" in message.text and "reached 500 comments (512 now)" in message.text
    assert "https://news.ycombinator.com/item?id=8863" in message.text
    shown = message.rendered
    assert "My YC app: Dropbox - Throw away your USB drive" in shown.text
    assert "Reached 500 comments" in shown.text
    assert "*Points*\n230" in shown.text and "85 comments/hour" in shown.text and "+34" in shown.text
    assert "by dhouston" in shown.text and "dropbox.com" in shown.text
    assert ("https://www.dropbox.com/?ref=hn&x=1", "My YC app: Dropbox - Throw away your USB drive") in shown.links
    assert ("https://news.ycombinator.com/item?id=8863", "512 comments on Hacker News") in shown.links
    assert [b["type"] for b in message.blocks] == ["section", "section", "context"]


async def test_token_mode_posts_with_bearer_token_and_options(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack, username="flamewatch", icon_emoji=":fire:")
    await notifier.start()  # auth.test with the valid token passes
    await notifier.send(make_event(velocity=None, growth=None))
    [message] = await slack.wait_for_messages(1)

    assert [r.method for r in slack.requests] == ["auth.test", "chat.postMessage"]
    assert all(r.authorization == f"Bearer {TOKEN}" for r in slack.requests)
    assert message.channel == "C0HN" and message.via == "api"
    assert message.payload["username"] == "flamewatch" and message.payload["icon_emoji"] == ":fire:"
    assert message.text  # the fallback is always there
    shown = message.rendered.text
    assert "Reached 500 comments" in shown and "*Comments*\n512" in shown
    # Unknown numbers are left out rather than shown as "None".
    assert "Velocity" not in shown and "Growth" not in shown and "None" not in shown


async def test_partial_counts_and_keyword_events_read_well(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    # Part of the tree could not be fetched, and the story has no URL, author or rank.
    event = make_event(
        rule="keyword", level="<!here> rust", value=1, partial=True, url=None, by=None, time=None, rank=None,
        score=0, velocity=None, growth=None,
    )
    await bot(session, slack).send(event)
    [message] = await slack.wait_for_messages(1)
    assert_inert(message.all_text)
    assert "*Matches keyword* “<!here> rust”" in message.rendered.text
    assert "512+ comments on Hacker News" in message.rendered.text  # a lower bound is shown as one


# --- live count ---------------------------------------------------------------------------------------------


async def test_live_count_posts_once_then_updates_the_same_message(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    state = MemoryState()
    first = bot(session, slack, state=state, live_count=True)
    await first.send(make_event(comments=104, level=100))
    await first.send(make_event(comments=230, level=200))
    assert len(slack.messages) == 1
    message = slack.messages[0]
    assert [u["ts"] for u in message.updates] == [message.ts]
    assert "Reached 200 comments" in message.rendered.text

    # A new instance (a restart) with the same state keeps editing the same message.
    second = bot(session, slack, state=state, live_count=True)
    await second.send(make_event(comments=530, level=500))
    assert len(slack.messages) == 1
    assert len(message.updates) == 2
    assert "Reached 500 comments" in message.rendered.text and "updated" in message.rendered.text

    # Another story gets its own message.
    await second.send(make_event(story_id=9999, title="Other story", level=100))
    assert len(slack.messages) == 2


async def test_live_count_posts_anew_when_the_message_is_gone(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    state = MemoryState()
    await state.set("live:8863", {"channel": "C0HN", "ts": "1234.000001"})  # deleted in Slack meanwhile
    notifier = bot(session, slack, state=state, live_count=True)
    await notifier.send(make_event())
    [message] = slack.messages
    assert [r.method for r in slack.requests] == ["chat.update", "chat.postMessage"]
    assert await state.get("live:8863") == {"channel": "C0HN", "ts": message.ts, "comments": 512}


async def test_live_count_two_events_of_one_story_at_once_post_one_message(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack, state=MemoryState(), live_count=True)
    await asyncio.gather(
        notifier.send(make_event(comments=120, level=100)),
        notifier.send(make_event(comments=120, rule="points", level=300)),
    )
    assert len(slack.messages) == 1
    assert [r.method for r in slack.requests if r.method != "auth.test"] == ["chat.postMessage", "chat.update"]


async def test_live_count_never_rolls_back_to_an_older_count(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack, state=MemoryState(), live_count=True)
    await notifier.send(make_event(comments=530, level=500))
    await notifier.send(make_event(comments=104, level=100))  # a retry of an older event, delivered late
    [message] = slack.messages
    assert message.updates == []
    assert "Reached 500 comments" in message.rendered.text


# --- escaping ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["webhook", "token"])
async def test_hostile_title_arrives_escaped_and_renders_faithfully(
    session: aiohttp.ClientSession, slack: FakeSlack, tmp_path: Path, mode: str
) -> None:
    event = make_event(
        title=HOSTILE_TITLE,
        by="<@U123>",
        url="https://evil.example/a|b><!channel> c",
    )
    notifier = webhook(session, slack.webhook_url, tmp_path) if mode == "webhook" else bot(session, slack)
    await notifier.send(event)
    [message] = await slack.wait_for_messages(1)

    raw = message.all_text
    assert "<!channel>" not in raw and "<@" not in raw
    assert_inert(raw)
    # Every "<" left is the start of a link we built.
    assert all(raw[i + 1 : i + 5] == "http" for i in [m.start() for m in re.finditer("<", raw)])
    shown = message.rendered
    flat_title = "<!channel> Ask HN: 'quotes' & <b>tags</b> Bcc: victim@example.com"
    assert flat_title in shown.text  # Slack shows the title exactly as written, on one line
    assert flat_title in unescape(message.text)
    assert "by <@U123>" in shown.text
    # The URL stays a link to the same place, its special characters percent-encoded.
    assert ("https://evil.example/a%7Cb%3E%3C!channel%3E%20c", flat_title) in shown.links


async def test_non_http_urls_never_become_links(session: aiohttp.ClientSession, slack: FakeSlack) -> None:
    await bot(session, slack).send(make_event(url="javascript:alert(1)//https://x"))
    [message] = await slack.wait_for_messages(1)
    targets = [target for target, _ in message.rendered.links]
    assert targets and all(t == "https://news.ycombinator.com/item?id=8863" for t in targets)


async def test_very_long_titles_are_clipped_to_fit_slack_limits(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    await bot(session, slack).send(make_event(title="&<" * 3000, url="https://a.example/" + "&" * 1000))
    [message] = await slack.wait_for_messages(1)  # the fake rejects blocks over Slack's limits
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in message.blocks)
    assert len(message.all_text) < 12000
    assert_inert(message.all_text)


# --- errors --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["webhook", "token"])
async def test_429_is_retryable_with_retry_after(
    session: aiohttp.ClientSession, slack: FakeSlack, tmp_path: Path, mode: str
) -> None:
    notifier = webhook(session, slack.webhook_url, tmp_path) if mode == "webhook" else bot(session, slack)
    slack.fail_next(1, status=429, retry_after=7)
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_event())
    assert not isinstance(info.value, PermanentDeliveryError)
    assert info.value.retry_after == 7
    assert slack.messages == []  # the plugin did not retry by itself


@pytest.mark.parametrize("mode", ["webhook", "token"])
async def test_server_errors_are_retryable(
    session: aiohttp.ClientSession, slack: FakeSlack, tmp_path: Path, mode: str
) -> None:
    notifier = webhook(session, slack.webhook_url, tmp_path) if mode == "webhook" else bot(session, slack)
    slack.fail_next(1, status=500)
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_event())
    assert info.value.retryable and "500" in str(info.value)
    assert len(slack.requests) == 1  # no hidden SDK retry
    await notifier.send(make_event())  # and the next attempt goes through
    assert len(slack.messages) == 1


async def test_invalid_token_is_permanent_and_names_the_code_not_the_token(
    session: aiohttp.ClientSession, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "xoxb-wrong-secret-value")
    notifier = bot(session, slack)
    with pytest.raises(PermanentDeliveryError) as at_start:
        await notifier.start()
    with pytest.raises(PermanentDeliveryError) as at_send:
        await notifier.send(make_event())
    for error in (at_start.value, at_send.value):
        assert "invalid_auth" in str(error)
        assert "wrong-secret" not in str(error) and "xoxb" not in str(error)


async def test_unknown_channel_and_missing_secret_are_permanent(
    session: aiohttp.ClientSession, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PermanentDeliveryError, match="channel_not_found"):
        await bot(session, slack, channel="#nope").send(make_event())
    monkeypatch.delenv(TOKEN_ENV)
    with pytest.raises(PermanentDeliveryError, match=f"token: environment variable {TOKEN_ENV} is not set"):
        await bot(session, slack).send(make_event())


async def test_webhook_start_reports_an_unreadable_or_bad_secret(
    session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    notifier = webhook(session, "hooks.slack.com/services/T/B/SECRETPART", tmp_path)
    with pytest.raises(PermanentDeliveryError, match="webhook_url: the secret is not an http") as info:
        await notifier.start()
    assert "SECRETPART" not in str(info.value)
    missing = SlackNotifier(
        NotifierContext(name="hook", session=session),
        SlackOptions(webhook_url=Secret(file=str(tmp_path / "nope"))),
    )
    with pytest.raises(PermanentDeliveryError, match="webhook_url: cannot read secret file"):
        await missing.start()


async def test_wrong_webhook_path_is_permanent_without_leaking_the_url(
    session: aiohttp.ClientSession, slack: FakeSlack, tmp_path: Path
) -> None:
    secret_url = f"{slack.url}/services/T000/B000/WRONGSECRET"
    with pytest.raises(PermanentDeliveryError) as info:
        await webhook(session, secret_url, tmp_path).send(make_event())
    assert "404" in str(info.value) and "no_service" in str(info.value)
    assert "WRONGSECRET" not in str(info.value)


@pytest.mark.parametrize("mode", ["webhook", "token"])
async def test_server_down_is_retryable(
    session: aiohttp.ClientSession, tmp_path: Path, mode: str
) -> None:
    port = closed_port()
    if mode == "webhook":
        notifier = webhook(session, f"http://127.0.0.1:{port}/services/T000/B000/SECRETPATH", tmp_path)
    else:
        notifier = SlackNotifier(
            NotifierContext(name="down", session=session),
            SlackOptions(token=Secret(env=TOKEN_ENV), channel="#hn", base_url=f"http://127.0.0.1:{port}/api/"),
        )
        await notifier.start()  # Slack being unreachable at startup is not fatal
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_event())
    assert info.value.retryable
    assert "SECRETPATH" not in str(info.value) and TOKEN not in str(info.value)
    if mode == "webhook":
        # The network error may quote the webhook URL, which is the secret: no cause is kept.
        assert info.value.__cause__ is None and info.value.__suppress_context__
    else:
        # The Web API URL holds no secret, so the cause is chained for -vv.
        assert isinstance(info.value.__cause__, aiohttp.ClientError | OSError)


def test_slack_errors_are_flamewatch_errors() -> None:
    from flamewatch.notifiers.slack import SlackPermanentError

    error = SlackPermanentError("Slack chat.postMessage failed: invalid_auth", code="invalid_auth")
    assert isinstance(error, PermanentDeliveryError) and not error.retryable and error.code == "invalid_auth"


# --- digest --------------------------------------------------------------------------------------------------


async def test_digest_of_many_events_is_split_under_the_block_limit(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    events = [make_event(story_id=1000 + i, title=f"Story number {i} & co", level=100) for i in range(95)]
    await bot(session, slack).send_digest(events)
    messages = await slack.wait_for_messages(3)  # the fake rejects anything over Slack's limits

    assert len(messages) == 3
    assert all(len(m.blocks) <= MAX_BLOCKS for m in messages)
    assert messages[0].blocks[0]["type"] == "header"
    assert "part 1 of 3" in messages[0].blocks[0]["text"]["text"]
    shown = "\n".join(m.rendered.text for m in messages)
    for i in range(95):
        assert f"Story number {i} & co" in shown
    assert all(m.text for m in messages)


# --- pacing ---------------------------------------------------------------------------------------------------


# The pacing tests run on looptime's fake loop clock: the notifier waits with asyncio.sleep and the fake
# Slack stamps requests with loop.time(), so the waits take no real time and the gaps are exact.


@pytest.mark.looptime(start=0)
async def test_messages_to_one_channel_are_spaced_by_the_interval(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    interval = 1.0
    one = bot(session, slack, interval=interval)
    other_instance_same_channel = bot(session, slack, interval=interval)
    elsewhere = bot(session, slack, interval=interval, channel="#other")
    await asyncio.gather(
        one.send(make_event(story_id=1)),
        other_instance_same_channel.send(make_event(story_id=2)),
        one.send(make_event(story_id=3)),
        elsewhere.send(make_event(story_id=4)),
    )
    on_hn = sorted(m.received_at for m in slack.messages if m.channel == "C0HN")
    assert len(on_hn) == 3
    gaps = [b - a for a, b in itertools.pairwise(on_hn)]
    assert all(gap >= interval for gap in gaps), gaps
    # Another channel has its own turn: it did not wait behind #hn.
    [other] = [m.received_at for m in slack.messages if m.channel == "C0OTHER"]
    assert other - on_hn[0] < interval


@pytest.mark.looptime(start=0)
async def test_rate_limit_holds_the_channel_for_the_next_message(
    session: aiohttp.ClientSession, slack: FakeSlack
) -> None:
    notifier = bot(session, slack)
    slack.fail_next(1, status=429, retry_after=30)
    with pytest.raises(DeliveryError):
        await notifier.send(make_event())
    rejected_at = slack.requests[-1].received_at
    await notifier.send(make_event())
    assert slack.messages[0].received_at - rejected_at >= 30


def test_slack_sdk_is_imported_only_when_a_message_is_sent() -> None:
    # Every App registers the built-in types; one without a Slack instance should not pay for slack_sdk.
    probe = "import sys, flamewatch.notifiers.slack; print(any(m.startswith('slack_sdk') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
