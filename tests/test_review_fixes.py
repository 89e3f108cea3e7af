"""Defects a review found where branches met, each pinned by a test."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp

from flamewatch.dispatch import Dispatcher, NotifierInstance
from flamewatch.dispatch.policies import QuietHours
from flamewatch.events import Event, Subject, Wording
from flamewatch.notifiers.slack.format import digest_messages, snippet_line
from flamewatch.rules import Evaluation
from flamewatch.store import open_store
from flamewatch.testing import RecordingNotifier, make_event, make_story, notifier_context


def _reply(story_id: int, reply_id: int, text: str) -> Event:
    subject = Subject(id=reply_id, by="someone", excerpt=text, parent=story_id)
    event = make_event(make_story(story_id), rule="reply", level="you", subject=subject)
    return dataclasses.replace(event, key=f"reply:{reply_id}")


def test_an_items_type_cannot_reach_slack_as_markup() -> None:
    # HN's "type" is untrusted text: it must never become a link label Slack would parse.
    subject = Subject(id=2, type="x> <!channel", excerpt="hello")
    event = make_event(rule="mention", level="m", wording=Wording("Mentioned", "mentions it", snippet="say hello",
                                                                   marks=((4, 9),)), subject=subject)
    line = snippet_line(event)
    assert "<!channel" not in line and "|comment>" not in line and "|item>" in line


def test_a_digest_section_quotes_every_reply_and_drops_format_characters() -> None:
    events = [_reply(1, 11, "first answer"), _reply(1, 12, "second \u202eanswer\u200b")]
    text = "".join(str(block) for message in digest_messages(events) for block in message.blocks)
    assert "first answer" in text and "second answer" in text
    mention = make_event(rule="mention", level="m", wording=Wording("Mentioned", "mentions it",
                                                                    snippet="a \u202ebad\u200b word", marks=((3, 6),)))
    assert "\u202e" not in snippet_line(mention) and "\u200b" not in snippet_line(mention)


async def test_wait_idle_does_not_wait_out_quiet_hours(tmp_path: Path) -> None:
    # A row due inside the instance's quiet window is not "due" for wait_idle: once would otherwise hang.
    now = datetime.now()
    quiet = QuietHours((now - timedelta(hours=1)).time().replace(microsecond=0),
                       (now + timedelta(hours=1)).time().replace(microsecond=0))
    async with aiohttp.ClientSession() as session, await open_store(tmp_path / "fw.db") as store:
        sink = RecordingNotifier(notifier_context(session, "sink"), RecordingNotifier.Options())
        dispatcher = Dispatcher(store, [NotifierInstance.of(sink, quiet=quiet)])
        await dispatcher.start()
        await dispatcher.publish(Evaluation(announce=[make_event()]))
        await asyncio.wait_for(dispatcher.wait_idle(), timeout=10)
        await dispatcher.close(1.0)
        assert sink.sent == [] and len(await store.pending()) == 1  # held for the window's end, not lost
