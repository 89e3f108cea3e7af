"""The Telegram notifier against the fake Bot API: escaping, limits, pacing, 429s, live counts, topics.

Every test runs on looptime's fake loop clock: the notifier paces with asyncio.sleep and the fake stamps
requests with loop.time(), so a minute of pacing takes no real time and the gaps it shows are exact.
"""

from __future__ import annotations

import dataclasses
import itertools
import unicodedata
from typing import Any

import aiohttp
import pytest
from conftest import TOKEN_ENV
from fake_telegram import FakeTelegram

from flamewatch import DeliveryError, LevelOrder, PermanentDeliveryError, Secret
from flamewatch.testing import make_event, message_template, notifier_context
from flamewatch_telegram import TelegramNotifier, TelegramOptions
from flamewatch_telegram.format import MAX_MESSAGE

pytestmark = pytest.mark.looptime(start=0)

HOSTILE = ("<!channel> @everyone @here *bold* _it_ `code` <b>tags</b> <a href=\"javascript:alert(1)\">x</a> "
           "& &amp; \u202egnp.exe\u202c zero\u200bwidth \x1b[31mred\x07\r\nBcc: victim@example.com")


def telegram(session: aiohttp.ClientSession, tg: FakeTelegram, **options: Any) -> TelegramNotifier:
    settings: dict[str, Any] = {"token": Secret(env=TOKEN_ENV), "chat_id": -1001, "api_url": tg.url, **options}
    return TelegramNotifier(notifier_context(session, "tg"), TelegramOptions(**settings))


