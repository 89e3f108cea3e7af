"""A Hacker News item, parsed once from the API's JSON into a typed, validated :class:`Item`.

:meth:`Item.parse` is the one place hostile or broken fields are handled. Everything downstream (the
crawl, the incremental cache, the monitor, the notifiers through the story snapshot) reads typed
attributes and never has to re-check a field:

* a field of the wrong type is dropped (``None``, or the default) and named in :attr:`Item.dropped`;
* integers are bounded to what a 64-bit store holds; ids and parents are also non-negative;
* ``time`` outside HN's lifetime (before 2006-10-09, or more than a day ahead of our clock) is dropped,
  so no formatter can ever be handed a date it cannot represent;
* ``title`` and ``text`` are cut to their caps (see the ``*_MAX`` constants); ``by`` and ``type`` longer
  than theirs are dropped, and so is a URL that is not a short http(s) URL (a cut URL points elsewhere);
* ``kids`` keeps only valid ids, and :attr:`Item.bad_kids` counts the rest (a non-list counts as one);
* ``deleted`` and ``dead`` are true only for JSON ``true``.

Parsing runs once per fetched item on the crawl's hot path, so it is written for speed: the usual,
well-formed field costs one dict lookup and one inline type test, and nothing is allocated for the
diagnostics unless something is wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, make_dataclass
from time import time as wall_clock
from typing import Any, TypeGuard
from urllib.parse import urlsplit

#: SQLite (and PostgreSQL's BIGINT) store signed 64-bit integers: a bigger number must not crash a write.
INT_LIMIT = 2**63
#: Item ids are ``0 <= id < ID_LIMIT``.
ID_LIMIT = INT_LIMIT

#: 2006-10-09T00:00:00Z, the day HN's first item was posted: no real item is older.
HN_EPOCH = 1_160_352_000
#: How far ahead of our clock an item's ``time`` may be (clock skew between us and HN), in seconds.
FUTURE_SLACK = 86_400

#: Caps on strings, in characters. Titles are at most 80 on HN; 2000 is what events have always allowed.
TITLE_MAX = 2000
#: Comment and story bodies are HTML and can be long; HN refuses far less than this.
TEXT_MAX = 100_000
#: ``by`` (HN usernames are at most 15 characters) and ``type`` (``story``, ``comment``, ``job``...).
NAME_MAX = 100
#: Longer URLs are dropped, not cut: a truncated URL points somewhere else. 2000 is the classic safe limit.
URL_MAX = 2000


@dataclass(frozen=True, slots=True)
class Item:
    """One HN item, every field already checked (see the module docstring for the rules).

    ``dropped`` names, with the reason, each field that was present but unusable (for example
    ``"score (str)"`` or ``"time (out of range)"``), and ``bad_kids`` counts kid ids that were not valid
    ids; both are empty/zero for a well-formed item. Build one from JSON with :meth:`parse`.
    """

    id: int
    type: str | None = None
    by: str | None = None
    time: int | None = None
    title: str | None = None
    url: str | None = None
    text: str | None = None
    score: int | None = None
    descendants: int | None = None
    kids: tuple[int, ...] = ()
    parent: int | None = None
    deleted: bool = False
    dead: bool = False
    bad_kids: int = 0
    dropped: tuple[str, ...] = ()

    @staticmethod
    def parse(data: dict[str, Any], item_id: int | None = None, *, now: float | None = None) -> Item:
        """The :class:`Item` for a decoded JSON object; never raises, whatever ``data`` holds.

        ``item_id`` is the id the item was fetched by: it becomes :attr:`id`, and a JSON ``id`` that
        disagrees is dropped. Without it the JSON ``id`` is used (0 when missing or invalid). ``now``
        (unix seconds, default: the wall clock) sets the upper bound on ``time``.
        """
        get = data.get
        # Allocated only on the slow path: a well-formed item creates no diagnostics at all. Each test below
        # is one type test (and a bound) on the usual path; what to record for a bad field is out of line.
        dropped: list[str] | None = None

        value = get("id")
        if item_id is None:
            item_id, dropped = _own_id(value)
        elif type(value) is not int or value != item_id:
            dropped = _drop_present(dropped, "id", value, int, "not the id fetched")

        kind = get("type")
        if type(kind) is not str or len(kind) > NAME_MAX:
            dropped = _drop_present(dropped, "type", kind, str, "too long")
            kind = None

        by = get("by")
        if type(by) is not str or len(by) > NAME_MAX:  # absent on a deleted comment
            dropped = _drop_present(dropped, "by", by, str, "too long")
            by = None

        posted = get("time")
        if type(posted) is not int or not HN_EPOCH <= posted <= (wall_clock() if now is None else now) + FUTURE_SLACK:
            dropped = _drop_present(dropped, "time", posted, int, "out of range")
            posted = None

        title = get("title")
        if title is not None and (type(title) is not str or len(title) > TITLE_MAX):
            title, dropped = _cut(dropped, "title", title, TITLE_MAX)

        url = get("url")
        if url is not None and not _is_web_url(url):
            dropped = _drop(dropped, "url", url, str, "not a short http(s) URL")
            url = None

        text = get("text")
        if text is not None and (type(text) is not str or len(text) > TEXT_MAX):
            text, dropped = _cut(dropped, "text", text, TEXT_MAX)

        # The rest in a second function: one call an item, the price of two blocks of moderate complexity.
        return _with_numbers(get, item_id, kind, by, posted, title, url, text, dropped)


def _with_numbers(
    get: Callable[[str], Any], item_id: int, kind: str | None, by: str | None, posted: int | None,
    title: str | None, url: str | None, text: str | None, dropped: list[str] | None,
) -> Item:
    """:meth:`Item.parse`'s second half: the counts, the parent, the kids and the flags; then the item."""
    score = get("score")
    if score is not None and not (type(score) is int and -INT_LIMIT < score < INT_LIMIT):
        dropped = _drop(dropped, "score", score, int, "out of range")
        score = None

    descendants = get("descendants")
    if descendants is not None and not (type(descendants) is int and -INT_LIMIT < descendants < INT_LIMIT):
        dropped = _drop(dropped, "descendants", descendants, int, "out of range")
        descendants = None

    parent = get("parent")
    if parent is not None and not (type(parent) is int and 0 <= parent < ID_LIMIT):
        dropped = _drop(dropped, "parent", parent, int, "not an item id")
        parent = None

    raw_kids = get("kids")
    bad_kids = 0
    kids: tuple[int, ...] = ()
    if raw_kids is not None:
        if type(raw_kids) is list:
            # Runs once per kid of every item fetched: the id test inline (type() is int rules out bools).
            kids = tuple([k for k in raw_kids if type(k) is int and 0 <= k < ID_LIMIT])
            bad_kids = len(raw_kids) - len(kids)
        else:
            bad_kids = 1

    deleted = get("deleted")
    if deleted is not None and type(deleted) is not bool:
        dropped = _drop(dropped, "deleted", deleted, bool)
    dead = get("dead")
    if dead is not None and type(dead) is not bool:
        dropped = _drop(dropped, "dead", dead, bool)

    # Each slot set here, in this frame: a 15-argument __init__ called from C (type.__call__) costs more.
    item: Any = _new(_Unfrozen)
    item.id = item_id
    item.type = kind
    item.by = by
    item.time = posted
    item.title = title
    item.url = url
    item.text = text
    item.score = score
    item.descendants = descendants
    item.kids = kids
    item.parent = parent
    item.deleted = deleted is True
    item.dead = dead is True
    item.bad_kids = bad_kids
    item.dropped = () if dropped is None else tuple(dropped)
    item.__class__ = Item
    return item  # type: ignore[no-any-return]


