"""The installed plugin: ``flamewatch plugins`` lists it and ``notify-test`` reaches a json:// receiver."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import URLS_ENV, Receiver

from flamewatch.testing import flamewatch_cli, install_plugin

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    return install_plugin("flamewatch-apprise", PLUGIN_DIR, tmp_path_factory.mktemp("site"))


async def test_installed_plugin_is_listed_and_notify_test_reaches_the_receiver(
    tmp_path: Path, receivers: tuple[Receiver, Receiver], site: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = receivers
    monkeypatch.setenv(URLS_ENV, f"{one.json_url} {two.json_url}")
    config = tmp_path / "fw.toml"
    config.write_text(f"""
[[notifiers]]
name = "everywhere"
type = "apprise"
urls = [{{ env = "{URLS_ENV}" }}]
""")
    listed = await flamewatch_cli("-c", str(config), "plugins", site=site)
    assert re.search(r"^  apprise \(entry point flamewatch_apprise\)", listed, re.M), listed
    assert re.search(r"^  apprise \[digest\] \(plugin apprise\): sends through Apprise", listed, re.M), listed
    answer = await flamewatch_cli("-c", str(config), "notify-test", site=site)
    assert answer.strip() == "everywhere (apprise): OK"
    assert [p["title"][:15] for p in one.posts + two.posts] == ["flamewatch test"] * 2
