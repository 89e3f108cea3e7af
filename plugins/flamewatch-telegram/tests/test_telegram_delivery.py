"""The telegram plugin inside flamewatch: the outbox rides out a 429 burst; the installed entry point works.

The burst is flamewatch itself on looptime's fake clock (:func:`flamewatch.testing.run_until_delivered`).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import TOKEN_ENV
from fake_telegram import FakeTelegram

import flamewatch_telegram
from flamewatch.testing import flamewatch_cli, install_plugin, run_until_delivered
from flamewatch.testing.fixtures import fake_clock

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@fake_clock
async def test_a_429_burst_is_ridden_out_with_nothing_lost_or_doubled(tmp_path: Path, tg: FakeTelegram) -> None:
    tg.fail_next(8, retry_after=5)  # Telegram's flood control: eight refusals in a row
    run = await run_until_delivered(
        {"type": "telegram", "token": {"env": TOKEN_ENV}, "chat_id": -1001, "api_url": tg.url},
        plugins=[flamewatch_telegram], deliveries=12, store_path=tmp_path / "fw.db",
        settings={"delivery": {"retry_base": 1.0, "retry_cap": 10.0}},
        clock=asyncio.get_running_loop().time, timeout=None)
    delivered = Counter(int(m) for message in tg.messages for m in re.findall(r"item\?id=(\d+)", message.links[-1][0]))
    assert delivered == Counter({story: 1 for story in run.story_ids})
    assert len(delivered) == 12
    assert [r.status for r in tg.rejected] == [429] * 8  # only the forced ones: pacing caused none
    assert run.took >= 8 * 5  # every retry_after was waited out
    print(f"\ntelegram: 12 events through 8 x 429 (retry_after 5 s) delivered once each in {run.took:.1f} s "
          "(loop clock)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return install_plugin("flamewatch-telegram", PLUGIN_DIR, tmp_path_factory.mktemp("site"))


async def test_installed_plugin_is_listed_and_notify_test_reaches_the_fake(
    tmp_path: Path, tg: FakeTelegram, site: str | None
) -> None:
    config = tmp_path / "fw.toml"
    config.write_text(f"""
[[notifiers]]
name = "phone"
type = "telegram"
token = {{ env = "{TOKEN_ENV}" }}
chat_id = -1001
message_thread_id = 7
api_url = "{tg.url}"
""")
    listed = await flamewatch_cli("-c", str(config), "plugins", site=site)
    assert re.search(r"^  telegram \(entry point flamewatch_telegram\)", listed, re.M), listed
    assert re.search(r"^  telegram \[digest\] \(plugin telegram\): sends HTML messages", listed, re.M), listed
    answer = await flamewatch_cli("-c", str(config), "notify-test", site=site)
    assert answer.strip() == "phone (telegram): OK"
    assert len(tg.messages) == 1 and tg.messages[0].thread_id == 7 and "flamewatch test" in tg.messages[0].text