# Item is frozen, and a frozen dataclass's __init__ sets every field through object.__setattr__: with
# 15 fields that is over half the cost of parsing an item, on the crawl's hottest path. So parse fills
# this unfrozen twin instead (generated from Item's fields: the same slots in the same order, which is
# what lets CPython switch an instance's class) and then turns it into the Item it describes.
_Unfrozen = make_dataclass("_Unfrozen", [(f.name, f.type) for f in fields(Item)], slots=True)
_new = object.__new__  # _with_numbers sets every field of Item: a field added to Item must be set there too


#: What :func:`parse_walked` gives for a well-formed comment: ``(deleted, dead, kids)``.
Walked = tuple[bool, bool, tuple[int, ...]]


def parse_walked(data: dict[str, Any], item_id: int, *, now: float | None = None) -> Walked | Item:
    """For a tree walk, which reads only a comment's status and kids: ``(deleted, dead, kids)`` when
    :meth:`Item.parse` would drop nothing and find no bad kid, else the :class:`Item` it gives.

    A walk fetches a tree's comments once each and keeps none of them, so building a 15-field
    :class:`Item` per comment was the largest cost above the fetch. Every field is tested as
    :meth:`Item.parse` tests it; anything it would drop or cut (and any story field) takes the full
    parse, so what is counted and dropped does not depend on which of the two read an item.
    """
    get = data.get
    raw_kids = get("kids")
    if raw_kids is None:
        kids: tuple[int, ...] = ()
    elif type(raw_kids) is list:
        kids = tuple([k for k in raw_kids if type(k) is int and 0 <= k < ID_LIMIT])
        if len(kids) != len(raw_kids):
            return Item.parse(data, item_id, now=now)
    else:
        return Item.parse(data, item_id, now=now)
    deleted, dead = get("deleted"), get("dead")
    if ((deleted is None or type(deleted) is bool) and (dead is None or type(dead) is bool)
            # a story's fields: a story met as a comment takes the full parse
            and get("title") is None and get("url") is None and get("score") is None and get("descendants") is None
            and _clean_comment(get, item_id, now)):
        return deleted is True, dead is True, kids
    return Item.parse(data, item_id, now=now)


