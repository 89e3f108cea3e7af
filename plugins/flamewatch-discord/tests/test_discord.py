"""The Discord notifier against the fake webhook: mentions, markdown, limits, pacing, 429s, live counts.

Every test runs on looptime's fake loop clock: the notifier paces with asyncio.sleep and the fake stamps
requests with loop.time(), so pacing takes no real time and the gaps it shows are exact.
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

import aiohttp
import pytest
from conftest import URL_ENV
from fake_discord import MAX_EMBED_TOTAL, FakeDiscord

from flamewatch import DeliveryError, LevelOrder, PermanentDeliveryError, Secret
from flamewatch.testing import closed_port, make_event, message_template, notifier_context
from flamewatch_discord import DiscordNotifier, DiscordOptions
from flamewatch_discord.notifier import MIN_INTERVAL

pytestmark = pytest.mark.looptime(start=0)

HOSTILE = ("@everyone @here <@123> <@&456> *bold* __under__ ~~gone~~ `code` [free money](https://evil.example) "
           "<b>tags</b> # heading \u202egnp.exe\u202c zero\u200bwidth \x1b[31mred\x07\r\n> quote")


def discord_notifier(session: aiohttp.ClientSession, **options: Any) -> DiscordNotifier:
    return DiscordNotifier(notifier_context(session, "dc"), DiscordOptions(webhook_url=Secret(env=URL_ENV), **options))


async def test_a_hostile_title_pings_nobody_and_shows_as_text(
    session: aiohttp.ClientSession, discord: FakeDiscord
) -> None:
    await discord_notifier(session).send(make_event(title=HOSTILE, by="@everyone"))
    [message] = discord.messages
    assert message.payload["allowed_mentions"] == {"parse": []}
    assert message.pings == []
    shown = message.shown
    assert "@everyone @here <@123> <@&456> *bold* __under__ ~~gone~~ `code` [free money](https://evil.example)" \
        in shown.text  # the markdown shows as typed: nothing became bold, a link or a mention
    assert [url for url, _ in shown.links] == ["https://news.ycombinator.com/item?id=8863"]
    assert not [ch for ch in shown.text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf")]
    assert message.payload["embeds"][0]["url"] == "http://www.getdropbox.com/u/2/screencast.html"


async def test_a_long_digest_respects_the_embed_limits(session: aiohttp.ClientSession, discord: FakeDiscord) -> None:
    events = [make_event(story_id=i, title=f"Story {i} & " + "long words " * 20) for i in range(45)]
    await discord_notifier(session).send_digest(events)
    assert not discord.rejected and len(discord.messages) >= 5
    for message in discord.messages:
        embeds = message.payload["embeds"]
        assert len(embeds) <= 10
        assert sum(len(e["title"]) + len(e["description"]) + len(e["footer"]["text"]) for e in embeds) \
            <= MAX_EMBED_TOTAL
    titles = [e["title"] for m in discord.messages for e in m.payload["embeds"]]
    assert len(titles) == 45 and titles[44].startswith("Story 44")


async def test_live_count_learns_the_id_and_edits(session: aiohttp.ClientSession, discord: FakeDiscord) -> None:
    notifier = discord_notifier(session, live_count=True, thread_id="2200")
    await notifier.send(make_event(comments=120, level=100))
    await notifier.send(make_event(comments=530, level=500))
    await notifier.send(make_event(comments=250, level=250))  # older, retried late: no rollback
    [message] = discord.messages
    assert message.thread_id == "2200" and len(message.edits) == 1
    assert "530 comments" in message.shown.text
    discord.messages.clear()  # deleted in Discord: the next event posts a new message
    await notifier.send(make_event(comments=700, level=500))
    assert len(discord.messages) == 1 and "700 comments" in discord.messages[0].shown.text


async def test_live_count_never_edits_one_stale_alert_into_another(
    session: aiohttp.ClientSession, discord: FakeDiscord
) -> None:
    # Stale-source events are about no story (id 0): each must stay its own message, not edit "story 0's".
    notifier = discord_notifier(session, live_count=True)
    for source in ("maxitem", "topstories"):
        await notifier.send(make_event(story_id=0, title="Hacker News", comments=0, score=0, by=None, url=None,
                                       rule="stale", level=f"{source} stale", level_order=LevelOrder.NONE))
    assert len(discord.messages) == 2 and [m.edits for m in discord.messages] == [[], []]
    assert [m for m in discord.messages if "comments" in m.shown.text or "discussion" in m.shown.text] == []


async def test_a_deleted_webhook_is_permanent_and_hides_the_token(
    session: aiohttp.ClientSession, discord: FakeDiscord, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(URL_ENV, discord.webhook_url.replace(discord.token, "revoked-token"))
    with pytest.raises(PermanentDeliveryError) as refused:
        await discord_notifier(session).send(make_event())
    assert str(refused.value) == ("Discord webhook answered HTTP 401: Invalid Webhook Token (code 50027): "
                                  "check webhook_url (the webhook may have been deleted)")
    monkeypatch.setenv(URL_ENV, discord.webhook_url)
    with pytest.raises(PermanentDeliveryError, match=r"Unknown Channel .* and thread_id"):
        await discord_notifier(session, thread_id="9").send(make_event())


async def test_discord_down_is_retryable_without_the_url(session: aiohttp.ClientSession,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{closed_port()}/api/webhooks/1/secret-part")
    with pytest.raises(DeliveryError) as failed:
        await discord_notifier(session).send(make_event())
    assert failed.value.retryable and "secret-part" not in str(failed.value)


async def test_pacing_keeps_to_thirty_a_minute(session: aiohttp.ClientSession, discord: FakeDiscord) -> None:
    one, other = discord_notifier(session), discord_notifier(session)  # one webhook, one pace
    for i in range(20):
        await one.send(make_event(story_id=i))
        await other.send(make_event(story_id=100 + i))
    times = [m.received_at for m in discord.messages]
    assert not discord.rejected and len(times) == 40
    assert all(b - a >= MIN_INTERVAL for a, b in itertools.pairwise(times))


async def test_the_rate_limit_headers_are_obeyed(session: aiohttp.ClientSession) -> None:
    # A bucket of 2 requests per 10 s, announced only by the headers: without reading them, the third
    # message would collect a 429.
    async with FakeDiscord(bucket_limit=2, bucket_window=10.0) as strict:
        notifier = DiscordNotifier(notifier_context(session, "dc"),
                                   DiscordOptions(webhook_url=Secret(env="FW_STRICT")))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("FW_STRICT", strict.webhook_url)
            for i in range(6):
                await notifier.send(make_event(story_id=i))
        times = [m.received_at for m in strict.messages]
        assert not strict.rejected and len(times) == 6
        assert times[2] - times[0] >= 10.0 and times[4] - times[2] >= 10.0


async def test_a_429_gives_retry_after_and_holds_the_webhook(
    session: aiohttp.ClientSession, discord: FakeDiscord
) -> None:
    discord.fail_next_globally(1, retry_after=4.5)
    with pytest.raises(DeliveryError, match="rate limited \\(global\\)") as limited:
        await discord_notifier(session).send(make_event())
    assert limited.value.retry_after == 4.5
    refused_at = discord.requests[-1].received_at
    await discord_notifier(session).send(make_event())
    assert discord.messages[0].received_at - refused_at >= 4.5


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="thread_id: expected the thread's numeric id"):
        DiscordOptions(webhook_url=Secret(env="X"), thread_id="general")


async def test_a_template_becomes_the_embed_text_markdown_escaped(
    session: aiohttp.ClientSession, discord: FakeDiscord
) -> None:
    notifier = discord_notifier(session)
    notifier.ctx.template = message_template("**{{ story.title }}** · [thread]({{ story.hn_url | url }})", "markdown")
    await notifier.send(make_event(title=HOSTILE))
    [message] = discord.messages
    description = message.payload["embeds"][0]["description"]
    assert message.pings == [] and description.startswith("**\\@everyone")
    shown = message.shown
    assert "[free money](https://evil.example)" in shown.text  # the title's link stayed text
    assert ("https://news.ycombinator.com/item?id=8863", "thread") in shown.links
    assert not any(url.startswith("https://evil") for url, _ in shown.links)
