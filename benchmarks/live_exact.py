"""Benchmark 11's exactness: a live App through a burst of new items while its streams drop.

The App runs in this process with no watcher: one cycle walks the watched stories, and from then on only
the live source moves anything. The simulator adds the burst in steps and drops every stream connection
``drops`` times in between; afterwards every burst item must have been handed over by the stream exactly
once, and every story's count in the store must equal the simulator's truth.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path

from flamewatch.app import App
from flamewatch.config import parse_config

from .report import Row, check
from .simserver import SimProcess


async def exactness(n: int, spread: int, drops: int, section: str) -> list[Row]:
    """Rows: items seen other than once, counts unequal to the truth, drops that happened, time to settle."""
    async with SimProcess(stories=0, comments=None) as sim:
        setup = await sim.control("live/setup", stories=spread, comments=3)
        stories: list[int] = setup["stories"]
        with tempfile.TemporaryDirectory(prefix="fw-live-exact-") as tmp:
            config = parse_config({
                "hn": {"api_url": sim.base_url},
                "watch": {"top": spread + 1, "live": True},
                "rules": {"comment_levels": [], "points_levels": []},
                "store": {"path": str(Path(tmp) / "fw.db")},
                "notifiers": [],
            }, "live-exact")
            async with App(config, live=True) as app:
                assert app.monitor is not None and app.stream is not None and app.store is not None
                driver = app.live_driver
                assert driver is not None
                seen: Counter[int] = Counter()
                app.stream.subscribe(lambda item: seen.update((item.id,)))
                await app.monitor.cycle(0)
                source = driver.source
                for stream in source.streams:  # maxitem's and topstories'
                    await stream.wait_until(lambda s=stream: s.live)  # type: ignore[misc]
                connects = source.maxitem_stream.stats.connects
                burst = await sim.control("live/burst", n=n, stories=spread, drops=drops,
                                          streams=len(source.streams))
                started = time.monotonic()
                ids: list[int] = burst["ids"]
                truth = {int(k): v for k, v in (await sim.control("truth")).items() if int(k) in stories}
                counts: dict[int, int] = {}
                while time.monotonic() - started < 60.0:
                    if (app.stream.cursor or 0) >= max(ids) and driver.idle:
                        latest = await app.store.latest(stories)
                        counts = {sid: sample.comments for sid, sample in latest.items()}
                        if counts == truth:
                            break
                    await asyncio.sleep(0.05)
                settled = time.monotonic() - started
                reconnects = source.maxitem_stream.stats.connects - connects
    wrong_seen = sum(1 for i in ids if seen[i] != 1) + sum(1 for i in seen if i > max(ids))
    wrong_counts = sum(1 for sid in stories if counts.get(sid) != truth.get(sid))
    note = f"{n} items over {spread} stories, {burst['dropped']} drops, {reconnects} reconnects"
    return [
        check(section, "burst items seen != once (mismatches)", wrong_seen, "", at_most=0, note=note),
        check(section, "burst count == truth (mismatches)", wrong_counts, "", at_most=0,
              note=f"{len(stories)} stories, no cycle after the first"),
        check(section, "burst stream drops survived", reconnects, "", at_least=drops),
        Row(section, "burst settled after", settled, "s", note="last item published to counts == truth"),
    ]
