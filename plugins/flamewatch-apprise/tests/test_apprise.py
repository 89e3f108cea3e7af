"""The Apprise notifier through Apprise's json:// service to local receivers: text, retries, secrets."""

from __future__ import annotations

import unicodedata

import aiohttp
import pytest
from conftest import URLS_ENV, Receiver

from flamewatch import DeliveryError, PermanentDeliveryError, Secret
from flamewatch.testing import make_event, notifier_context
from flamewatch_apprise.notifier import body_of
from flamewatch_apprise import AppriseNotifier, AppriseOptions

HOSTILE = ("<!channel> @everyone *bold* [free](https://evil.example) <b>tags</b> & \u202egnp.exe\u202c "
           "zero\u200bwidth \x1b[31mred\x07\r\nBcc: victim@example.com")


def notifier(session: aiohttp.ClientSession) -> AppriseNotifier:
    return AppriseNotifier(notifier_context(session, "many"), AppriseOptions(urls=[Secret(env=URLS_ENV)]))


async def test_every_url_gets_the_event_as_clean_text(
    session: aiohttp.ClientSession, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = receivers
    monkeypatch.setenv(URLS_ENV, f"{one.json_url}, {two.json_url}")
    sender = notifier(session)
    await sender.start()
    await sender.send(make_event(title=HOSTILE, comments=530, level=500))
    for receiver in receivers:
        [post] = receiver.posts
        assert post["title"] == ("<!channel> @everyone *bold* [free](https://evil.example) <b>tags</b> & gnp.exe "
                                 "zerowidth [31mred Bcc: victim@example.com")
        assert not [ch for ch in post["title"] + post["message"]
                    if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf")]
        assert post["message"].endswith("https://news.ycombinator.com/item?id=8863")
        assert "530 comments" in post["message"]


async def test_a_failed_service_is_retried_alone_and_apprise_does_not_retry(
    session: aiohttp.ClientSession, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = receivers
    monkeypatch.setenv(URLS_ENV, f"{one.json_url}\n{two.json_url}?retry=3")  # asks Apprise to retry: it won't
    two.fail_next(2, status=503)
    sender = notifier(session)
    event = make_event()
    with pytest.raises(DeliveryError, match=r"^Apprise: 1 of 2 services failed: #2 \(json\)") as failed:
        await sender.send(event)
    assert failed.value.retryable and len(two.rejected) == 1  # one try, no retries inside Apprise
    assert "127.0.0.1" not in str(failed.value)  # the URL (a secret) is never named
    with pytest.raises(DeliveryError):
        await sender.send(event)  # the outbox's retry: again only #2, which fails once more
    await sender.send(event)
    assert len(one.posts) == 1 and len(two.posts) == 1 and len(two.rejected) == 2  # nothing went out twice


async def test_a_url_apprise_cannot_read_is_permanent(session: aiohttp.ClientSession,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(URLS_ENV, "nosuchservice://user:hunter2@example.com")
    with pytest.raises(PermanentDeliveryError) as refused:
        await notifier(session).start()
    assert str(refused.value) == ("urls[0]: Apprise cannot use a nosuchservice:// URL (unknown service or malformed)")


async def test_a_digest_is_one_message_per_service(
    session: aiohttp.ClientSession, receivers: tuple[Receiver, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    one, _ = receivers
    monkeypatch.setenv(URLS_ENV, one.json_url)
    await notifier(session).send_digest([make_event(story_id=i, title=f"Story {i}") for i in range(200)])
    [post] = one.posts
    assert post["title"] == "flamewatch: 200 events" and len(post["message"]) <= 3100
    assert post["message"].startswith("• Story 0 reached 100 comments") and post["message"].endswith("more")


def test_an_event_about_no_story_shows_no_counts() -> None:
    # A stale-source event is about HN itself (story id 0): there is nothing counted to show.
    stale = make_event(story_id=0, title="Hacker News", comments=0, score=0, by=None, rule="stale",
                       level="maxitem stale")
    text = body_of(stale)
    assert "comments" not in text and "points" not in text
