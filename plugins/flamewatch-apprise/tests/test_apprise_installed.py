"""The installed plugin: ``flamewatch plugins`` lists it and ``notify-test`` reaches a json:// receiver."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from conftest import URLS_ENV, Receiver

PLUGIN_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """None when this environment has the plugin (CI installs it first), else a directory it was just
    installed into for real with pip (a wheel built from this checkout)."""
    try:
        distribution("flamewatch-apprise")
        return None
    except PackageNotFoundError:
        pass
    target = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target),
                    str(PLUGIN_DIR)], check=True, capture_output=True)
    return str(target)


async def test_installed_plugin_is_listed_and_notify_test_reaches_the_receiver(
    tmp_path: Path, receivers: tuple[Receiver, Receiver], site: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = receivers
    monkeypatch.setenv(URLS_ENV, f"{one.url} {two.url}")
    config = tmp_path / "fw.toml"
    config.write_text(f"""
[[notifiers]]
name = "everywhere"
type = "apprise"
urls = [{{ env = "{URLS_ENV}" }}]
""")
    listed = await _flamewatch(site, "-c", str(config), "plugins")
    assert re.search(r"^  apprise \(entry point flamewatch_apprise\)", listed, re.M), listed
    assert re.search(r"^  apprise \[digest\] \(plugin apprise\): sends through Apprise", listed, re.M), listed
    answer = await _flamewatch(site, "-c", str(config), "notify-test")
    assert answer.strip() == "everywhere (apprise): OK"
    assert [p["title"][:15] for p in one.posts + two.posts] == ["flamewatch test"] * 2


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
