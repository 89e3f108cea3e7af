"""The dispatcher's pure policies, each on its own: routes, digest schedules, retry backoff."""

from __future__ import annotations

import time

import pytest

from flamewatch.dispatch import DigestSchedule, RetryPolicy, Route
from flamewatch.testing import make_event, make_story


def test_min_level_route_takes_only_high_levels_and_keywords() -> None:
    route = Route(min_level=500)
    story = make_story(comments=700)
    assert route.accepts(make_event(story, level=500))
    assert route.accepts(make_event(story, level=1000))
    assert not route.accepts(make_event(story, level=250))
    assert route.accepts(make_event(story, rule="keyword", level="python"))  # not a numeric level


def test_retry_policy_backs_off_exponentially_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(base=5.0, cap=3600.0, max_age=86400.0)
    for attempts, ceiling in [(0, 5.0), (1, 10.0), (3, 40.0), (20, 3600.0), (10**6, 3600.0)]:
        for _ in range(50):
            assert ceiling / 2 <= policy.delay(attempts) <= ceiling  # never at once, never past the cap
    assert policy.delay(0, retry_after=120.0) >= 120.0  # never sooner than the server asked
    assert not policy.gives_up(first_due=0.0, next_at=86400.0)
    assert policy.gives_up(first_due=0.0, next_at=86400.5)


def test_interval_digests_are_aligned_to_the_clock() -> None:
    schedule = DigestSchedule(every=3600.0)
    assert schedule.next_after(7200.0) == 10800.0  # strictly after: a send time is never "now"
    assert schedule.next_after(7200.5) == 10800.0
    assert schedule.describe() == "digest every 3600s"


def test_daily_digest_time_follows_dst(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import datetime
    from datetime import time as dtime

    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    try:
        schedule = DigestSchedule(at=dtime(9, 0))
        for evening in ("2026-03-28 20:00", "2026-10-24 20:00"):  # the evenings before the changes
            now = datetime.strptime(evening, "%Y-%m-%d %H:%M").timestamp()
            assert datetime.fromtimestamp(schedule.next_after(now)).strftime("%H:%M") == "09:00"
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
