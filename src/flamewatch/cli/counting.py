"""``flamewatch count ID...``: count stories' comments by walking their trees, with progress on a terminal."""

from __future__ import annotations

import argparse
import json
import time
from urllib.parse import parse_qs, urlparse

from ..crawl import CrawlResult, StoryCrawl
from ..hn import FetchError, HNClient, make_session
from .common import EXIT_CONFIG, CliError, config_from_args, log, plural, print_error
from .progress import Progress

DEFAULT_STORY = 8863  # "My YC app: Dropbox - Throw away your USB drive"

#: Item types whose replies make a thread worth counting.
THREAD_TYPES = ("story", "poll")


async def cmd_count(args: argparse.Namespace) -> int:
    ids = list(args.ids)
    if args.url:
        if ids:
            raise CliError("give story ids or --url, not both", EXIT_CONFIG)
        ids = [_id_from_url(args.url)]
    ids = ids or [DEFAULT_STORY]
    for story_id in ids:
        if story_id < 1:
            raise CliError(f"story id must be a positive number, got {story_id}", EXIT_CONFIG)
    config = config_from_args(args)
    api_url = args.api_url or config.hn.api_url
    if not api_url.startswith(("http://", "https://")):
        raise CliError(f"--api-url: expected an http:// or https:// URL, got {api_url!r}", EXIT_CONFIG)
    failed = 0
    async with make_session() as session:
        client = HNClient(session, api_url, timeout=config.hn.timeout, retries=config.hn.retries,
                          max_inflight=config.hn.max_inflight)
        for story_id in ids:
            try:
                result = await _count_one(client, story_id, config.crawl.max_depth, config.crawl.max_items)
            except CliError as exc:
                if len(ids) == 1:
                    raise
                print_error(str(exc))
                failed += 1
                continue
            print(json.dumps(result.to_json()) if args.json else result_line(result), flush=True)
    return 1 if failed else 0


async def _count_one(client: HNClient, story_id: int, max_depth: int, max_items: int) -> CrawlResult:
    """Fetch the story, check it is one, walk its tree (CliError for a missing item or a non-story)."""
    try:
        story = await client.item(story_id)
    except FetchError as exc:
        raise CliError(f"item {story_id}: {exc}") from None
    if story is None:
        raise CliError(f"item {story_id} does not exist (HN answered null)")
    if story.type not in THREAD_TYPES:
        kind = story.type or "an item of unknown type"
        parent = f" (it replies to item {story.parent})" if story.parent else ""
        raise CliError(f"item {story_id} is a {kind}, not a story{parent}; give the id of a story")
    before = client.stats.requests
    started = time.perf_counter()
    label = f"counting {story_id}"
    async with Progress(label, done=lambda: client.stats.requests - before, total=story.descendants):
        result = await StoryCrawl(client, story_id, max_depth=max_depth, max_items=max_items).run(story)
    result.fetches += 1  # the story item itself, fetched above
    log.info("item %d: took %.2f seconds and %s", story_id, time.perf_counter() - started,
             plural(result.fetches, "fetch", "fetches"))
    return result


def result_line(result: CrawlResult) -> str:
    """``Post 8863 has 71 comments, 2 deleted, ...`` for one counted story."""
    extra = f", {result.deleted} deleted, {result.dead} dead, {result.unreachable} unreachable"
    partial = " (partial: some items could not be fetched)" if result.partial else ""
    return f"Post {result.story_id} has {plural(result.comments, 'comment')}{extra}{partial}"


def _id_from_url(url: str) -> int:
    values = parse_qs(urlparse(url).query).get("id")
    if not values or not values[0].isdigit():
        raise CliError(f"--url {url!r}: no numeric id= argument (expected e.g. https://news.ycombinator.com/item?id=8863)",
                       EXIT_CONFIG)
    return int(values[0])
