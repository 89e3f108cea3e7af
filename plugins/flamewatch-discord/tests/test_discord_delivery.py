"""The discord plugin inside flamewatch: the outbox rides out a 429 burst; the installed entry point works.

The burst is flamewatch itself on looptime's fake clock (:func:`flamewatch.testing.run_until_delivered`).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

import pytest
from conftest import URL_ENV
from fake_discord import FakeDiscord

import flamewatch_discord
from flamewatch.testing import flamewatch_cli, install_plugin, run_until_delivered
from flamewatch.testing.fixtures import fake_clock

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@fake_clock
async def test_a_429_burst_is_ridden_out_with_nothing_lost_or_doubled(tmp_path: Path, discord: FakeDiscord) -> None:
    discord.fail_next(8, retry_after=5.0)  # eight refusals in a row
    run = await run_until_delivered(
        {"type": "discord", "webhook_url": {"env": URL_ENV}}, plugins=[flamewatch_discord], deliveries=12,
        store_path=tmp_path / "fw.db", settings={"delivery": {"retry_base": 1.0, "retry_cap": 10.0}},
        clock=asyncio.get_running_loop().time, timeout=None)
    delivered = Counter(int(m) for message in discord.messages for m in re.findall(r"item\?id=(\d+)",
                                                                                 message.shown.links[-1][0]))
    assert delivered == Counter({story: 1 for story in run.story_ids})
    assert len(delivered) == 12
    assert [r.status for r in discord.rejected] == [429] * 8  # only the forced ones: pacing caused none
    assert run.took >= 8 * 5  # every retry_after was waited out
    print(f"\ndiscord: 12 events through 8 x 429 (retry_after 5 s) delivered once each in {run.took:.1f} s "
          "(loop clock)")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return install_plugin("flamewatch-discord", PLUGIN_DIR, tmp_path_factory.mktemp("site"))


async def test_installed_plugin_is_listed_and_notify_test_reaches_the_fake(
    tmp_path: Path, discord: FakeDiscord, site: str | None
) -> None:
    config = tmp_path / "fw.toml"
    config.write_text(f"""
[[notifiers]]
name = "team"
type = "discord"
webhook_url = {{ env = "{URL_ENV}" }}
thread_id = "2200"
""")
    listed = await flamewatch_cli("-c", str(config), "plugins", site=site)
    assert re.search(r"^  discord \(entry point flamewatch_discord\)", listed, re.M), listed
    assert re.search(r"^  discord \[digest\] \(plugin discord\): posts embeds", listed, re.M), listed
    answer = await flamewatch_cli("-c", str(config), "notify-test", site=site)
    assert answer.strip() == "team (discord): OK"
    assert len(discord.messages) == 1 and discord.messages[0].thread_id == "2200"
    assert "flamewatch test" in discord.messages[0].shown.text
