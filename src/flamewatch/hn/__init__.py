"""Talking to the Hacker News API: the client (:mod:`.client`), the typed, checked item (:mod:`.item`), and the
event stream (:mod:`.sse` parses it, :mod:`.live` follows one path, :mod:`.livesource` the live source)."""

from ..errors import FetchError
from .client import DEFAULT_API_URL, MAX_BODY_BYTES, STORY_LISTS, ClientStats, HNClient, make_session
from .item import ID_LIMIT, Item, is_item_id

__all__ = [
    "DEFAULT_API_URL",
    "ID_LIMIT",
    "MAX_BODY_BYTES",
    "STORY_LISTS",
    "ClientStats",
    "FetchError",
    "HNClient",
    "Item",
    "is_item_id",
    "make_session",
]
