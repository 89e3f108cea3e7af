"""Parsing HN items: every hostile field is dropped and named in one place, and nothing out of range gets through."""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flamewatch.crawl import CrawlResult
from flamewatch.hn import ID_LIMIT, Item
from flamewatch.hn.item import (
    FUTURE_SLACK, HN_EPOCH, INT_LIMIT, NAME_MAX, TEXT_MAX, TITLE_MAX, URL_MAX, parse_walked,
)
from flamewatch.monitor import story_snapshot
from flamewatch.notifiers.slack.format import event_message
from flamewatch.testing import make_event

NOW = 1_700_000_000  # a fixed clock for the time bound

FIELDS = ("id", "type", "by", "time", "title", "url", "text", "score", "descendants", "kids", "parent", "deleted",
          "dead")

# The numbers that sit on the edges of what an item may hold, and a few far outside.
EDGE_INTS = [0, -1, 1, INT_LIMIT - 1, INT_LIMIT, -INT_LIMIT, -INT_LIMIT + 1, 2**64, -(2**70), 10**14,
             HN_EPOCH - 1, HN_EPOCH, NOW + FUTURE_SLACK, NOW + FUTURE_SLACK + 1]

json_scalars = (
    st.none() | st.booleans() | st.integers() | st.sampled_from(EDGE_INTS) | st.floats()
    | st.text(max_size=30) | st.sampled_from(["https://example.com/a", "javascript:alert(1)", "HTTP://X.ORG", ""])
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=6,
)
json_items = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), json_values, max_size=14)


def parse(data: dict[str, Any], item_id: int | None = 8863) -> Item:
    return Item.parse(data, item_id, now=NOW)


def test_a_well_formed_comment_keeps_every_field() -> None:
    data = {"by": "norvig", "id": 2921983, "kids": [2922097, 2922429], "parent": 2921506,
            "text": "Aw shucks, guys ... you make me blush", "time": 1314211127, "type": "comment"}
    item = parse(data, 2921983)
    assert item == Item(id=2921983, type="comment", by="norvig", time=1314211127,
                        text="Aw shucks, guys ... you make me blush", kids=(2922097, 2922429), parent=2921506)
    assert item.dropped == () and item.bad_kids == 0


def test_a_well_formed_story_keeps_every_field() -> None:
    data = {"by": "dhouston", "descendants": 71, "id": 8863, "kids": [8952, 9224], "score": 111,
            "time": 1175714200, "title": "My YC app: Dropbox", "type": "story",
            "url": "http://www.getdropbox.com/u/2/screencast.html"}
    item = parse(data)
    assert (item.title, item.score, item.descendants, item.url, item.by) == (
        "My YC app: Dropbox", 111, 71, "http://www.getdropbox.com/u/2/screencast.html", "dhouston")
    assert item.dropped == ()


def test_a_parsed_item_is_a_real_frozen_item() -> None:
    item = parse({"id": 8863, "type": "story", "kids": [1, 2]})
    assert type(item) is Item and item == Item(8863, type="story", kids=(1, 2))
    assert hash(item) == hash(Item(8863, type="story", kids=(1, 2)))
    with pytest.raises(FrozenInstanceError):
        item.score = 5  # type: ignore[misc]


def test_fields_of_the_wrong_type_are_dropped_and_named() -> None:
    item = parse({"id": 8863, "title": 12345, "score": "high", "by": 7, "url": ["no"], "time": "yesterday",
                  "descendants": "many", "type": 5, "text": {}, "parent": -3, "deleted": "yes", "dead": 1})
    assert item == Item(id=8863, dropped=item.dropped)
    assert item.dropped == ("type (int)", "by (int)", "time (str)", "title (int)", "url (list)", "text (dict)",
                            "score (str)", "descendants (str)", "parent (not an item id)", "deleted (str)",
                            "dead (int)")


def test_bools_are_not_numbers_and_only_json_true_is_true() -> None:
    item = parse({"score": True, "descendants": False, "parent": True, "deleted": 1, "dead": False})
    assert (item.score, item.descendants, item.parent, item.deleted, item.dead) == (None, None, None, False, False)
    assert parse({"deleted": True, "dead": True}).deleted is True


