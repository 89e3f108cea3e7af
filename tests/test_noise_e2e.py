"""Noise control end to end: the simulator, a real App, the CLI in a subprocess and the notifier test servers.

* a silence added with ``flamewatch silence add`` while the daemon runs applies at its next cycle, and
  ``flamewatch outbox`` lists the stopped delivery as silenced;
* ``group_wait`` turns the events of one window into one Slack message, one mail and one webhook body
  (each event keeping its key);
* quiet hours and a group are one line each when written wrong.
"""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from pathlib import Path

import pytest

from fakes.slack_api import FakeSlack
from fakes.smtp_server import FakeSMTPServer
from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch.app import App
from flamewatch.config import ConfigError, parse_config
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import RecordingNotifier, make_test_plugins, plugin_offering

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"flamewatch grouping test key 32!").decode()


async def flamewatch(*args: str, cwd: Path) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLAMEWATCH_")}
    env.update(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / "xdg"), XDG_STATE_HOME=str(cwd / "state"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "-q", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(30):
        out, err = await proc.communicate()
    assert "Traceback" not in err.decode()
    return proc.returncode or 0, out.decode(), err.decode()


async def test_a_silence_added_from_the_cli_applies_at_the_next_cycle(tmp_path: Path) -> None:
    world = World(seed=4, stories=0)
    noisy = world.add_story("A flame war", top=True)
    calm = world.add_story("A calm thread", top=True)
    for story in (noisy, calm):
        world.add_replies(story, 3)
    db = str(tmp_path / "fw.db")
    async with SimulatorServer(world) as sim:
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [5]},
            "store": {"path": db},
            "notifiers": [{"type": "recording", "name": "sink"}],
        }, "silence.toml")
        async with App(config, plugins=make_test_plugins(plugin_offering(RecordingNotifier))) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            code, out, err = await flamewatch("silence", "add", f"story:{noisy}", "--for", "6h",
                                              "--comment", "flame war", "--store", db, cwd=tmp_path)
            assert (code, err) == (0, ""), err
            assert out.startswith(f"silence s1 added: story:{noisy} until ")
            for story in (noisy, calm):
                world.add_replies(story, 4)
            await app.monitor.cycle(1)
            await app.dispatcher.wait_idle()
            (sink,) = [instance.notifier for instance in app.instances]
            assert isinstance(sink, RecordingNotifier)
            assert [e.story.id for e in sink.sent] == [calm]

        # The default listing is what needs attention (pending, dead); silenced rows are listed on demand.
        code, out, _ = await flamewatch("outbox", "--store", db, cwd=tmp_path)
        assert code == 0 and not [x for x in out.splitlines() if x.startswith("  #")]
        code, out, _ = await flamewatch("outbox", "--status", "silenced", "--store", db, cwd=tmp_path)
        assert code == 0
        (line,) = [x for x in out.splitlines() if x.startswith("  #")]
        assert " silenced " in line and f"{noisy}:comments:5" in line
        assert line.split()[1] == "silenced" and f"(silenced by s1 story:{noisy} (flame war))" in line
        code, out, _ = await flamewatch("outbox", "--status", "silenced", "--store", db, cwd=tmp_path)
        assert code == 0 and f"{noisy}:comments:5" in out and f"{calm}:comments:5" not in out
        code, out, _ = await flamewatch("silence", "list", "--store", db, cwd=tmp_path)
        assert "silences: 1 active" in out and f"story:{noisy}" in out and "flame war" in out
        code, out, _ = await flamewatch("silence", "expire", "s1", "--store", db, cwd=tmp_path)
        assert (code, out.strip()) == (0, f"silence s1 expired: story:{noisy}")
        code, _, err = await flamewatch("silence", "add", "stroy:1", "--store", db, cwd=tmp_path)
        assert code == 2 and err.strip() == ("flamewatch: error: silence 'stroy:1': expected story:ID, "
                                             "domain:DOMAIN, user:NAME or term:TEXT")


@pytest.fixture
def fast_slack_pacing(monkeypatch: pytest.MonkeyPatch) -> None:
    from flamewatch.notifiers.slack.notifier import SlackNotifier

    monkeypatch.setattr(SlackNotifier, "min_interval", 0.01)


@pytest.mark.usefixtures("fast_slack_pacing")
async def test_group_wait_sends_one_message_per_channel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_TOKEN", "xoxb-fake-valid-token")
    monkeypatch.setenv("HOOK_SECRET", WEBHOOK_SECRET)
    world = World(seed=6, stories=0)
    stories = [world.add_story(f"Thread {n}", top=True) for n in range(3)]
    for story in stories:
        world.add_replies(story, 3)
    group = {"group_wait": "0.3s"}
    async with (
        SimulatorServer(world) as sim,
        FakeSlack(channels={"#hn": "C0HN"}) as slack,
        FakeSMTPServer() as smtp,
        FakeWebhookReceiver(WEBHOOK_SECRET) as receiver,
    ):
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "rules": {"comment_levels": [5, 10]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [
                {"name": "slack", "type": "slack", "token": {"env": "SLACK_TOKEN"}, "channel": "#hn",
                 "base_url": slack.api_url, **group},
                {"name": "mail", "type": "email", "host": smtp.host, "port": smtp.port, "security": "none",
                 "sender": "flamewatch@example.com", "to": ["me@example.com"], **group},
                {"name": "hook", "type": "webhook", "url": receiver.url, "secret": {"env": "HOOK_SECRET"}, **group},
            ],
        }, "group.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            for story in stories:
                world.add_replies(story, 4)  # past 5
            world.add_replies(stories[0], 5)  # and story 0 past 10 too: its 5 is recorded, not announced
            await app.monitor.cycle(1)
            (message,) = await slack.wait_for_messages(1)
            (mail,) = await smtp.wait_for_messages(1)
            (delivery,) = await receiver.wait_for_deliveries(1)
            await app.dispatcher.wait_idle()
        assert len(slack.messages) == 1 and len(smtp.mails) == 1 and len(receiver.deliveries) == 1
        sections = [b for b in message.payload["blocks"] if b["type"] == "section"]
        assert len(sections) == 3 and all(f"Thread {n}" in message.all_text for n in range(3))
        assert mail.message["X-Flamewatch-Event-Count"] == "3"
        body = delivery.body
        assert body["type"] == "flamewatch.digest"
        keys = sorted(e["key"] for e in body["data"]["events"])
        assert keys == sorted([f"{stories[0]}:comments:10", f"{stories[1]}:comments:5", f"{stories[2]}:comments:5"])


@pytest.mark.parametrize(("table", "message"), [
    ({"quiet_hours": "22:00"}, 'notifiers[0].quiet_hours: expected a window such as "22:00-07:00", got \'22:00\''),
    ({"quiet_hours": "22:00-25:00"}, "notifiers[0].quiet_hours: expected a local time of day"),
    ({"quiet_hours": "22:00-07:00", "timezone": "Europe/Nowhere"}, "notifiers[0].timezone: unknown time zone"),
    ({"group_wait": "soon"}, "notifiers[0].group_wait: expected a number of seconds or a duration"),
    ({"group_wait": "30s", "digest": "1h"}, "notifiers[0].group_wait: a digest already sends events together"),
])
def test_bad_quiet_hours_and_groups_are_one_line(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"notifiers": [{"type": "console", **table}]}, "q.toml")
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"q.toml: {message}"), text
