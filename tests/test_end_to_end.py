"""End to end: the simulator grows threads past two levels; Slack, email and a signed webhook receive them.

Everything is real: the simulator over HTTP, the fake Slack Web API, aiosmtpd, a Standard Webhooks
receiver verifying every signature, the SQLite store and the shipped plugins loaded by entry point.
"""

from __future__ import annotations

import base64
from collections import Counter
from pathlib import Path

import pytest

from fakes.slack_api import FakeSlack
from fakes.smtp_server import FakeSMTPServer
from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import HOSTILE_TITLE

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"flamewatch end-to-end key 32 b!").decode()


@pytest.fixture(autouse=True)
def fast_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.slack.notifier import SlackNotifier

    monkeypatch.setattr(SlackNotifier, "min_interval", 0.01)


async def test_levels_reach_slack_email_digest_and_webhook_exactly_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-fake-valid-token")
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    world = World(seed=9, stories=0)
    hostile = world.add_story(HOSTILE_TITLE, score=42)
    calm = world.add_story("Show HN: a calm thread", score=7, url="https://example.com/calm?a=1&b=<2>")
    for story in (hostile, calm):
        world.add_replies(story, 3)

    async with (
        SimulatorServer(world) as sim,
        FakeSlack(channels={"#hn": "C0HN", "#live": "C0LIVE"}) as slack,
        FakeSMTPServer() as smtp,
        FakeWebhookReceiver(WEBHOOK_SECRET) as receiver,
    ):
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [5, 10]},
            "store": {"path": str(tmp_path / "fw.db")},
            "delivery": {"retry_base": 0.01},
            "notifiers": [
                {"name": "slack", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#hn",
                 "base_url": slack.api_url},
                {"name": "slack-live", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#live",
                 "base_url": slack.api_url, "live_count": True},
                {"name": "mail", "type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                 "sender": "flamewatch@example.com", "to": ["me@example.com"]},
                {"name": "digest", "type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                 "sender": "flamewatch@example.com", "to": ["digest@example.com"], "digest": "24h"},
                {"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"}},
            ],
        }, "e2e.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            for cycle, grow_to in enumerate((None, 7, 12)):  # 3 comments, then past 5, then past 10
                if grow_to is not None:
                    for story in (hostile, calm):
                        world.add_replies(story, grow_to - world.visible_count(story))
                await app.monitor.cycle(cycle)
                await app.dispatcher.wait_idle()
            assert await app.dispatcher.flush_digests() == 4
            await app.dispatcher.wait_idle()
            outbox = await app.store.outbox_counts()  # type: ignore[union-attr]

        keys = {f"{s}:comments:{level}" for s in (hostile, calm) for level in (5, 10)}
        assert outbox["pending"] == 0 and outbox["dead"] == 0

        # Slack, plain mode: exactly one message per story and level.
        plain = [m for m in slack.messages if m.channel == "C0HN"]
        assert len(plain) == 4
        # Slack, live mode: one message per story, updated when the next level is reached.
        live = [m for m in slack.messages if m.channel == "C0LIVE"]
        assert len(live) == 2 and all(len(m.updates) == 1 for m in live)
        for message in plain + live:
            raw = message.all_text
            assert "<!channel>" not in raw and "<b>" not in raw and "\r\n" not in raw
        hostile_msgs = [m for m in plain if "Bcc" in m.rendered.text]
        assert hostile_msgs and all("<!channel> Ask HN: 'quotes' & <b>tags</b>" in m.rendered.text
                                    for m in hostile_msgs)
        assert not any(m.rendered.mentions for m in plain + live)

        # Email: one immediate mail per event, one digest holding all four.
        await smtp.wait_for_messages(5)
        immediate = [m for m in smtp.mails if m.rcpt_tos == ["me@example.com"]]
        digests = [m for m in smtp.mails if m.rcpt_tos == ["digest@example.com"]]
        assert len(immediate) == 4 and len(digests) == 1
        for mail in immediate + digests:
            msg = mail.message
            assert msg.get_content_type() == "multipart/alternative"
            assert "bcc" not in {k.lower() for k in msg}
        digest = digests[0].message
        html = digest.get_body(("html",)).get_content()
        plain_text = digest.get_body(("plain",)).get_content()
        assert "&lt;!channel&gt; Ask HN: &#x27;quotes&#x27; &amp; &lt;b&gt;tags&lt;/b&gt;" in html
        assert "<!channel> Ask HN: 'quotes' & <b>tags</b>" in plain_text
        # The digest held both levels of each story: only the highest is sent, the 5s are superseded.
        assert "Show HN: a calm thread" in plain_text and "2 alerts" in plain_text

        # Webhook: every request verified, one delivery per key, no duplicates.
        assert not receiver.rejected
        bodies = [d.body for d in receiver.deliveries]
        assert {b["data"]["key"] for b in bodies} == keys
        assert len(bodies) == 4 and not receiver.duplicates
        titles = {b["data"]["story"]["title"] for b in bodies}
        assert HOSTILE_TITLE in titles  # byte-faithful inside the JSON
        assert Counter(b["data"]["level"] for b in bodies) == {5: 2, 10: 2}