def test_numbers_a_64_bit_store_cannot_hold_are_dropped() -> None:
    item = parse({"score": 2**64, "descendants": -(2**70), "parent": 2**63})
    assert (item.score, item.descendants, item.parent) == (None, None, None)
    assert item.dropped == ("score (out of range)", "descendants (out of range)", "parent (not an item id)")
    edge = parse({"score": INT_LIMIT - 1, "descendants": -INT_LIMIT + 1, "parent": ID_LIMIT - 1})
    assert (edge.score, edge.descendants, edge.parent) == (INT_LIMIT - 1, -INT_LIMIT + 1, ID_LIMIT - 1)


def test_time_is_kept_only_within_hns_lifetime() -> None:
    assert parse({"time": HN_EPOCH}).time == HN_EPOCH
    assert parse({"time": NOW + FUTURE_SLACK}).time == NOW + FUTURE_SLACK  # a little clock skew is fine
    for hostile in (10**14, HN_EPOCH - 1, NOW + FUTURE_SLACK + 1, -1, 0, 2**64):
        item = parse({"time": hostile})
        assert item.time is None and item.dropped == ("time (out of range)",), hostile
    assert parse({"time": 1175714200.5}).dropped == ("time (float)",)


def test_the_time_bound_follows_the_wall_clock_by_default() -> None:
    now = int(datetime.now(UTC).timestamp())
    assert Item.parse({"time": now}).time == now
    assert Item.parse({"time": now + 2 * FUTURE_SLACK}).time is None


def test_kid_ids_are_filtered_and_the_bad_ones_counted() -> None:
    item = parse({"kids": [1, None, "12", 1.5, True, -4, 2**63, ID_LIMIT - 1, 2]})
    assert item.kids == (1, ID_LIMIT - 1, 2) and item.bad_kids == 6
    not_a_list = parse({"kids": {"a": 1}})
    assert not_a_list.kids == () and not_a_list.bad_kids == 1
    assert parse({"kids": []}).bad_kids == 0
    assert not_a_list.dropped == ()  # bad kids are counted by the crawl, not listed as dropped fields


def test_strings_are_capped() -> None:
    item = parse({"title": "t" * 5000, "text": "x" * (TEXT_MAX + 10), "by": "b" * (NAME_MAX + 1)})
    assert item.title == "t" * TITLE_MAX and item.text == "x" * TEXT_MAX
    assert item.by is None and item.dropped == ("by (too long)",)


def test_only_short_web_urls_are_kept() -> None:
    for good in ("https://example.com/a?b=c", "http://x.org", "HTTPS://EXAMPLE.COM", "https://e.com/" + "a" * 1980):
        assert parse({"url": good}).url == good
    for bad in ("javascript:alert(1)", "ftp://x.org", "https://e.com/" + "a" * URL_MAX, "https://a b.com",
                "https://e.com/\nBcc: x", "", "example.com"):
        item = parse({"url": bad})
        assert item.url is None and item.dropped == ("url (not a short http(s) URL)",), bad


def test_the_id_is_the_one_fetched() -> None:
    assert parse({"id": 8863}, 8863).dropped == ()
    assert parse({}, 8863).id == 8863  # a missing id is not a dropped field
    liar = parse({"id": 1}, 8863)
    assert liar.id == 8863 and liar.dropped == ("id (not the id fetched)",)
    assert parse({"id": "8863"}, 8863).dropped == ("id (str)",)
    assert parse({"id": 42}, None).id == 42
    assert parse({"id": -1}, None).id == 0 and parse({"id": -1}, None).dropped == ("id (not an item id)",)


