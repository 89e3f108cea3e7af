"""``flamewatch status``: what a flamewatch daemon is doing, from its store (read-only) and its API.

The store is opened with SQLite ``mode=ro``, so this never writes and may run while the daemon does.
The daemon's ``/api/*`` adds what only it knows (titles, the last cycles, readiness) when it answers.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp

from ..config import Config
from ..config.listen import parse_listen
from ..store.factory import configured_location, describe_location
from ..store import DeliveryStatus
from ..store.filelock import lock_holder
from ..store.sqlite import SQLiteStore
from .common import EXIT_CONFIG, CliError, config_from_args, outbox_words
from ..text import printable

__all__ = ["cmd_status", "gather_status"]

#: How long the daemon's API gets to answer before status reports it as not answering.
API_TIMEOUT = 2.0


async def cmd_status(args: argparse.Namespace) -> int:
    """Print the status (``--json``: one JSON object). Exit 0 while a daemon runs; 1 when none does (no
    process holds the store and no API answers), or when the store cannot be read."""
    config = config_from_args(args)
    status = await gather_status(config, store_path=args.store, http=args.http)
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    return 0 if status["running"] else 1


async def gather_status(config: Config, *, store_path: str | None = None, http: str | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as a JSON-ready dict."""
    path = configured_location(config.store, store_path)
    if "://" in path:
        raise CliError(f"status reads the embedded store file only; {describe_location(path)} is a database server: "
                       "see the leader's status page or /api (flamewatch run serves them)", EXIT_CONFIG)
    status: dict[str, Any] = {"store": path, "held_by": lock_holder(path)}
    async with await SQLiteStore.open_readonly(path) as store:
        samples = await store.latest_cycle_samples()
        counts = await store.outbox_counts()
        per_instance = await store.outbox_counts_by_instance()
    last_at = max((s.at for s in samples), default=None)
    status["last_sample_at"] = _iso(last_at)
    status["last_sample_age"] = None if last_at is None else round(time.time() - last_at, 1)
    # Every delivery state, as the store keeps it: pending, sent, grouped, silenced, superseded, dead.
    status["outbox"] = {
        **{str(state): counts.get(state, 0) for state in DeliveryStatus},
        "by_instance": {name: {str(state): n for state, n in per_instance[name].items()}
                        for name in sorted(per_instance)},
    }
    status["stories"] = [
        {"id": s.story_id, "comments": s.comments, "points": s.score, "partial": s.partial}
        for s in sorted(samples, key=lambda s: -s.comments)
    ]
    status["daemon"] = await _ask_daemon(config, http)
    status["running"] = status["held_by"] is not None or status["daemon"]["answering"]
    daemon_stories = status["daemon"].get("stories")
    if daemon_stories:  # the daemon knows ranks and titles; the store only counts
        status["stories"] = [{"rank": s["rank"], "id": s["id"], "title": s["title"], "comments": s["comments"],
                              "points": s["points"], "partial": s["partial"], "per_hour": s["per_hour"],
                              "levels": s.get("levels", [])}
                             for s in daemon_stories]
    return status


async def _ask_daemon(config: Config, http: str | None) -> dict[str, Any]:
    listen = config.http.listen if http is None else http
    if not listen:
        return {"url": None, "answering": False, "error": "[http] listen is off"}
    host, port = parse_listen(listen)
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"  # listening everywhere includes loopback
    base = f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"
    headers = {}
    if config.http.token is not None:
        try:
            headers["Authorization"] = f"Bearer {config.http.token.reveal()}"
        except LookupError as exc:
            return {"url": base, "answering": False, "error": str(exc)}
    result: dict[str, Any] = {"url": base, "answering": False}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=API_TIMEOUT), headers=headers) as session:
            for name in ("health", "cycles", "stories"):
                async with session.get(f"{base}api/{name}") as response:
                    if response.status != 200:
                        result["error"] = f"{base}api/{name} answered HTTP {response.status}"
                        return result
                    result[name] = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return result
    result["answering"] = True
    return result


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds")


def render(status: dict[str, Any]) -> str:
    """The status as a few lines of plain text."""
    lines = [f"store: {status['store']}"]
    holder = status["held_by"]
    daemon = status["daemon"]
    if not status.get("running", holder is not None or daemon["answering"]):
        lines.append("daemon: not running (no flamewatch holds the store; its API does not answer)")
    else:
        lines.append(f"daemon: holds the store ({holder})" if holder else "daemon: none holds the store")
    if daemon["answering"]:
        health = daemon["health"]
        word = "ready" if health["ready"] else f"not ready ({health['reason']})"
        lines.append(f"api: {daemon['url']} answers: {word}")
        if daemon["cycles"]:
            c = daemon["cycles"][0]
            outcome = f"failed: {c['failed']}" if c["failed"] else (
                f"{c['stories']} stories in {c['elapsed']:.2f}s, {c['requests']} requests, {c['errors']} errors")
            lines.append(f"last cycle: #{c['cycle']} at {c['started_at']}: {outcome}")
    else:
        lines.append(f"api: not answering ({daemon.get('error', 'no answer')})")
    if status["last_sample_at"]:
        lines.append(f"last counts stored: {status['last_sample_at']} ({status['last_sample_age']:.0f}s ago)")
    else:
        lines.append("last counts stored: none yet")
    box = status["outbox"]
    per = "; ".join(f"{name}: {outbox_words(v)}" for name, v in box["by_instance"].items())
    summary = f"outbox: {outbox_words(box)}"
    lines.append(summary + (f" ({per})" if per else ""))
    if status["stories"]:
        # Titles and ranks come from the daemon's API only: said once, not on every line.
        titled = any(s.get("title") for s in status["stories"])
        note = "" if titled else "; titles and ranks only while the daemon's API answers"
        lines.append(f"watched stories as last counted ({len(status['stories'])}{note}):")
        for s in status["stories"]:
            count = f"{s['comments']}+" if s["partial"] else str(s["comments"])
            rank = f"{s['rank']:>3}." if s.get("rank") else "   -"
            title = printable(s["title"], 70) if s.get("title") else ""
            lines.append(f"{rank} {s['id']:>9} {count:>6} comments {s['points']:>5} points  {title}".rstrip())
            if s.get("levels"):  # every kind: comments, rank, replies, mentions...
                lines.append(f"{'':14}levels fired: {printable(', '.join(s['levels']), 200)}")
    return "\n".join(lines)