def invisible_or_control(text: str) -> list[str]:
    return [f"U+{ord(ch):04X}" for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf")]


async def test_a_hostile_title_arrives_as_inert_text(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    event = make_event(title=HOSTILE, url="https://example.com/a?b=1&c=\"2\"")
    await telegram(session, tg).send(event)
    [message] = tg.messages  # the fake refuses HTML that does not parse, so escaping held
    assert message.payload["parse_mode"] == "HTML"
    assert "<b>tags</b> <a href=\"javascript:alert(1)\">x</a> & &amp;" in message.text  # shown, not applied
    assert "@everyone" in message.text and "Bcc: victim@example.com" in message.text  # on the title's line
    assert invisible_or_control(message.text) == []
    title_line = next(line for line in message.text.split("\n") if "tags" in line)
    assert "gnp.exe" in title_line and "\r" not in title_line
    assert [href for href, _ in message.links] == [
        "https://example.com/a?b=1&c=%222%22", "https://news.ycombinator.com/item?id=8863"]
    assert message.links[0][1].startswith("<!channel> @everyone")  # the label is the title, as text


async def test_story_links_that_are_not_http_fall_back_to_the_discussion(
    session: aiohttp.ClientSession, tg: FakeTelegram
) -> None:
    await telegram(session, tg).send(make_event(url="javascript:alert(1)"))
    assert {href for href, _ in tg.messages[0].links} == {"https://news.ycombinator.com/item?id=8863"}


async def test_a_long_digest_is_split_within_telegrams_limit(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    events = [make_event(story_id=i, title=f"Story {i} & " + "long words " * 25) for i in range(120)]
    await telegram(session, tg, chat_id=42).send_digest(events)
    assert len(tg.messages) > 1 and not tg.rejected
    assert all(len(m.text) <= MAX_MESSAGE for m in tg.messages)
    shown = "\n".join(m.text for m in tg.messages)
    assert all(f"Story {i} & long" in shown for i in range(120))


async def test_forum_topic_is_addressed(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    await telegram(session, tg, message_thread_id=7).send(make_event())
    assert tg.messages[0].thread_id == 7
    with pytest.raises(PermanentDeliveryError, match=r"message thread not found .*check chat_id, message_thread_id"):
        await telegram(session, tg, message_thread_id=9).send(make_event())


async def test_a_bad_token_is_one_permanent_line_without_the_token(
    session: aiohttp.ClientSession, tg: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "999:wrong-token-value")
    with pytest.raises(PermanentDeliveryError) as refused:
        await telegram(session, tg).start()
    text = str(refused.value)
    assert text == "Telegram getMe: the bot token was refused (Unauthorized): check token"
    assert "wrong-token-value" not in text and "\n" not in text


async def test_an_unknown_chat_is_permanent_at_start(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    with pytest.raises(PermanentDeliveryError, match=r"^Telegram getChat to chat -1009: Bad Request: chat not found"):
        await telegram(session, tg, chat_id="-1009").start()


async def test_a_supergroup_migration_says_what_to_set(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    from flamewatch_telegram.notifier import api_error

    error = api_error("sendMessage", 400, {"description": "Bad Request: group chat was upgraded to a supergroup chat",
                                           "parameters": {"migrate_to_chat_id": -1002}}, -5)
    assert isinstance(error, PermanentDeliveryError) and "set chat_id = -1002" in str(error)


async def test_telegram_down_is_retryable_and_names_no_url(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    from flamewatch.testing import closed_port

    notifier = telegram(session, tg, api_url=f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(DeliveryError) as failed:
        await notifier.send(make_event())
    assert failed.value.retryable and tg.token not in str(failed.value)


async def test_live_count_edits_one_message_and_never_goes_back(
    session: aiohttp.ClientSession, tg: FakeTelegram
) -> None:
    notifier = telegram(session, tg, live_count=True)
    await notifier.send(make_event(comments=120, level=100))
    await notifier.send(make_event(comments=530, level=500))
    await notifier.send(make_event(comments=530, level=500))  # a retry after a lost answer: "not modified"
    await notifier.send(make_event(comments=250, level=250))  # an older event retried late: ignored
    [message] = tg.messages
    assert "530 comments" in message.text and len(message.edits) == 1
    tg.messages.clear()  # deleted in the chat: the next event posts a new message
    await notifier.send(make_event(comments=700, level=500))
    assert len(tg.messages) == 1 and "700 comments" in tg.messages[0].text


async def test_live_count_never_edits_one_stale_alert_into_another(
    session: aiohttp.ClientSession, tg: FakeTelegram
) -> None:
    # Stale-source events are about no story (id 0): each must stay its own message, not edit "story 0's".
    notifier = telegram(session, tg, live_count=True)
    for source in ("maxitem", "topstories"):
        await notifier.send(make_event(story_id=0, title="Hacker News", comments=0, score=0, by=None, url=None,
                                       rule="stale", level=f"{source} stale", level_order=LevelOrder.NONE))
    assert len(tg.messages) == 2 and [m.edits for m in tg.messages] == [[], []]
    assert "topstories" in tg.messages[1].text
    # No story, so no "0 comments · 0 points" and no discussion link, plain or in a digest.
    await notifier.send_digest([make_event(story_id=0, title="Hacker News", comments=0, rule="stale", level="x")])
    assert [m for m in tg.messages if "comments" in m.text or "discussion" in m.text] == []


async def test_pacing_holds_a_group_to_one_a_second_and_twenty_a_minute(
    session: aiohttp.ClientSession, tg: FakeTelegram
) -> None:
    one, other = telegram(session, tg), telegram(session, tg)  # two instances, one chat: one pace
    for i in range(15):
        await one.send(make_event(story_id=i))
        await other.send(make_event(story_id=100 + i))
    assert not tg.rejected  # the fake answers 429 to anything faster than Telegram allows
    times = [m.received_at for m in tg.messages]
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert max(sum(1 for t in times if start <= t < start + 60) for start in times) <= 20
    # 30 messages: 20 in the first minute, the other 10 after it.
    assert times[-1] - times[0] >= 60.0


async def test_a_private_chat_gets_one_a_second(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    notifier = telegram(session, tg, chat_id=42)
    for i in range(25):
        await notifier.send(make_event(story_id=i))
    times = [m.received_at for m in tg.messages]
    assert not tg.rejected and len(times) == 25
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert times[-1] - times[0] < 30.0  # no group cap in a private chat


async def test_retry_after_is_reported_and_holds_the_chat(session: aiohttp.ClientSession, tg: FakeTelegram) -> None:
    notifier = telegram(session, tg)
    tg.fail_next(1, retry_after=7)
    with pytest.raises(DeliveryError) as limited:
        await notifier.send(make_event())
    assert limited.value.retryable and limited.value.retry_after == 7
    refused_at = tg.requests[-1].received_at
    await telegram(session, tg).send(make_event())  # another instance, same chat: waits too
    assert tg.messages[0].received_at - refused_at >= 7


def test_options_check_the_chat_id() -> None:
    with pytest.raises(ValueError, match="chat_id: expected a number"):
        TelegramOptions(token=Secret(env="X"), chat_id="my group")
    assert TelegramOptions(token=Secret(env="X"), chat_id="-100123").chat == -100123
    assert dataclasses.replace(TelegramOptions(token=Secret(env="X"), chat_id="@hn_alerts")).is_group


async def test_a_template_is_sent_with_its_values_html_escaped(
    session: aiohttp.ClientSession, tg: FakeTelegram
) -> None:
    notifier = telegram(session, tg)
    notifier.ctx.template = message_template(
        '🔥 <b>{{ story.title }}</b>\n<a href="{{ story.hn_url }}">{{ story.comments }} comments</a>', "html")
    await notifier.send(make_event(title=HOSTILE, comments=530))
    [message] = tg.messages  # the fake parsed it: the title's markup could not break the HTML
    assert message.text.startswith("🔥 <!channel> @everyone @here *bold* _it_ `code` <b>tags</b>")
    assert message.text.endswith("\n530 comments") and invisible_or_control(message.text) == []
    assert message.links == [("https://news.ycombinator.com/item?id=8863", "530 comments")]