@settings(max_examples=200, deadline=None)
@given(json_items)
def test_parse_never_raises_and_everything_kept_is_in_range(data: dict[str, Any]) -> None:
    item = parse(data, None)
    assert type(item.id) is int and 0 <= item.id < ID_LIMIT
    for name, cap in (("type", NAME_MAX), ("by", NAME_MAX), ("title", TITLE_MAX), ("text", TEXT_MAX),
                      ("url", URL_MAX)):
        value = getattr(item, name)
        assert value is None or (type(value) is str and len(value) <= cap), name
    assert item.url is None or item.url.lower().startswith(("http://", "https://"))
    assert item.time is None or (type(item.time) is int and HN_EPOCH <= item.time <= NOW + FUTURE_SLACK)
    for number in (item.score, item.descendants):
        assert number is None or (type(number) is int and -INT_LIMIT < number < INT_LIMIT)
    assert item.parent is None or (type(item.parent) is int and 0 <= item.parent < ID_LIMIT)
    assert type(item.kids) is tuple and all(type(k) is int and 0 <= k < ID_LIMIT for k in item.kids)
    kids = data.get("kids")
    assert len(item.kids) + item.bad_kids == (len(kids) if type(kids) is list else int(kids is not None))
    assert item.deleted is (data.get("deleted") is True) and item.dead is (data.get("dead") is True)
    # Every dropped field was present, and each is named once.
    names = [entry.split(" ", 1)[0] for entry in item.dropped]
    assert len(names) == len(set(names)) and all(data.get(name) is not None for name in names)
    if item.time is not None:
        datetime.fromtimestamp(item.time, UTC)  # any time kept can be formatted as a date


well_formed_items = st.fixed_dictionaries(
    {"id": st.integers(0, ID_LIMIT - 1)},
    optional={
        "type": st.sampled_from(["story", "comment", "job", "poll", "pollopt"]),
        "by": st.text(max_size=NAME_MAX),
        "time": st.integers(HN_EPOCH, NOW),
        "title": st.text(max_size=200),
        "url": st.sampled_from(["https://example.com/", "http://news.ycombinator.com/item?id=1"]),
        "text": st.text(max_size=200),
        "score": st.integers(-INT_LIMIT + 1, INT_LIMIT - 1),
        "descendants": st.integers(0, 10**6),
        "kids": st.lists(st.integers(0, ID_LIMIT - 1), max_size=20),
        "parent": st.integers(0, ID_LIMIT - 1),
        "deleted": st.booleans(),
        "dead": st.booleans(),
    },
)


@settings(max_examples=200, deadline=None)
@given(well_formed_items)
def test_a_well_formed_item_survives_parsing_unchanged(data: dict[str, Any]) -> None:
    item = parse(data, data["id"])
    assert item.dropped == () and item.bad_kids == 0
    for name, value in data.items():
        assert getattr(item, name) == (tuple(value) if name == "kids" else value), name


def _agrees_with_the_full_parse(data: dict[str, Any], item_id: int) -> bool:
    """parse_walked's answer is the full parse's Item, or the (deleted, dead, kids) of one it drops nothing of."""
    full, lean = parse(data, item_id), parse_walked(data, item_id, now=NOW)
    if isinstance(lean, tuple):
        assert full.dropped == () and full.bad_kids == 0
        assert lean == (full.deleted, full.dead, full.kids)
        return True
    assert lean == full
    return False


@settings(max_examples=300, deadline=None)
@given(json_items | well_formed_items)
def test_the_walks_lean_parse_agrees_with_the_full_one(data: dict[str, Any]) -> None:
    _agrees_with_the_full_parse(data, 8863 if type(data.get("id")) is not int else data["id"])


def test_the_walks_lean_parse_takes_the_usual_comment_and_leaves_the_rest() -> None:
    comment = {"by": "norvig", "id": 8863, "kids": [8864], "parent": 8000, "text": "Yes", "time": NOW,
               "type": "comment"}
    assert _agrees_with_the_full_parse(comment, 8863)
    assert _agrees_with_the_full_parse({**comment, "dead": True, "deleted": False}, 8863)
    for odd in ({"kids": [1, "2"]}, {"kids": "x"}, {"id": 1}, {"id": True}, {"by": ["x"]}, {"time": 10**14},
                {"text": "x" * (TEXT_MAX + 1)}, {"parent": -1}, {"dead": "no"}, {"deleted": 1}, {"title": "a story"},
                {"type": "x" * (NAME_MAX + 1)}, {"score": 1}):
        assert not _agrees_with_the_full_parse({**comment, **odd}, 8863), odd


def test_a_story_from_the_future_formats_in_every_notifier_shape() -> None:
    # {"time": 10**14} once made the Slack formatter raise ValueError (year out of range).
    story = parse({"id": 8863, "type": "story", "title": "From the future", "time": 10**14, "score": 5})
    snapshot = story_snapshot(CrawlResult(8863, story=story, comments=3))
    assert snapshot.time is None and snapshot.title == "From the future" and snapshot.score == 5
    message = event_message(make_event(snapshot))
    assert "From the future" in str(message)
