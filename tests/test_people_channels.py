"""A hostile reply to a watched user arrives harmless on every channel: the fake Slack API, a real SMTP
server (immediate mail and digest) and a signed webhook receiver, end to end through the simulator."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from fakes.slack_api import FakeSlack
from fakes.smtp_server import FakeSMTPServer
from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.simulator import SimulatorServer, World, place_on_list

SECRET = "whsec_" + base64.b64encode(b"flamewatch people test key 32 b!").decode()

#: HN comment HTML that tries to ping a Slack workspace, inject markup, move the terminal and add a header.
HOSTILE_REPLY = ("&lt;!channel&gt; look <b>here</b> <script>alert(1)</script>\x1b[2J\u202eevil\r\n"
                 "Bcc: victim@example.com &lt;https://evil.example|click&gt;")


@pytest.fixture(autouse=True)
def fast_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.slack.notifier import SlackNotifier

    monkeypatch.setattr(SlackNotifier, "min_interval", 0.01)


async def test_a_hostile_reply_is_harmless_on_slack_email_and_webhook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-fake-valid-token")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    world = World(seed=11, stories=0)
    for i in range(5):
        world.add_story(f"Filler {i}")
    story = world.add_story("My launch", by="you", top=False)
    mine = world.add_comment(story, by="you", text="thanks all")
    async with (
        SimulatorServer(world) as sim,
        FakeSlack(channels={"#me": "C0ME"}) as slack,
        FakeSMTPServer() as smtp,
        FakeWebhookReceiver(SECRET) as receiver,
    ):
        mail = {"type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                "sender": "flamewatch@example.com"}
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"users": [{"name": "you"}, {"name": "pg", "replies": False}]},
            "rules": {"comment_levels": []},
            "store": {"path": str(tmp_path / "fw.db")},
            "delivery": {"retry_base": 0.01},
            "notifiers": [
                {"name": "slack", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#me",
                 "base_url": slack.api_url, "users": ["you"]},
                {**mail, "name": "mail", "to": ["me@example.com"], "rules": ["reply"]},
                {**mail, "name": "digest", "to": ["digest@example.com"], "digest": "24h"},
                {"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"},
                 "users": ["you"]},
                # Routed to someone else: takes nothing here.
                {"name": "others", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"},
                 "users": ["pg"]},
            ],
        }, "people.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)  # the first run records; the stream starts here
            reply = world.add_comment(mine, by="troll", text=HOSTILE_REPLY)
            place_on_list(world, story, 2)
            await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            assert await app.dispatcher.flush_digests() == 3  # events in the digest
            await app.dispatcher.wait_idle()

        keys = {f"reply:{reply}", f"rank:{story}:topstories:entered", f"rank:{story}:3"}
        # Slack: the reply quoted, nothing pings, links only ours.
        assert len(slack.messages) == 3
        for message in slack.messages:
            raw = message.all_text
            assert "<!channel>" not in raw and "<script>" not in raw and "\x1b" not in raw and "\u202e" not in raw
            assert not message.rendered.mentions
            assert not any("evil" in url for url, _ in message.rendered.links), message.rendered.links
        (quoted,) = [m for m in slack.messages if "troll" in m.all_text]
        assert "<!channel> look here alert(1)" in quoted.rendered.text and "\n>" in quoted.all_text
        assert f"item?id={reply}" in quoted.all_text

        # Email: one immediate mail (routed to replies), one digest with sections by kind.
        await smtp.wait_for_messages(2)
        immediate = [m for m in smtp.mails if m.rcpt_tos == ["me@example.com"]]
        digests = [m for m in smtp.mails if m.rcpt_tos == ["digest@example.com"]]
        assert len(immediate) == 1 and len(digests) == 1
        for received in immediate + digests:
            msg = received.message
            assert "bcc" not in {k.lower() for k in msg}
            html = msg.get_body(("html",)).get_content()
            assert "<script>" not in html and "&lt;!channel&gt; look here alert(1)" in html
            assert "\x1b" not in msg.get_body(("plain",)).get_content()
        digest_plain = digests[0].message.get_body(("plain",)).get_content()
        assert "Rank changes" in digest_plain and "Replies" in digest_plain
        assert "My launch by you entered the front page at #2" in digest_plain

        # Webhook: the subject's fields as JSON, untouched text inside a JSON string; routed by user.
        assert not receiver.rejected
        bodies = [d.body["data"] for d in receiver.deliveries]
        assert {b["key"] for b in bodies} == keys and len(bodies) == 3
        (data,) = [b for b in bodies if b["rule"] == "reply"]
        assert data["subject"]["by"] == "troll" and data["subject"]["parent"] == mine
        assert data["subject"]["excerpt"].startswith("<!channel> look here alert(1)")
        assert data["subject"]["hn_url"].endswith(f"?id={reply}") and data["story"]["id"] == story


def test_slack_digest_and_event_quote_a_hostile_reply_as_text() -> None:
    from fakes.slack_api import render
    from flamewatch.events import Subject
    from flamewatch.notifiers.slack.format import digest_messages, event_message
    from flamewatch.testing import make_event

    subject = Subject(id=99, by="<@U123>", excerpt="<!here> *bold* > quoted\nsecond line\x07 <https://evil|ok>",
                      parent=5)
    event = make_event(rule="reply", level="you", subject=subject)
    for message in [event_message(event), *digest_messages([event])]:
        texts = [b["text"]["text"] for b in message.blocks if isinstance(b.get("text"), dict)]
        rendered = render("\n".join(texts))
        assert not rendered.mentions and not any("evil" in url for url, _ in rendered.links)
        assert "<!here> *bold* > quoted second line <https://evil|ok>" in rendered.text
        assert "\x07" not in "".join(texts)
