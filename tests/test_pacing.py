"""``flamewatch.pacing``: the public pacer every rate-limited notifier shares (Slack, Telegram, Discord, ntfy).

Every test runs on looptime's fake loop clock: the pacer sleeps with asyncio.sleep and reads loop.time(),
so the gaps measured here are exact and take no real time.
"""

from __future__ import annotations

import asyncio
import itertools
from email.utils import format_datetime
from datetime import UTC, datetime, timedelta

import pytest

import flamewatch
from flamewatch.pacing import Pace, Pacer, fingerprint, shared_pacer

pytestmark = pytest.mark.looptime(start=0)


async def sends(pacer: Pacer, count: int) -> list[float]:
    """When each of ``count`` requests, made one after another through ``pacer``, went out (loop clock)."""
    loop = asyncio.get_running_loop()
    times = []
    for _ in range(count):
        async with pacer.turn():
            times.append(loop.time())
    return times


async def test_the_facade_offers_the_pacer() -> None:
    assert flamewatch.Pacer is Pacer and flamewatch.shared_pacer is shared_pacer and flamewatch.Pace is Pace
    assert flamewatch.pacing.fingerprint is fingerprint


async def test_interval_spaces_requests_taken_at_once() -> None:
    pacer = Pacer(Pace(interval=1.5))
    loop = asyncio.get_running_loop()
    times: list[float] = []

    async def one() -> None:
        async with pacer.turn():
            times.append(loop.time())

    await asyncio.gather(*(one() for _ in range(4)))
    assert times == [0.0, 1.5, 3.0, 4.5]


async def test_a_sliding_window_caps_requests_per_period() -> None:
    times = await sends(Pacer(Pace(interval=1.0, window_limit=5, window=20.0)), 12)
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(times))
    assert max(sum(1 for t in times if start <= t < start + 20.0) for start in times) == 5
    assert times[5] == 20.0  # the sixth waits for the first to leave the window


async def test_a_bucket_lets_a_burst_through_then_refills() -> None:
    times = await sends(Pacer(Pace(burst=3, refill_every=5.0)), 6)
    assert times == [0.0, 0.0, 0.0, 5.0, 10.0, 15.0]


@pytest.mark.parametrize("wait", [30, "30", "http-date"])
async def test_hold_off_takes_seconds_or_a_retry_after_header(wait: float | str) -> None:
    pacer = Pacer(Pace(interval=1.0))
    if wait == "http-date":
        wait = format_datetime(datetime.now(UTC) + timedelta(seconds=31), usegmt=True)  # whole seconds
    held = pacer.hold_off(wait)
    assert held is not None and 29.0 <= held <= 31.0
    [sent] = await sends(pacer, 1)
    assert sent == pytest.approx(held)


async def test_hold_off_is_capped_and_falls_back_to_a_default() -> None:
    pacer = Pacer(Pace(max_hold_off=60.0))
    assert pacer.hold_off(7200.0) == 7200.0  # what the server asked, for DeliveryError(retry_after=...)
    assert await sends(pacer, 1) == [60.0]  # but the target is held 60 s at most
    assert pacer.hold_off(None) is None and pacer.hold_off("soon") is None
    assert pacer.hold_off(None, default=5.0) == 5.0
    assert await sends(pacer, 1) == [65.0]


async def test_a_hold_empties_the_bucket() -> None:
    pacer = Pacer(Pace(burst=5, refill_every=5.0))
    pacer.hold_off(10.0)
    times = await sends(pacer, 2)
    assert times[0] >= 10.0 and times[1] - times[0] >= 5.0  # no burst right after the server refused


async def test_shared_pacer_is_one_per_target_and_pace() -> None:
    pace = Pace(interval=1.0)
    same = shared_pacer(f"api|{fingerprint('xoxb-secret')}|#hn", pace)
    assert shared_pacer(f"api|{fingerprint('xoxb-secret')}|#hn", Pace(interval=1.0)) is same
    assert shared_pacer(f"api|{fingerprint('xoxb-other')}|#hn", pace) is not same
    assert shared_pacer(f"api|{fingerprint('xoxb-secret')}|#hn", Pace(interval=2.0)) is not same
    assert "xoxb" not in fingerprint("xoxb-secret") and len(fingerprint("xoxb-secret")) == 16


async def test_a_pace_that_makes_no_sense_is_refused() -> None:
    with pytest.raises(ValueError, match="window_limit and burst must be at least 1"):
        Pace(burst=0)
    with pytest.raises(ValueError, match="refill_every > 0"):
        Pace(refill_every=0)
