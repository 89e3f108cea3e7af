"""The CLI as a user runs it: a subprocess with a config file, against real loopback servers.

The subprocesses are started with asyncio so the simulator and the webhook receiver, which live on the
test's event loop, keep serving while the CLI talks to them.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import FLAMEWATCH
from fakes.webhook_receiver import FakeWebhookReceiver

from flamewatch.simulator import SimulatorServer

TRACEBACK = "Traceback (most recent call last)"
BUILTINS = ("console", "email", "slack", "webhook")
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"flamewatch-cli-test-key-32-bytes").decode()


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    def error_line(self) -> str:
        """The single error line on stderr (fails if there are several, or none)."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("flamewatch: error: "), lines[0]
        return lines[0].removeprefix("flamewatch: error: ")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """An environment where no user config or state can leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLAMEWATCH_", "SLACK_", "SMTP_"))}
    env.update(HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               XDG_STATE_HOME=str(tmp_path / "xdg-state"), PYTHONWARNINGS="error")
    return env


@pytest.fixture
def cli(tmp_path: Path, env: dict[str, str]):
    """``await cli(*args, config=TEXT)`` runs flamewatch with TEXT as its config file (``config_path``)."""

    async def run(
        *args: str, config: str | None = None, config_path: Path | None = None, extra_env: dict[str, str] | None = None
    ) -> Run:
        prefix: list[str] = []
        if config is not None:
            path = config_path or tmp_path / "flamewatch.toml"
            path.write_text(config)
            path.chmod(0o600)  # as a config that may hold credentials should be (else: one warning line)
            prefix = ["-c", str(path)]
        proc = await asyncio.create_subprocess_exec(
            *FLAMEWATCH, *prefix, *args, cwd=tmp_path, env={**env, **(extra_env or {})},
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(30):
            out, err = await proc.communicate()
        result = Run(proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode())
        assert TRACEBACK not in result.err, result.err
        return result

    return run


def webhook_config(url: str) -> str:
    return f'[[notifiers]]\nname = "hooks"\ntype = "webhook"\nurl = "{url}"\nsecret = {{ env = "FW_HOOK_SECRET" }}\n'


# --- check / plugins -------------------------------------------------------------------------------


async def test_check_lists_plugins_and_notifiers_without_secrets(cli) -> None:
    config = (
        '[watch]\ntop = 7\n'
        '[[notifiers]]\ntype = "console"\n'
        '[[notifiers]]\nname = "hooks"\ntype = "webhook"\nmin_comments = 100\n'
        'url = "https://alerts.example.com/hook/urlsekrit?t=querysekrit"\nsecret = { env = "FW_HOOK_SECRET" }\n'
        'headers = { "X-Token" = "headersekrit" }\n'
        '[[notifiers]]\nname = "slack-hook"\ntype = "slack"\nwebhook_url = { env = "FW_SLACK_URL" }\n'
        '[[notifiers]]\nname = "mail"\ntype = "email"\nhost = "smtp.example.com"\nsender = "a@example.com"\n'
        'to = ["b@example.com"]\nusername = "a"\npassword = { env = "FW_SMTP_PASSWORD" }\nenabled = false\n'
    )
    secrets = {"FW_HOOK_SECRET": WEBHOOK_SECRET, "FW_SLACK_URL": "https://hooks.slack.com/services/T/B/slacksekrit",
               "FW_SMTP_PASSWORD": "smtpsekrit"}
    run = await cli("check", config=config, extra_env=secrets)
    assert run.code == 0, run.err
    assert "top 7" in run.out
    for name in BUILTINS:
        assert f"  {name} (built-in flamewatch.notifiers.{name}): flamewatch_notifier_types" in run.out
    assert "  hooks (type webhook): >= 100 comments" in run.out
    assert "      secret = Secret(env='FW_HOOK_SECRET')" in run.out
    assert "      url = 'https://alerts.example.com/…'" in run.out
    assert "      webhook_url = Secret(env='FW_SLACK_URL')" in run.out
    assert "  mail (type email): disabled" in run.out
    for value in ("sekrit", WEBHOOK_SECRET.removeprefix("whsec_")):
        assert value not in run.out + run.err


BAD_CONFIGS = [
        ('[watch]\nperiod = "soon"\n', 'watch.period: expected a number of seconds or a duration like "90s"'),
        ("[watch]\ntopp = 3\n", "watch.topp: unknown key"),
        ("[watch\n", "line 1, column"),
        # Without entry points, so plugins installed from plugins/ (CI does) do not change the list.
        ('[plugins]\nentry_points = false\n[[notifiers]]\ntype = "pager"\n',
         "notifiers[0] (pager).type: unknown notifier type 'pager' (available: console, email, feed, slack, webhook)"),
        ('[[notifiers]]\ntype = "webhook"\nurl = "http://x"\nsecret = "whsec_plain"\n',
         "notifiers[0] (webhook).secret: secrets are not written in the config file"),
        ('[[notifiers]]\ntype = "webhook"\nurl = "http://x"\nsecret = { env = "FW_UNSET_SECRET" }\n',
         "notifiers[0] (webhook).secret: environment variable FW_UNSET_SECRET is not set"),
        ('[[notifiers]]\ntype = "console"\nstream = "stdout"\nstreem = 1\n',
         "notifiers[0] (console).streem: unknown key for type 'console'"),
        ("[rules]\ncomment_levls = [5]\n", "rules.comment_levls: unknown key (known keys here: comment_levels, "),
        ('[rules]\ncomment_levels = [5, "x"]\n', "rules.comment_levels[1]: expected a positive whole number, got 'x'"),
        ('[[rules.mentions]]\nname = "dup"\nterms = ["re:(a)\\\\1"]\n',
         "rules.mentions[0].terms: mention 'dup': pattern 're:(a)\\\\1' does not compile: invalid escape sequence"),
]


async def test_check_bad_config_is_one_line_and_status_2(cli, tmp_path: Path) -> None:
    # One subprocess per case, run side by side to keep the file fast.
    paths = [tmp_path / f"bad{i}.toml" for i in range(len(BAD_CONFIGS))]
    runs = await asyncio.gather(
        *(cli("check", config=config, config_path=path) for (config, _), path in zip(BAD_CONFIGS, paths, strict=True))
    )
    for (config, expected), path, run in zip(BAD_CONFIGS, paths, runs, strict=True):
        assert (run.code, run.out) == (2, ""), config
        line = run.error_line()
        assert line.startswith(f"{path}: "), line
        assert expected in line, line
        assert "whsec_plain" not in run.err


async def test_check_missing_config_file(cli, tmp_path: Path) -> None:
    run = await cli("-c", str(tmp_path / "absent.toml"), "check")
    assert (run.code, run.error_line()) == (2, f"{tmp_path / 'absent.toml'}: no such file")


async def test_plugins_lists_the_builtins(cli) -> None:
    run = await cli("plugins")
    assert run.code == 0, run.err
    for name in BUILTINS:
        assert f"  {name} (built-in flamewatch.notifiers.{name})" in run.out
        assert f"  {name} [digest] (plugin {name}): " in run.out


async def test_plugins_reports_a_broken_plugin_and_lists_the_rest(cli, tmp_path: Path) -> None:
    (tmp_path / "myplugins").mkdir()
    (tmp_path / "myplugins" / "broken.py").write_text("raise RuntimeError('broken on purpose')\n")
    run = await cli("plugins", config='[plugins]\ndirs = ["myplugins"]\n')
    assert run.code == 1
    assert "error: plugin broken: " in run.out and "RuntimeError: broken on purpose" in run.out
    assert "  slack [digest] (plugin slack)" in run.out


async def test_a_duplicate_notifier_type_is_one_line_naming_both_plugins(cli, tmp_path: Path) -> None:
    (tmp_path / "myplugins").mkdir()
    (tmp_path / "myplugins" / "myconsole.py").write_text(
        "from flamewatch import Notifier, hookimpl\n"
        "class Mine(Notifier):\n    type_name = 'console'\n"
        "@hookimpl\ndef flamewatch_notifier_types():\n    return [Mine]\n"
    )
    config = '[plugins]\ndirs = ["myplugins"]\n'
    for command in ("plugins", "check"):
        run = await cli(command, config=config)
        assert run.code == 2, (command, run.err)
        assert "notifier type 'console' is offered by both plugin console and plugin myconsole" in run.error_line()


async def test_disabled_plugin_is_not_loaded(cli) -> None:
    run = await cli("plugins", config='[plugins]\ndisable = ["slack"]\n')
    assert run.code == 0, run.err
    assert "slack" not in run.out and "  email (built-in flamewatch.notifiers.email)" in run.out


async def test_bad_arguments_exit_2_without_traceback(cli) -> None:
    run = await cli("count", "not-a-number")
    assert run.code == 2 and "invalid int value" in run.err


# --- count -----------------------------------------------------------------------------------------


def busiest_story(sim: SimulatorServer) -> int:
    return max(sim.world.lists["topstories"], key=sim.world.visible_count)


async def test_count_json(cli, sim: SimulatorServer) -> None:
    story = busiest_story(sim)
    run = await cli("count", "--api-url", sim.base_url, "--json", str(story), config="")
    assert run.code == 0, run.err
    (line,) = run.out.splitlines()
    result = json.loads(line)
    truth = sim.world.tree_stats(story)
    assert result["id"] == story
    assert result["title"] == sim.world.items[story]["title"]
    assert (result["comments"], result["deleted"], result["dead"]) == (
        truth["visible"], truth["deleted"], truth["dead"])
    assert result["unreachable"] == truth["missing"]
    assert result["fetches"] >= truth["items"] > 0


async def test_count_by_hn_url(cli, sim: SimulatorServer) -> None:
    story = busiest_story(sim)
    url = f"https://news.ycombinator.com/item?id={story}"
    run = await cli("count", "--api-url", sim.base_url, "--url", url, config="")
    assert run.code == 0, run.err
    assert run.out.startswith(f"Post {story} has {sim.world.visible_count(story)} comments")


async def test_count_missing_item(cli, sim: SimulatorServer) -> None:
    missing = sim.world.maxitem + 1000
    run = await cli("count", "--api-url", sim.base_url, str(missing), config="")
    assert (run.code, run.out) == (1, "")
    assert run.error_line() == f"item {missing} does not exist (HN answered null)"


async def test_count_unreachable_api(cli, unused_tcp_port: int) -> None:
    run = await cli("count", "--api-url", f"http://127.0.0.1:{unused_tcp_port}/v0", "8863",
                    config="[hn]\nretries = 0\ntimeout = 2\n")
    assert run.code == 1
    assert run.error_line().startswith("item 8863: ")


BAD_COUNT_ARGS = [
        (("--url", "https://news.ycombinator.com/news"), "--url 'https://news.ycombinator.com/news': no numeric id="),
        (("--api-url", "hn.example.com", "1"), "--api-url: expected an http:// or https:// URL"),
        (("0",), "story id must be a positive number, got 0"),
        (("1", "--url", "https://news.ycombinator.com/item?id=2"), "give story ids or --url, not both"),
]


async def test_count_bad_arguments(cli) -> None:
    runs = await asyncio.gather(*(cli("count", *args) for args, _ in BAD_COUNT_ARGS))
    for (args, expected), run in zip(BAD_COUNT_ARGS, runs, strict=True):
        assert run.code == 2, args
        assert run.error_line().startswith(expected), args


# --- notify-test / outbox --------------------------------------------------------------------------


async def test_notify_test_through_a_webhook(cli) -> None:
    async with FakeWebhookReceiver(WEBHOOK_SECRET) as receiver:
        run = await cli("notify-test", config=webhook_config(receiver.url),
                        extra_env={"FW_HOOK_SECRET": WEBHOOK_SECRET})
        assert run.code == 0, run.err
        assert run.out.splitlines() == ["hooks (webhook): OK"]
        (delivery,) = receiver.deliveries
        assert delivery.verified and receiver.rejected == []
        assert "flamewatch test" in json.dumps(delivery.body)


async def test_notify_test_receiver_down(cli) -> None:
    async with FakeWebhookReceiver(WEBHOOK_SECRET) as receiver:
        await receiver.go_down()
        run = await cli("notify-test", config=webhook_config(receiver.url),
                        extra_env={"FW_HOOK_SECRET": WEBHOOK_SECRET})
    assert run.code == 1
    (line,) = run.out.splitlines()
    assert line.startswith("hooks (webhook): FAILED: ")
    assert "cannot connect" in line and "Connection refused" in line, line
    assert "/hooks/flamewatch" not in run.out + run.err  # the URL's path is never shown


async def test_notify_test_unknown_instance(cli) -> None:
    run = await cli("notify-test", "--notifier", "nope", config='[[notifiers]]\ntype = "console"\n')
    assert run.code == 2
    assert run.error_line().startswith("--notifier 'nope': no such enabled notifier")


async def test_outbox_on_an_empty_store(cli, tmp_path: Path) -> None:
    run = await cli("outbox", "--store", str(tmp_path / "state" / "fw.db"), config="")
    assert (run.code, run.out) == (0, "outbox: empty\n"), run.err


async def test_outbox_store_that_is_not_a_database(cli, tmp_path: Path) -> None:
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    run = await cli("outbox", "--store", str(tmp_path / "junk.db"), config="")
    assert run.code == 1
    assert "junk.db" in run.error_line()


def slack_config(api_url: str) -> str:
    return (f'[[notifiers]]\nname = "team"\ntype = "slack"\ntoken = {{ env = "FW_SLACK_TOKEN" }}\n'
            f'channel = "#hn"\nbase_url = "{api_url}"\n')


def mail_config(port: int, password_env: str | None = None) -> str:
    auth = f'username = "bot"\npassword = {{ env = "{password_env}" }}\n' if password_env else ""
    return (f'[[notifiers]]\nname = "mail"\ntype = "email"\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
            f'sender = "flamewatch@example.com"\nto = ["me@example.com"]\n{auth}')


async def test_notify_test_slack_ok_and_wrong_token(cli) -> None:
    from fakes.slack_api import FakeSlack

    async with FakeSlack(token="xoxb-right") as slack:
        ok = await cli("notify-test", config=slack_config(slack.api_url), extra_env={"FW_SLACK_TOKEN": "xoxb-right"})
        bad = await cli("notify-test", config=slack_config(slack.api_url), extra_env={"FW_SLACK_TOKEN": "xoxb-wrong"})
    assert ok.code == 0 and ok.out.splitlines() == ["team (slack): OK"], ok.err
    assert len(slack.messages) == 1
    assert bad.code == 1
    (line,) = bad.out.splitlines()
    assert line.startswith("team (slack): FAILED: ") and "invalid_auth" in line and "permanent" in line
    assert "xoxb-wrong" not in bad.out + bad.err


async def test_notify_test_email_ok_wrong_password_and_down(cli, unused_tcp_port: int) -> None:
    from fakes.smtp_server import FakeSMTPServer

    async with FakeSMTPServer(auth=("bot", "right")) as smtp:
        ok = await cli("notify-test", config=mail_config(smtp.port, "FW_PW"), extra_env={"FW_PW": "right"})
        bad = await cli("notify-test", config=mail_config(smtp.port, "FW_PW"), extra_env={"FW_PW": "wrong"})
        await smtp.wait_for_messages(1)
    down = await cli("notify-test", config=mail_config(unused_tcp_port))
    assert ok.code == 0 and ok.out.splitlines() == ["mail (email): OK"], ok.out + ok.err
    assert bad.code == 1 and "permanent" in bad.out and "wrong" not in bad.out.replace("mail (email)", "")
    assert down.code == 1 and "FAILED" in down.out and "retried" in down.out


async def test_outbox_lists_retries_and_drops_dead_letters(cli, tmp_path: Path) -> None:
    import time

    from flamewatch.store import open_store
    from flamewatch.testing import make_event, make_story

    path = tmp_path / "fw.db"
    first, second = make_event(make_story(1)), make_event(make_story(2))
    async with await open_store(path) as store:
        await store.record_events([first, second], {first.key: ["hook"], second.key: ["hook"]}, time.time())
        rows = {r.event.key: r.id for r in await store.pending()}
        await store.mark_dead([rows[first.key], rows[second.key]], error="HTTP 401 from receiver")

    listed = await cli("outbox", "--store", str(path), config="")
    assert listed.code == 0 and "2 dead" in listed.out
    assert listed.out.count("HTTP 401 from receiver") == 2 and first.key in listed.out

    retried = await cli("outbox", "retry", "--id", str(rows[first.key]), "--store", str(path), config="")
    dropped = await cli("outbox", "drop", "--id", str(rows[second.key]), "--store", str(path), config="")
    assert "1 deliveries queued for retry" in retried.out and "1 deliveries dropped" in dropped.out
    async with await open_store(path) as store:
        assert [r.event.key for r in await store.pending()] == [first.key]
        assert await store.outbox("dead") == []


async def test_once_prints_one_readable_line_per_story(cli, sim: SimulatorServer, tmp_path: Path) -> None:
    run = await cli("once", "--top", "3", "--api-url", sim.base_url, "--store", str(tmp_path / "fw.db"),
                    config='[[notifiers]]\ntype = "console"\n')
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    ids = sim.world.lists["topstories"][:3]
    assert [line.split()[2] for line in lines] == [str(i) for i in ids]
    assert lines[0].startswith("  1. Post ") and f"has {sim.world.visible_count(ids[0])} comments: " in lines[0]