def _clean_comment(get: Callable[[str], Any], item_id: int, now: float | None) -> bool:
    """Whether :meth:`Item.parse` would keep, uncut, every field but the kids and flags of a comment."""
    value, kind, by, posted, text, parent = get("id"), get("type"), get("by"), get("time"), get("text"), get("parent")
    return (type(value) is int and value == item_id
            and (kind is None or (type(kind) is str and len(kind) <= NAME_MAX))
            and (by is None or (type(by) is str and len(by) <= NAME_MAX))
            and (posted is None or (type(posted) is int
                                    and HN_EPOCH <= posted <= (wall_clock() if now is None else now) + FUTURE_SLACK))
            and (text is None or (type(text) is str and len(text) <= TEXT_MAX))
            and (parent is None or (type(parent) is int and 0 <= parent < ID_LIMIT)))


def is_item_id(value: object) -> TypeGuard[int]:
    """Whether ``value`` can be an HN item id: an int (not a bool) with ``0 <= value < ID_LIMIT``."""
    return type(value) is int and 0 <= value < ID_LIMIT


def _drop(dropped: list[str] | None, name: str, value: object, expected: type, why: str = "") -> list[str]:
    """Record that field ``name`` was unusable: the JSON type found, or ``why`` when the type was right."""
    reason = why if type(value) is expected else type(value).__name__
    if expected is int and type(value) is float and value.is_integer() and abs(value) >= INT_LIMIT:
        reason = why  # a JSON integer too big for 64 bits, which the decoder (orjson) gives as a float
    if dropped is None:
        dropped = []
    dropped.append(f"{name} ({reason})")
    return dropped


def _own_id(value: object) -> tuple[int, list[str] | None]:
    """The id of an item parsed without the id it was fetched by: its JSON ``id`` if valid, else 0."""
    if type(value) is int and 0 <= value < ID_LIMIT:
        return value, None
    return 0, None if value is None else _drop(None, "id", value, int, "not an item id")


def _drop_present(dropped: list[str] | None, name: str, value: object, expected: type, why: str) -> list[str] | None:
    """:func:`_drop`, for a field that may be absent (None): an absent field is not a dropped one."""
    return dropped if value is None else _drop(dropped, name, value, expected, why)


def _cut(dropped: list[str] | None, name: str, value: object, cap: int) -> tuple[str | None, list[str] | None]:
    """A string field over ``cap`` cut to it; a field of another type dropped (and recorded)."""
    if type(value) is str:
        return value[:cap], dropped
    return None, _drop(dropped, name, value, str)


def _is_web_url(url: object) -> bool:
    """A URL worth passing on: http(s), not absurdly long, no whitespace or control characters."""
    return (
        type(url) is str
        and len(url) <= URL_MAX
        and url[:8].lower().startswith(("http://", "https://"))
        and url.isprintable()
        and " " not in url
    )


def domain_of(url: str | None) -> str | None:
    """The lower-case host ``url`` points at, without ``www.``; None for no URL or an odd one."""
    if not url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.removeprefix("www.") if host else None


def on_domain(host: str | None, domains: Sequence[str]) -> bool:
    """Whether ``host`` is one of ``domains`` or a subdomain of one (``domains`` in lower case)."""
    return host is not None and any(host == d or host.endswith("." + d) for d in domains)
