"""The JSON bodies the webhook notifier sends: flamewatch's own schema and an Alertmanager-style one.

flamewatch schema (``format = "standard"``, versioned by ``version``)::

    {"type": "flamewatch.event", "timestamp": "<ISO-8601>", "version": 1, "data": <Event.to_dict()>}
    {"type": "flamewatch.digest", "timestamp": "<ISO-8601>", "version": 1, "data": {"events": [...]}}

Bodies are compact, ASCII-only JSON (non-ASCII is ``\\u`` escaped), so the bytes are the same on every
retry and never fail to encode, whatever odd characters a Hacker News title holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flamewatch import Event
from flamewatch.text import PLAIN_MARKS, render_marked

#: Version of the envelope below; bump it on an incompatible change (``data`` has its own schema_version).
BODY_VERSION = 1

EVENT_TYPE = "flamewatch.event"
DIGEST_TYPE = "flamewatch.digest"

FORMATS = ("standard", "alertmanager")

# Alertmanager's "not resolved yet" end time.
_ZERO_TIME = "0001-01-01T00:00:00Z"


def _finite(value: Any) -> Any:
    """``value`` with NaN/infinite floats replaced by None: JSON has no such numbers."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _iso(moment: datetime) -> str:
    # Naive datetimes are taken as UTC (events are created in UTC).
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat()


def encode(document: dict[str, Any]) -> bytes:
    """Compact, ASCII-only JSON bytes (exactly what is signed and sent)."""
    return json.dumps(_finite(document), separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def event_document(event: Event) -> dict[str, Any]:
    """The flamewatch-schema document for one event; ``timestamp`` is when the event fired."""
    return {"type": EVENT_TYPE, "timestamp": _iso(event.at), "version": BODY_VERSION, "data": event.to_dict()}


def digest_document(events: Sequence[Event]) -> dict[str, Any]:
    """The flamewatch-schema document for a digest; ``timestamp`` is when its newest event fired.

    Using the newest event's time (not "now") keeps the body identical on every retry.
    """
    return {
        "type": DIGEST_TYPE,
        "timestamp": _iso(max(e.at for e in events)),
        "version": BODY_VERSION,
        "data": {"events": [e.to_dict() for e in events]},
    }


def _alert(event: Event) -> dict[str, Any]:
    story = event.story
    alert: dict[str, Any] = {
        "status": "firing",
        # Alertmanager label and annotation values are strings.
        "labels": {
            "alertname": f"flamewatch_{event.rule}",
            "rule": event.rule,
            "level": str(event.level),
            "story_id": str(story.id) if event.about_story else "",  # about HN itself: no story
            "source_list": event.source_list,
        },
        "annotations": {
            "summary": event.describe(),
            "title": story.title,
            "value": f"{event.value:g}",
            "comments": str(story.comments),
            "score": str(story.score),
            "hn_url": story.hn_url,
            "link": story.link,
            "key": event.key,
        },
        "startsAt": _iso(event.at),
        "endsAt": _ZERO_TIME,
        "generatorURL": story.hn_url,
        "fingerprint": event.key,
    }
    if event.wording.snippet:  # a mention: the quote, its matched words between »…« (annotations are text)
        wording = event.wording
        alert["annotations"]["snippet"] = render_marked(wording.snippet, wording.marks, str, *PLAIN_MARKS)
    return alert


def alertmanager_document(events: Sequence[Event], receiver: str, group_key: str) -> dict[str, Any]:
    """An Alertmanager webhook (``version: "4"``) body with one firing alert per event."""
    alerts = [_alert(e) for e in events]
    names = {a["labels"]["alertname"] for a in alerts}
    common = {"alertname": names.pop()} if len(names) == 1 else {}
    return {
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": receiver,
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": alerts,
    }
