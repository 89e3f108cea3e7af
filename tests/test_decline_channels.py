"""Decline events read well, and harmlessly, on every channel: a story whose *old* title was hostile is
retitled and then killed; Slack (fake API), email (a real SMTP server, one mail and a digest), a signed
webhook and the console each get both events, with nothing from the title able to ping, inject markup or
add a header; the status page's API lists them by kind."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest

from fakes.slack_api import FakeSlack
from fakes.smtp_server import FakeSMTPServer
from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch.app import App
from flamewatch.config import parse_config
from flamewatch.http.server import start_http, stop_http
from flamewatch.simulator import SimulatorServer, World, kill_story, place_on_list, retitle_story
from flamewatch.testing import HOSTILE_TITLE

SECRET = "whsec_" + base64.b64encode(b"flamewatch decline test key 32b!").decode()


@pytest.fixture(autouse=True)
def fast_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.slack.notifier import SlackNotifier

    monkeypatch.setattr(SlackNotifier, "min_interval", 0.01)


async def test_retitled_and_dead_read_well_and_harmlessly_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-fake-valid-token")
    monkeypatch.setenv("HOOK_SECRET", SECRET)
    world = World(seed=11, stories=0)
    story = world.add_story(HOSTILE_TITLE, by="you", top=False)
    place_on_list(world, story, 1)
    async with (
        SimulatorServer(world) as sim,
        FakeSlack(channels={"#me": "C0ME"}) as slack,
        FakeSMTPServer() as smtp,
        FakeWebhookReceiver(SECRET) as receiver,
    ):
        mail = {"type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                "sender": "flamewatch@example.com", "rules": ["decline"]}
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"users": [{"name": "you", "front_page": False, "rank_levels": []}]},
            "rules": {"decline": True},
            "store": {"path": str(tmp_path / "fw.db")},
            "delivery": {"retry_base": 0.01},
            "http": {"listen": "127.0.0.1:0"},
            "notifiers": [
                {"name": "slack", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#me",
                 "base_url": slack.api_url},
                {**mail, "name": "mail", "to": ["me@example.com"]},
                {**mail, "name": "digest", "to": ["digest@example.com"], "digest": "24h"},
                {"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"}},
                {"name": "console", "type": "console", "stream": "stdout", "rules": ["decline"]},
            ],
        }, "decline.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            server = await start_http(app)
            assert server is not None
            try:
                await app.monitor.cycle(0)
                retitle_story(world, story, "A calm title")
                await app.monitor.cycle(1)
                kill_story(world, story)
                await app.monitor.cycle(2)
                await app.dispatcher.wait_idle()
                assert await app.dispatcher.flush_digests() == 2
                await app.dispatcher.wait_idle()
                async with aiohttp.ClientSession() as http, http.get(server.url + "api/events") as response:
                    shown = await response.json()
            finally:
                await stop_http(app, server)

        assert sorted(e["kind"] for e in shown) == ["dead", "retitled"]
        assert {e["label"] for e in shown} == {"dead", "retitled"}
        assert all(e["rule"] == "decline" for e in shown)

        assert len(slack.messages) == 2
        for message in slack.messages:
            raw = message.all_text
            assert "<!channel>" not in raw and "<b>" not in raw and "\r" not in raw
            assert not message.rendered.mentions
        assert any("Retitled" in m.rendered.text and "A calm title" in m.rendered.text for m in slack.messages)

        await smtp.wait_for_messages(3)
        for received in smtp.mails:
            msg = received.message
            assert "bcc" not in {k.lower() for k in msg}
            assert "<b>tags</b>" not in msg.get_body(("html",)).get_content()
        (digest,) = [m for m in smtp.mails if m.rcpt_tos == ["digest@example.com"]]
        plain = digest.message.get_body(("plain",)).get_content()
        assert "What happened next" in plain and "A calm title is dead now" in plain
        old = "<!channel> Ask HN: 'quotes' & <b>tags</b> Bcc: victim@example.com"
        assert f"was retitled; it was \u201c{old}\u201d" in plain

        assert not receiver.rejected
        bodies = {d.body["data"]["key"].split(":")[0]: d.body["data"] for d in receiver.deliveries}
        assert set(bodies) == {"retitled", "dead"}
        assert bodies["retitled"]["story"]["title"] == "A calm title"
        assert "\r\n" not in bodies["retitled"]["wording"]["summary"]

    out = capsys.readouterr().out
    assert "A calm title was retitled" in out and "A calm title is dead now" in out
    assert "\r" not in out
