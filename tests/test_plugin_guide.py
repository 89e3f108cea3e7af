"""The README's "write your own notifier" example, taken from the README itself and run for real.

The plugin is dropped into a plugins directory (one of the two ways the guide offers), configured in
TOML, fed events by a real watcher cycle against the simulator, and delivers to a real local server
standing in for ntfy.sh. The guide's test of it (``flamewatch.testing``'s kit) is run by pytest as a
plugin author would run it. If the README's code stops working, this test fails.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from flamewatch import DeliveryError, PermanentDeliveryError
from flamewatch.app import App, load_plugins
from flamewatch.config import ConfigError, load_config
from flamewatch.simulator import SimulatorServer, World
from flamewatch.testing import HOSTILE_TITLE, FakeService, make_event, notifier_context

README = Path(__file__).resolve().parents[1] / "README.md"


def guide_source(name: str = "flamewatch_ntfy.py") -> str:
    blocks = re.findall(rf"```python\n(# {re.escape(name)}\n.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, f"README must hold exactly one {name} example"
    return blocks[0]


class FakeNtfy(FakeService):
    """Accepts POST /<topic> like ntfy.sh and keeps what it got (refusals on cue: ``fail_next``)."""

    def __init__(self) -> None:
        super().__init__()
        self.posts: list[tuple[str, str, dict[str, str]]] = []

    def routes(self, router: web.UrlDispatcher) -> None:
        router.add_post("/{topic}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append((request.match_info["topic"], await request.text(), dict(request.headers)))
        return web.Response()


@pytest.fixture
async def ntfy() -> AsyncIterator[FakeNtfy]:
    async with FakeNtfy() as fake:
        yield fake


def write_setup(tmp_path: Path, server: str, api_url: str, extra: str = "") -> Path:
    plugins = tmp_path / "plugins"
    plugins.mkdir(exist_ok=True)
    (plugins / "flamewatch_ntfy.py").write_text(guide_source())
    config = tmp_path / "flamewatch.toml"
    config.write_text(f"""
[hn]
api_url = "{api_url}"
[rules]
comment_levels = [5]
[store]
path = "{tmp_path / 'fw.db'}"
[plugins]
dirs = ["{plugins}"]
entry_points = false   # plugins/flamewatch-ntfy, once installed, offers "ntfy" too
[[notifiers]]
type = "ntfy"
topic = "hn-alerts"
server = "{server}"
{extra}
""")
    return config


async def test_guide_plugin_delivers_real_events(tmp_path: Path, ntfy: FakeNtfy) -> None:
    fake, server = ntfy, ntfy.url
    world = World(seed=2, stories=0)
    story = world.add_story(HOSTILE_TITLE)
    world.add_replies(story, 6)
    async with SimulatorServer(world) as sim:
        config = load_config(write_setup(tmp_path, server, sim.base_url))
        async with App(config) as app:
            assert app.monitor is not None and app.dispatcher is not None
            await app.monitor.cycle(0)
            await app.dispatcher.wait_idle()
    assert len(fake.posts) == 1
    topic, body, headers = fake.posts[0]
    assert topic == "hn-alerts"
    assert "reached 5 comments" in body
    assert "\r" not in body and "\n" not in body  # the title's CR/LF, flattened by flamewatch.text
    assert headers["Click"] == f"https://news.ycombinator.com/item?id={story}"


@pytest.mark.looptime(start=0)  # the 429's Retry-After (7 s) holds the topic: on the fake loop clock, at once
async def test_guide_plugin_maps_http_errors_for_the_core(tmp_path: Path, ntfy: FakeNtfy) -> None:
    fake, server = ntfy, ntfy.url
    config = load_config(write_setup(tmp_path, server, "http://127.0.0.1:9"))
    plugins = load_plugins(config)
    ntfy_type = plugins.notifier_types()["ntfy"]

    async with aiohttp.ClientSession() as session:
        notifier = ntfy_type(notifier_context(session), ntfy_type.Options(topic="t", server=server))
        fake.fail_next(1, status=429, retry_after=7)
        with pytest.raises(DeliveryError) as retry:
            await notifier.send(make_event())
        assert retry.value.retry_after == 7
        fake.fail_next(1, status=403)
        with pytest.raises(PermanentDeliveryError):
            await notifier.send(make_event())


def test_guide_plugin_options_are_validated_from_config(tmp_path: Path) -> None:
    config = load_config(write_setup(tmp_path, "https://ntfy.sh", "http://127.0.0.1:9", extra="priority = 5"))
    with pytest.raises(ConfigError, match=r"notifiers\[0\] \(ntfy\)\.priority: unknown key for type 'ntfy'"):
        App(config)


def test_guide_test_passes_with_the_testing_kit(tmp_path: Path) -> None:
    (tmp_path / "flamewatch_ntfy.py").write_text(guide_source())
    (tmp_path / "test_flamewatch_ntfy.py").write_text(guide_source("test_flamewatch_ntfy.py"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-W", "error", "-p", "no:cacheprovider",
                             "-o", "asyncio_mode=auto", "-o", "asyncio_default_fixture_loop_scope=function",
                             "--rootdir", str(tmp_path), str(tmp_path)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"^1 passed", result.stdout, re.M), result.stdout
