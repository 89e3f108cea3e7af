"""The plugin inside flamewatch: the core's outbox rides out a 429 burst, and the installed entry point works.

The burst runs the real dispatcher over a real SQLite store on looptime's fake clock (many no-op cycles
before each jump let the store's thread answer first, as in flamewatch's own dispatcher tests).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections import Counter
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import aiohttp
import pytest
from conftest import TOKEN_ENV
from fake_ntfy import FakeNtfy

from flamewatch import Evaluation, Secret
from flamewatch.dispatch import Dispatcher, NotifierInstance, RetryPolicy
from flamewatch.store import open_store
from flamewatch.testing import make_event, notifier_context
from flamewatch_ntfy import NtfyNotifier, NtfyOptions

FAKE_START = 1_000_000.0


@pytest.mark.looptime(start=FAKE_START, end=FAKE_START + 86400.0, idle_timeout=10.0, noop_cycles=2000)
async def test_a_429_burst_is_ridden_out_with_nothing_lost_or_doubled(
    tmp_path: Path, session: aiohttp.ClientSession, ntfy: FakeNtfy
) -> None:
    notifier = NtfyNotifier(notifier_context(session, "push"),
                            NtfyOptions(topic="private-alerts", server=ntfy.url, token=Secret(env=TOKEN_ENV)))
    notifier.bucket_size = ntfy.burst  # ntfy.sh's bucket is 60; the fake's is smaller
    ntfy.fail_next(8)  # eight refusals in a row (ntfy names no wait: the notifier holds 5 s)
    events = [make_event(story_id=1000 + i) for i in range(12)]
    async with await open_store(tmp_path / "fw.db") as store:
        dispatcher = Dispatcher(store, [NotifierInstance.of(notifier)], retry=RetryPolicy(base=1.0, cap=10.0),
                                clock=asyncio.get_running_loop().time)
        await dispatcher.start()
        started = dispatcher.clock()
        await dispatcher.publish(Evaluation(announce=events))
        await ntfy.wait_until(lambda: len(ntfy.messages) >= len(events), timeout=None)
        took = dispatcher.clock() - started
        await dispatcher.wait_idle()
        await dispatcher.close(1.0)
    delivered = Counter(int(m) for message in ntfy.messages for m in re.findall(r"item\?id=(\d+)", message.click or ""))
    assert delivered == Counter({1000 + i: 1 for i in range(12)})
    assert [r.status for r in ntfy.rejected] == [429] * 8  # only the forced ones: pacing caused none
    assert took >= 8 * 5  # every hold was waited out
    print(f"\nntfy: 12 events through 8 x 429 (held 5 s each) delivered once each in {took:.1f} s (loop clock)")


PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """Where the installed plugin is: None when this environment has it (CI installs it first), else a
    directory it was just installed into for real with pip (a wheel built from this checkout)."""
    try:
        distribution("flamewatch-ntfy")
        return None
    except PackageNotFoundError:
        pass
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(PLUGIN_DIR)], check=True, capture_output=True)
    return str(target)


async def test_installed_plugin_is_listed_and_notify_test_reaches_the_fake(
    tmp_path: Path, ntfy: FakeNtfy, site: str | None
) -> None:
    config = tmp_path / "fw.toml"
    config.write_text(f"""
[[notifiers]]
name = "push"
type = "ntfy"
topic = "private-alerts"
server = "{ntfy.url}"
token = {{ env = "{TOKEN_ENV}" }}
""")
    listed = await _flamewatch(site, "-c", str(config), "plugins")
    assert re.search(r"^  ntfy \(entry point flamewatch_ntfy\)", listed, re.M), listed
    assert re.search(r"^  ntfy \[digest\] \(plugin ntfy\): push notifications", listed, re.M), listed
    answer = await _flamewatch(site, "-c", str(config), "notify-test")
    assert answer.strip() == "push (ntfy): OK"
    assert len(ntfy.messages) == 1 and ntfy.messages[0].title.startswith("flamewatch test")


async def _flamewatch(site: str | None, *args: str) -> str:
    """Run the ``flamewatch`` command line (with ``site`` first on the path); its stdout, exit status 0."""
    env = dict(os.environ)
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in (site, env.get("PYTHONPATH")) if p)
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "flamewatch", *args, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return out.decode()
