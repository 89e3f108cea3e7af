"""The ntfy plugin inside flamewatch: the outbox rides out a 429 burst; the installed entry point works.

The burst is flamewatch itself on looptime's fake clock (:func:`flamewatch.testing.run_until_delivered`).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOKEN_ENV, Paced
from fake_ntfy import FakeNtfy

from flamewatch.testing import flamewatch_cli, install_plugin, plugin_offering, run_until_delivered
from flamewatch.testing.fixtures import fake_clock

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@fake_clock
async def test_a_429_burst_is_ridden_out_with_nothing_lost_or_doubled(tmp_path: Path, ntfy: FakeNtfy) -> None:
    ntfy.fail_next(8)  # eight refusals in a row (ntfy names no wait: the notifier holds 5 s)
    run = await run_until_delivered(
        {"type": "ntfy", "topic": "private-alerts", "server": ntfy.url, "token": {"env": TOKEN_ENV}},
        plugins=[plugin_offering(Paced)],  # ntfy.sh's bucket is 60; the fake's is smaller
        deliveries=12, store_path=tmp_path / "fw.db", settings={"delivery": {"retry_base": 1.0, "retry_cap": 10.0}},
        clock=asyncio.get_running_loop().time, timeout=None)
    delivered = Counter(int(m) for message in ntfy.messages for m in re.findall(r"item\?id=(\d+)", message.click or ""))
    assert delivered == Counter({story: 1 for story in run.story_ids})
    assert len(delivered) == 12
    assert [r.status for r in ntfy.rejected] == [429] * 8  # only the forced ones: pacing caused none
    assert run.took >= 8 * 5  # every hold was waited out
    print(f"\nntfy: 12 events through 8 x 429 (held 5 s each) delivered once each in {run.took:.1f} s (loop clock)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return install_plugin("flamewatch-ntfy", PLUGIN_DIR, tmp_path_factory.mktemp("site"))


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
    listed = await flamewatch_cli("-c", str(config), "plugins", site=site)
    assert re.search(r"^  ntfy \(entry point flamewatch_ntfy\)", listed, re.M), listed
    assert re.search(r"^  ntfy \[digest\] \(plugin ntfy\): push notifications", listed, re.M), listed
    answer = await flamewatch_cli("-c", str(config), "notify-test", site=site)
    assert answer.strip() == "push (ntfy): OK"
    assert len(ntfy.messages) == 1 and ntfy.messages[0].title.startswith("flamewatch test")
