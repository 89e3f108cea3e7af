"""The status page in a real browser: headless Chromium (Debian's package) driven by Playwright.

Playwright's own browser download cannot work on these machines, so the tests use /usr/bin/chromium.
Without it they skip, saying why; with ``CI=true`` a missing browser is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fakes.status_app import running_face

from flamewatch.simulator import World
from flamewatch.testing import HOSTILE_TITLE

CHROMIUM = "/usr/bin/chromium"
#: The README's picture. The test writes its screenshot into its own temporary directory; set
#: FLAMEWATCH_UPDATE_SCREENSHOT=1 to refresh the committed one (a test run leaves the tree clean).
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "status-page.png"


def _need_chromium() -> None:
    reason = None
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} is missing (apt-get install -y chromium)"
    else:
        try:
            import playwright.async_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is missing (pip install '.[test]')"
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run under CI: {reason}")
        pytest.skip(reason)


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    _need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        try:
            page = await browser.new_page(viewport={"width": 1400, "height": 1000})
            yield page
        finally:
            await browser.close()


async def test_hostile_title_renders_as_text_and_a_new_cycle_updates_the_page(
    tmp_path: Path, browser_page: Any
) -> None:
    from playwright.async_api import expect

    world = World(seed=7, stories=10, total_comments=600)
    hostile = world.add_story(HOSTILE_TITLE, score=50, url="https://evil.example/x", rank=0)
    async with running_face(tmp_path / "fw.db", world) as face:
        await face.cycle()
        page = browser_page
        await page.goto(face.url)
        row = page.locator(f'tr[data-story="{hostile}"]')
        title_link = row.locator("td.title a")
        # The title is text: its tags are characters on screen, not elements in the DOM.
        assert "<b>tags</b>" in await title_link.inner_text()
        assert await row.locator("td.title b").count() == 0
        assert await page.evaluate("document.querySelectorAll('main b').length") == 0
        assert await row.locator("svg.spark").count() == 1

        # A marker in the page's JS state survives only if the page is not reloaded.
        await page.evaluate("window.__flamewatchMarker = 42")
        assert await page.locator('tr[data-cycle="0"]').count() == 1
        stats = await face.cycle(grow=150)
        # Waited for with locators: the page's CSP allows no string evaluation (wait_for_function).
        await expect(page.locator(f'tr[data-cycle="{stats.cycle}"]')).to_have_count(1, timeout=15_000)
        assert await page.evaluate("window.__flamewatchMarker") == 42
        await face.cycle(grow=150)  # a third point for the sparklines
        version = str(face.server.source.recorder.version)
        await expect(page.locator("#status")).to_have_attribute("data-version", version, timeout=15_000)
        assert await page.locator("svg.spark polyline").count() > 0



async def test_the_token_link_opens_the_page_and_a_wrong_one_says_so(tmp_path: Path, browser_page: Any) -> None:
    """``[http] token``: ``/#token=...`` loads the shell and its script, which fetches the data with the
    token as a header; the token never appears in a request's address."""
    from playwright.async_api import expect

    token = tmp_path / "token"
    token.write_text("s3cret-t0ken\n")
    world = World(seed=3, stories=5, total_comments=200)
    async with running_face(tmp_path / "fw.db", world, top=5, token_file=token) as face:
        await face.cycle()
        page = browser_page
        sent: list[tuple[str, str | None]] = []
        page.on("request", lambda request: sent.append((request.url, request.headers.get("authorization"))))
        await page.goto(face.url + "#token=s3cret-t0ken")
        await expect(page.locator('tr[data-cycle="0"]')).to_have_count(1, timeout=15_000)
        assert await page.locator("table.stories tbody tr").count() >= 3
        await face.cycle(grow=100)  # and it keeps itself up to date
        await expect(page.locator('tr[data-cycle="1"]')).to_have_count(1, timeout=15_000)
        assert all("s3cret" not in url for url, _ in sent)
        assert any(url.startswith(face.url + "fragment") and auth == "Bearer s3cret-t0ken" for url, auth in sent)

        await page.goto(face.url + "#token=wrong")
        await page.reload()  # a new fragment alone does not load the page again
        await expect(page.locator("#waiting")).to_have_text("The token in this address is wrong.", timeout=15_000)
        assert await page.locator("table.stories").count() == 0


async def test_page_uses_no_outside_resources_and_has_a_dark_mode(tmp_path: Path, browser_page: Any) -> None:
    world = World(seed=2, stories=4, total_comments=100)
    async with running_face(tmp_path / "fw.db", world, top=4) as face:
        await face.cycle()
        requests: list[str] = []
        browser_page.on("request", lambda request: requests.append(request.url))
        await browser_page.emulate_media(color_scheme="dark")
        await browser_page.goto(face.url)
        dark = await browser_page.evaluate("getComputedStyle(document.body).backgroundColor")
        await browser_page.emulate_media(color_scheme="light")
        light = await browser_page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert dark != light and dark == "rgb(22, 22, 26)"
        assert requests and all(url.startswith(face.url) for url in requests)


async def test_demo_prints_its_status_page_which_shows_its_cycles(browser_page: Any, tmp_path: Path) -> None:
    """The screenshot in the README: the status page during ``flamewatch demo``."""
    from playwright.async_api import expect

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "flamewatch", "-q", "demo", "--duration", "8", "--period", "1", "--http", "127.0.0.1:0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    try:
        url = None
        async with asyncio.timeout(30):
            while url is None:
                line = (await proc.stdout.readline()).decode()
                assert line, "the demo ended without printing its status page address"
                if line.startswith("status page: "):
                    url = line.split()[2]
        assert url.startswith("http://127.0.0.1:")
        page = browser_page
        await page.goto(url)
        await expect(page.locator('tr[data-cycle="3"]')).to_have_count(1, timeout=20_000)
        assert await page.locator("table.stories tbody tr").count() >= 10  # top 15, jobs and dead stories aside
        shot = SCREENSHOT if os.environ.get("FLAMEWATCH_UPDATE_SCREENSHOT") == "1" else tmp_path / "status.png"
        await page.screenshot(path=str(shot), full_page=False)
        assert shot.stat().st_size > 10_000
        rest, _ = await proc.communicate()
        assert b"summary:" in rest
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0


def test_without_chromium_the_browser_tests_skip_but_fail_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="/nonexistent/chromium is missing"):
        _need_chromium()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="browser tests cannot run under CI"):
        _need_chromium()
