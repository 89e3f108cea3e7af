"""File permissions, as OpenSSH's StrictModes: plugin code others can write is refused, config and secret
files others can read are warned about; the webhook URL may be a secret. Real files, real processes.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
from pathlib import Path

import aiohttp
import pytest
from conftest import FLAMEWATCH
from fakes.webhook_receiver import FakeWebhookReceiver

from flamewatch import NotifierContext, PermanentDeliveryError, Secret
from flamewatch.app import App
from flamewatch.config import ConfigError, load_config, parse_config
from flamewatch.notifiers.webhook import WebhookNotifier
from flamewatch.notifiers.webhook.notifier import WebhookOptions
from flamewatch.plugins import make_plugin_manager
from flamewatch.simulator import SimulatorServer, World

PLUGIN = '''
import flamewatch
from flamewatch.testing import RecordingNotifier


class Pager(RecordingNotifier):
    type_name = "pager"


@flamewatch.hookimpl
def flamewatch_notifier_types():
    return [Pager]
'''


def plugin_dir(tmp_path: Path, dir_mode: int = 0o755, file_mode: int = 0o644) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    (directory / "pager.py").write_text(PLUGIN)
    (directory / "pager.py").chmod(file_mode)
    directory.chmod(dir_mode)
    return directory


def loaded(directory: Path) -> tuple[list[str], list[str]]:
    plugins = make_plugin_manager(defaults=False, load_entry_points=False, plugin_dirs=[directory])
    return [info.name for info in plugins.infos], plugins.errors


def test_a_plugin_dir_with_safe_modes_loads(tmp_path: Path) -> None:
    assert loaded(plugin_dir(tmp_path)) == (["pager"], [])


@pytest.mark.parametrize(("mode", "who"), [(0o777, "group and others"), (0o775, "its group"), (0o757, "others")])
def test_a_plugin_dir_others_can_write_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    directory = plugin_dir(tmp_path, dir_mode=mode)
    names, errors = loaded(directory)
    assert names == []
    assert errors == [f"plugins directory {directory} is not loaded: it is writable by {who} "
                      f"(mode d{oct(mode)[-3:].replace('7', 'rwx').replace('5', 'r-x')}); chmod go-w {directory}"]


def test_a_plugin_file_others_can_write_is_refused(tmp_path: Path) -> None:
    directory = plugin_dir(tmp_path, file_mode=0o666)
    names, errors = loaded(directory)
    assert names == []
    (error,) = errors
    assert error.startswith(f"plugin pager: {directory / 'pager.py'} is not loaded: it is writable by group and "
                            "others (mode -rw-rw-rw-)")


async def run_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(*FLAMEWATCH, *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE, env={**os.environ, **(env or {})})
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_the_plugins_command_names_a_world_writable_plugin_dir(tmp_path: Path) -> None:
    directory = plugin_dir(tmp_path, dir_mode=0o777)
    config = tmp_path / "fw.toml"
    config.write_text(f'[plugins]\ndirs = ["{directory}"]\n')
    config.chmod(0o600)
    status, out, _ = await run_cli("-c", str(config), "plugins")
    assert status == 1
    lines = [line for line in out.splitlines() if line.startswith("error: ")]
    assert lines == [f"error: plugins directory {directory} is not loaded: it is writable by group and others "
                     f"(mode drwxrwxrwx); chmod go-w {directory}"]
    assert "pager" not in out.replace(str(directory), "")


async def test_a_config_file_others_can_read_is_warned_about_once_if_it_holds_credentials(tmp_path: Path) -> None:
    config = tmp_path / "fw.toml"
    config.write_text('[watch]\ntop = 5\n[store]\nurl = "postgresql://fw:hunter2@db.example/fw"\n')
    config.chmod(0o644)
    _, _, err = await run_cli("-c", str(config), "check")  # fails: no such database server, and says so
    warnings = [line for line in err.splitlines() if "readable by other users" in line]
    assert len(warnings) == 1 and "hunter2" not in err
    assert (f"config file {config} is readable by other users (mode -rw-r--r--) and holds a value that may "
            f"be a credential (store.url); chmod o-r {config}") in warnings[0]
    config.chmod(0o640)
    _, _, err = await run_cli("-c", str(config), "check")
    assert "readable by other users" not in err and "cannot open store" in err


@pytest.mark.parametrize(("table", "key"), [
    ('[[notifiers]]\ntype = "webhook"\nurl = "https://hooks.example.com/services/T0/B0/XXXX"\n', "notifiers[0].url"),
    ('[[notifiers]]\ntype = "webhook"\nurl = "https://example.com/?key=1"\n', "notifiers[0].url"),
    ('[[notifiers]]\ntype = "webhook"\nurl = "https://example.com/"\n'
     '[notifiers.headers]\nAuthorization = "Bearer s3cr3t"\n', "notifiers[0].headers.Authorization"),
    ('[hn]\napi_url = "https://TOKEN@proxy.example/v0"\n', "hn.api_url"),
])
async def test_a_readable_config_with_something_that_may_be_a_credential_is_warned_about(
    tmp_path: Path, table: str, key: str
) -> None:
    config = tmp_path / "fw.toml"
    config.write_text(table)
    config.chmod(0o644)
    _, out, err = await run_cli("-c", str(config), "check")
    assert f"may be a credential ({key})" in err
    assert "s3cr3t" not in out + err and "TOKEN" not in out + err  # `check` shows none of it either


def test_urls_without_credentials_are_not_taken_for_them() -> None:
    from flamewatch.config.load import _credentials_in

    assert _credentials_in({
        "store": {"url": "postgresql://fw@db.internal/ops?schema=flamewatch&sslmode=require"},
        "hn": {"api_url": "https://hacker-news.firebaseio.com/v0"},
        "notifiers": [{"type": "slack", "base_url": "https://slack.com/api/"},
                      {"type": "webhook", "url": "https://hooks.example.com/"}],
        "rules": {"keywords": ["https://example.com/?q=python"]},
    }, "") is None


async def test_a_config_file_without_credentials_may_be_readable_by_all(tmp_path: Path) -> None:
    # The usual 0644 file with secrets taken from the environment: nothing in it to protect.
    config = tmp_path / "fw.toml"
    config.write_text('[watch]\ntop = 5\n[hn]\napi_url = "https://hacker-news.firebaseio.com/v0"\n'
                      '[[notifiers]]\ntype = "slack"\nchannel = "#hn"\ntoken = { env = "SLACK_BOT_TOKEN" }\n'
                      '[[notifiers]]\ntype = "webhook"\nurl = { env = "HOOK_URL" }\n')
    config.chmod(0o644)
    status, _, err = await run_cli("-c", str(config), "check",
                                   env={"SLACK_BOT_TOKEN": "xoxb-1", "HOOK_URL": "https://h.example/x?t=1"})
    assert status == 0 and "readable by other users" not in err, err


def test_a_secret_file_others_can_read_is_warned_about_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    exposed = tmp_path / "token"
    exposed.write_text("xoxb-secret-value\n")
    exposed.chmod(0o604)
    private = tmp_path / "private"
    private.write_text("xoxb-other\n")
    private.chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="flamewatch.secrets"):
        for _ in range(3):
            assert Secret(file=str(exposed)).reveal() == "xoxb-secret-value"
            assert Secret(file=str(private)).reveal() == "xoxb-other"
    assert [r.getMessage() for r in caplog.records] == [
        f"secret file {exposed} is readable by other users (mode -rw----r--); chmod o-r {exposed}"
    ]
    assert "xoxb" not in caplog.text


# --- the webhook url as a secret ------------------------------------------------------------------------


async def test_the_webhook_url_may_come_from_a_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    monkeypatch.setenv("FW_PERM_HOOK_SECRET", key)
    async with FakeWebhookReceiver(key) as receiver, SimulatorServer(World(seed=4, stories=3,
                                                                           total_comments=60)) as sim:
        url_file = tmp_path / "hook-url"
        url_file.write_text(receiver.url + "?token=s3cr3t\n")
        url_file.chmod(0o600)
        config = parse_config({
            "hn": {"api_url": sim.base_url},
            "watch": {"top": 3},
            "rules": {"comment_levels": [1]},
            "store": {"path": str(tmp_path / "fw.db")},
            "notifiers": [{"type": "webhook", "name": "hook", "url": {"file": str(url_file)},
                           "secret": {"env": "FW_PERM_HOOK_SECRET"}}],
        }, "perm.toml")
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
            fired = app.dispatcher.stats.events
            assert "s3cr3t" not in repr(app.instances[0].notifier.options)
    assert fired >= 1 and len(receiver.deliveries) == fired
    assert all(d.query == "token=s3cr3t" for d in receiver.deliveries)


async def test_a_bad_url_in_the_secret_is_permanent_and_not_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_PERM_HOOK_URL", "ftp://example.com/hook?token=s3cr3t")
    options = WebhookOptions(url=Secret(env="FW_PERM_HOOK_URL"))
    async with aiohttp.ClientSession() as session:
        notifier = WebhookNotifier(NotifierContext(name="hook", session=session), options)
        with pytest.raises(PermanentDeliveryError, match="url: scheme 'ftp' is not supported") as caught:
            await notifier.start()
    assert "s3cr3t" not in str(caught.value) and "FW_PERM_HOOK_URL" in str(caught.value)


def test_a_plain_url_is_still_checked_when_the_config_loads(tmp_path: Path) -> None:
    config = tmp_path / "fw.toml"
    config.write_text('[[notifiers]]\ntype = "webhook"\nurl = "ftp://example.com/x"\n')
    config.chmod(0o600)
    loaded_config = load_config(config)
    with pytest.raises(ConfigError, match="url: scheme 'ftp' is not supported"):
        App(loaded_config)
