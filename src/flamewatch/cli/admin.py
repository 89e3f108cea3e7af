"""Commands that inspect and test a setup: plugins, notify-test, outbox (``check`` is in :mod:`.checking`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import time
from datetime import datetime
from urllib.parse import urlsplit

from ..config import Config
from ..app import load_plugins, resolve_notifiers
from ..assembly import template_of
from ..dispatch import NotifierInstance
from ..eventkeys import sample_key
from ..events import Event, StorySnapshot
from ..rules import RuleContext
from ..rules.comments import CommentsRule
from ..errors import DeliveryError
from ..notifier import NotifierContext, Secret
from ..plugins import Plugins
from ..store import Delivery, DeliveryStatus
from ..hn import make_session
from .common import EXIT_CONFIG, CliError, config_from_args, first_line, log, outbox_words
from ..text import printable

#: What stands for an unprintable character of an error body: it shows that something was there.
SHOWN_UNPRINTABLE = "\ufffd"

# --- plugins / notify-test / outbox ---------------------------------------------------------


async def _check_server_store(config: Config) -> None:
    """With ``[store] url``, connect and check the schema now: a wrong URL or password is one line here
    (a StoreError, exit 1), never the password. The embedded file store is left alone (not created)."""
    from ..store import open_store
    from ..store.factory import configured_location, describe_location

    if not config.store.url:
        return
    location = configured_location(config.store)
    async with await open_store(location) as store:
        lock = store.instance_lock("flamewatch check")
        try:
            holder = await lock.holder()
        finally:
            await lock.release()  # closes the connection holder() opened
    print(f"store: {describe_location(location)}: OK ({'led by ' + holder if holder else 'no leader running'})")


# Option names that may hold a credential. Such a value is shown only as a Secret reference, a URL's
# origin, or not at all. Options classes belong to plugins, so ``check`` does not rely on their reprs
# or on every author having typed secrets as Secret: a webhook URL or header often embeds a token.
_SENSITIVE_NAME = re.compile(
    r"secret|token|passw|pwd|auth|credential|cookie|webhook|header|(?:^|_)(?:keys?|urls?|uris?|dsn)(?:$|_)",
    re.IGNORECASE,
)

_URL_IN_TEXT = re.compile(r"https?://[^\s,<>]+", re.IGNORECASE)


def option_lines(options: object) -> list[tuple[str, str]]:
    """``(name, shown value)`` for each field of a notifier's options, with anything secret-looking hidden."""
    if not dataclasses.is_dataclass(options) or isinstance(options, type):
        return [("(options)", "not shown: not a dataclass")]
    lines = []
    for f in dataclasses.fields(options):
        value = getattr(options, f.name, None)
        lines.append((f.name, _shown_option(f.name, value)))
    return lines


def _shown_option(name: str, value: object) -> str:
    if isinstance(value, Secret) or value is None or isinstance(value, bool):
        return repr(value)  # Secret's repr names the variable or file, never the value
    if not _SENSITIVE_NAME.search(name):
        if isinstance(value, str):
            return repr(_URL_IN_TEXT.sub(lambda m: _url_origin(m[0]), value))  # links may carry tokens too
        if isinstance(value, (int, float)):
            return repr(value)
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
            return repr([_URL_IN_TEXT.sub(lambda m: _url_origin(m[0]), v) if isinstance(v, str) else v
                         for v in value])
    if isinstance(value, str) and value.startswith(("http://", "https://")):
        return repr(_url_origin(value))
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: <hidden>" for k in value) + "}"
    return "<hidden>"


def _url_origin(url: str) -> str:
    """``scheme://host[:port]``, plus ``/…`` when a path or query (which may carry a token) was dropped."""
    try:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "<invalid url>"
    return origin + ("/…" if parts.path not in ("", "/") or parts.query or parts.fragment else "")


def print_plugins(plugins: Plugins) -> None:
    print("plugins:")
    for info in plugins.infos:
        print(f"  {info.name} ({info.source}): {', '.join(info.hooks) or 'no hooks'}")
    print("notifier types:")
    for name, cls in sorted(plugins.notifier_types().items()):
        digest = " [digest]" if cls.supports_digest() else ""
        about = cls.description or (cls.__doc__ or "").strip().split("\n")[0]
        print(f"  {name}{digest} (plugin {plugins.type_owner(name)}): {about}".rstrip())
    print("rule types:")
    for name, rule in plugins.rule_types().items():
        print(f"  {name} (plugin {plugins.rule_owner(name)}): {rule.description}".rstrip())


