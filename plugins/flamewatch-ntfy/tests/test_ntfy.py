"""The ntfy notifier against the fake server: priorities, tags, click, markdown, tokens, 429 pacing.

Every test runs on looptime's fake loop clock, so the pacing's waits take no real time and the gaps
the fake records are exact. The fake's bucket is 5 requests refilled one every 5 s (ntfy.sh: 60).
"""

from __future__ import annotations

import itertools
import unicodedata
from typing import Any

import aiohttp
import pytest
from conftest import TOKEN_ENV, Paced
from fake_ntfy import FakeNtfy

from flamewatch import DeliveryError, PermanentDeliveryError, Secret
from flamewatch.testing import make_event, notifier_context
from flamewatch_ntfy.notifier import message_text
from flamewatch_ntfy import NtfyNotifier, NtfyOptions

pytestmark = pytest.mark.looptime(start=0)

HOSTILE = ("@everyone *bold* _it_ [free money](https://evil.example) <b>tags</b> # heading "
           "\u202egnp.exe\u202c zero\u200bwidth \x1b[31mred\x07\r\nX-Injected: header")


def ntfy_notifier(session: aiohttp.ClientSession, ntfy: FakeNtfy, **options: Any) -> NtfyNotifier:
    settings: dict[str, Any] = {"topic": "hn-alerts", "server": ntfy.url, **options}
    return Paced(notifier_context(session, "push"), NtfyOptions(**settings))


async def test_priority_tags_and_click(session: aiohttp.ClientSession, ntfy: FakeNtfy) -> None:
    notifier = ntfy_notifier(session, ntfy, priority_by_level={"500": 4, "1000": 5}, tags=["hn"])
    for level in (100, 500, 2000):
        await notifier.send(make_event(level=level, comments=level))
    assert [m.priority for m in ntfy.messages] == [3, 4, 5]
    first = ntfy.messages[0]
    assert first.tags == ["speech_balloon", "hn"] and first.click == "https://news.ycombinator.com/item?id=8863"
    assert first.markdown and "Reached 100 comments" in first.shown[0]


async def test_a_hostile_title_stays_text(session: aiohttp.ClientSession, ntfy: FakeNtfy) -> None:
    await ntfy_notifier(session, ntfy).send(make_event(title=HOSTILE, by="[x](https://evil.example)"))
    [message] = ntfy.messages
    assert message.title.startswith("@everyone *bold* _it_ [free money](https://evil.example) <b>tags</b>")
    assert "\r" not in message.title and "\n" not in message.title
    assert "X-Injected" not in message.headers  # the title never travels in a header
    assert not [ch for ch in message.title if unicodedata.category(ch) in ("Cc", "Cf")]
    text, links = message.shown
    assert "by [x](https://evil.example)" in text  # shown as typed, not a link
    assert links == [("https://news.ycombinator.com/item?id=8863", "discussion")]


async def test_a_protected_topic_takes_the_token_from_a_secret(
    session: aiohttp.ClientSession, ntfy: FakeNtfy, monkeypatch: pytest.MonkeyPatch
) -> None:
    await ntfy_notifier(session, ntfy, topic="private-alerts", token=Secret(env=TOKEN_ENV)).send(make_event())
    assert ntfy.messages[0].headers["Authorization"] == "Bearer " + ntfy.tokens.copy().pop()
    with pytest.raises(PermanentDeliveryError, match=r"answered HTTP 403: forbidden \(check token\)$"):
        await ntfy_notifier(session, ntfy, topic="private-alerts").send(make_event())
    monkeypatch.setenv(TOKEN_ENV, "tk_wrong")
    with pytest.raises(PermanentDeliveryError, match="HTTP 401: unauthorized") as refused:
        await ntfy_notifier(session, ntfy, topic="private-alerts", token=Secret(env=TOKEN_ENV)).send(make_event())
    assert "tk_wrong" not in str(refused.value)


async def test_a_burst_is_paced_to_the_servers_bucket(session: aiohttp.ClientSession, ntfy: FakeNtfy) -> None:
    one, other = ntfy_notifier(session, ntfy), ntfy_notifier(session, ntfy)  # one server and visitor
    for i in range(10):
        await one.send(make_event(story_id=i))
        await other.send(make_event(story_id=100 + i))
    times = [m.received_at for m in ntfy.messages]
    assert not ntfy.rejected and len(times) == 20
    assert times[4] - times[0] < 1  # the burst goes at once...
    assert all(b - a >= 5.0 for a, b in itertools.pairwise(times[5:]))  # ...then one every 5 s


async def test_a_429_holds_the_server_and_tells_the_core(session: aiohttp.ClientSession, ntfy: FakeNtfy) -> None:
    ntfy.fail_next(1)
    with pytest.raises(DeliveryError, match="limit reached") as limited:
        await ntfy_notifier(session, ntfy).send(make_event())
    assert limited.value.retryable and limited.value.retry_after == 5.0
    refused_at = ntfy.requests[-1].received_at
    await ntfy_notifier(session, ntfy).send(make_event())
    assert ntfy.messages[0].received_at - refused_at >= 5.0


async def test_a_digest_fits_ntfys_message_size(session: aiohttp.ClientSession, ntfy: FakeNtfy) -> None:
    events = [make_event(story_id=i, title="Ünïcode 題名 " * 10, level=1000 if i == 3 else 100) for i in range(100)]
    await ntfy_notifier(session, ntfy, priority_by_level={"1000": 5}).send_digest(events)
    [message] = ntfy.messages
    assert len(message.message.encode()) <= 4096 and message.message.endswith("more")
    assert message.priority == 5


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="topic: 1-64 letters"):
        NtfyOptions(topic="hn alerts")
    with pytest.raises(ValueError, match=r"priority_by_level.500: priority must be 1 \(min\) to 5"):
        NtfyOptions(topic="t", priority_by_level={"500": 9})


def test_an_event_about_no_story_shows_no_counts() -> None:
    # A stale-source event is about HN itself (story id 0): there is nothing counted to show.
    stale = make_event(story_id=0, title="Hacker News", comments=0, score=0, by=None, rule="stale",
                       level="maxitem stale")
    for markdown in (True, False):
        text = message_text(stale, markdown=markdown)
        assert "comments" not in text and "points" not in text and "discussion" not in text