async def cmd_plugins(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    plugins = load_plugins(config)
    print_plugins(plugins)
    for error in plugins.errors:
        print(f"error: {error}")
    return 1 if plugins.errors else 0


def sample_event() -> Event:
    """The event ``notify-test`` sends."""
    story = StorySnapshot(id=8863, title="flamewatch test: My YC app: Dropbox - Throw away your USB drive",
                          comments=123, score=111, url="http://www.getdropbox.com/u/2/screencast.html", by="dhouston",
                          time=1175714200, descendants=123)
    rule = CommentsRule(CommentsRule.Options(comment_levels=(100,)))
    (event,) = rule.evaluate(story, RuleContext(now=time.time(), velocity=42.0, growth=7)).announce
    return dataclasses.replace(event, key=sample_key(time.time()))


async def cmd_notify_test(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    plugins = load_plugins(config)
    resolved = resolve_notifiers(config, plugins)
    if args.notifier:
        unknown = set(args.notifier) - {r.name for r in resolved}
        if unknown:
            raise CliError(f"--notifier {min(unknown)!r}: no such enabled notifier in {config.source}", EXIT_CONFIG)
        resolved = [r for r in resolved if r.name in args.notifier]
    if not resolved:
        raise CliError("no notifiers configured", EXIT_CONFIG)
    event = sample_event()
    failures = 0
    async with make_session() as session:
        for r in resolved:
            ok, reason = await _try_send(r, session, event, r.timeout)
            failures += not ok
            print(f"{r.name} ({r.type_name}): {'OK' if ok else 'FAILED: ' + reason}")
    return 1 if failures else 0


async def _try_send(r: NotifierInstance, session: object, event: Event, deadline: float) -> tuple[bool, str]:
    """Start one notifier, send ``event``, close it: ``(True, "")`` or ``(False, one-line reason)``."""
    import aiohttp

    assert isinstance(session, aiohttp.ClientSession)
    try:
        notifier = r.notifier_type(NotifierContext(name=r.name, session=session,
                                                   template=template_of(r.settings, r.notifier_type)), r.options)
    except Exception as exc:
        return False, f"cannot create the notifier: {type(exc).__name__}: {first_line(exc)}"
    try:
        async with asyncio.timeout(deadline):
            await notifier.start()
            await notifier.send(event)
        return True, ""
    except TimeoutError:
        return False, f"timed out after {deadline:g}s"
    except DeliveryError as exc:
        kind = "will be retried in normal operation" if exc.retryable else "permanent"
        return False, f"{first_line(exc)}{_os_reason(exc)} ({kind})"
    except Exception as exc:
        return False, f"{type(exc).__name__}: {first_line(exc)}{_os_reason(exc)}"
    finally:
        try:
            await notifier.aclose()
        except Exception as exc:
            log.warning("%s: error while closing: %s", r.name, first_line(exc))


def _os_reason(exc: BaseException) -> str:
    """`` [Connection refused]`` when an OS error with an errno caused ``exc`` and the message lacks it.

    asyncio words a refused connection as "Connect call failed ('127.0.0.1', 9)", which hides the errno;
    ``notify-test`` exists to diagnose exactly that, so name it plainly.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        errno = getattr(cause, "errno", None) if isinstance(cause, OSError) else None
        if errno is None and isinstance(getattr(cause, "os_error", None), OSError):
            errno = cause.os_error.errno  # type: ignore[attr-defined]  # aiohttp.ClientConnectorError
        if isinstance(errno, int) and errno > 0:
            reason = os.strerror(errno)
            return "" if reason.lower() in str(exc).lower() else f" [{reason}]"
        cause = cause.__cause__ or cause.__context__
    return ""


async def cmd_outbox(args: argparse.Namespace) -> int:
    from ..store import open_store
    from ..store.factory import configured_location

    config = config_from_args(args)
    path = configured_location(config.store, args.store)
    limit = args.limit
    if limit < 1:
        raise CliError("--limit must be at least 1", EXIT_CONFIG)
    if args.action == "list" and not _store_exists(path):
        # Nothing has run with this store yet; looking must not create it.
        _print_listing(args, dict.fromkeys(DeliveryStatus, 0), [], limit=limit, matching=0)
        return 0
    # Listing opens the store read-only: it works while 'flamewatch run' writes, and can never send.
    # retry/drop only change rows; the running daemon (the store's one sender) sends them.
    async with await open_store(path, read_only=args.action == "list") as store:
        if args.action in ("retry", "drop"):
            # An id that names no row is a mistake to say, not "0 queued": the others are still changed.
            found = await store.outbox(None, limit=len(args.ids) + 1, ids=args.ids) if args.ids else []
            missing = sorted(set(args.ids or ()) - {r.id for r in found})
            if args.action == "retry":
                count = await store.requeue(args.ids, time.time())
                said = f"{count} deliveries queued for retry"
            else:
                count = await store.drop(args.ids)
                said = f"{count} deliveries dropped"
            print(json.dumps({"action": args.action, "changed": count, "missing_ids": missing})
                  if args.json else said)
            if missing:
                raise CliError(f"no such outbox row: {', '.join(f'#{i}' for i in missing)} (see 'flamewatch outbox "
                               "--status all')")
            return 0
        statuses = _listed_statuses(args)
        # One row more than shown, to know whether the listing is cut.
        rows = await store.outbox(statuses, limit=limit + 1, ids=args.ids)
        counts = await store.outbox_counts()
    matching = len(rows) if len(rows) <= limit else (
        sum(counts[s] for s in statuses) if statuses is not None else sum(counts.values()))
    _print_listing(args, counts, rows[:limit], limit=limit, matching=matching)
    return 0


def _listed_statuses(args: argparse.Namespace) -> list[DeliveryStatus] | None:
    """The statuses to list: ``--status``; by default the unfinished rows (all of them, with ``--id``)."""
    if args.status == "all" or (args.status is None and args.ids):
        return None
    if args.status is None:
        return [DeliveryStatus.PENDING, DeliveryStatus.DEAD]
    return [DeliveryStatus(args.status)]


def _print_listing(
    args: argparse.Namespace, counts: dict[str, int], rows: list[Delivery], *, limit: int, matching: int
) -> None:
    """The listing on stdout, as text or (``--json``) one JSON object; says so when rows were left out."""
    missing = sorted(set(args.ids or ()) - {r.id for r in rows}) if len(rows) < limit else []
    if args.json:
        print(json.dumps({
            "counts": {str(s): n for s, n in sorted(counts.items())},
            "rows": [_row_json(r) for r in rows],
            "shown": len(rows),
            "matching": matching,
            "truncated": matching > len(rows),
            "missing_ids": missing,
        }))
        return
    if sum(counts.values()) == 0:
        print("outbox: empty")
    else:
        print("outbox: " + outbox_words(counts))
    for row in rows:
        when = datetime.fromtimestamp(row.next_at).astimezone().strftime("%Y-%m-%d %H:%M:%S")
        error = f"  last error: {printable(row.last_error, replacement=SHOWN_UNPRINTABLE)}" if row.last_error else ""
        why = f"  ({printable(row.describe_state())})" if row.ref else ""
        print(f"  #{row.id} {row.status:10} {printable(row.instance):16} {printable(row.event.key):28} "
              f"attempts {row.attempts} next {when}{why}{error}")
    for row_id in missing:
        print(f"  #{row_id}: no such outbox row")
    if matching > len(rows):
        print(f"  ... and {matching - len(rows)} more not shown (listing cut at {limit} rows; use --limit, "
              "--status or --id)")


def _row_json(row: Delivery) -> dict[str, object]:
    return {
        "id": row.id, "status": str(row.status), "ref": row.ref, "instance": row.instance, "key": row.event.key,
        "rule": row.event.rule, "story_id": row.event.story.id, "attempts": row.attempts,
        "created_at": row.created_at, "next_at": row.next_at, "last_error": row.last_error,
        "claimed_by": row.claimed_by, "claimed_until": row.claimed_until,
    }


def _store_exists(path: str) -> bool:
    """Whether there is a store file to look at (an in-memory store never holds anything to list)."""
    if "://" in path:
        return True  # a database server: the server says whether there is anything (one line if not)
    return path != ":memory:" and os.path.lexists(os.path.expanduser(path))
