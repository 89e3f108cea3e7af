"""``flamewatch outbox``: filters in SQL, says when a listing is cut, honours ``--id``, speaks JSON.

Run as a user runs it (a subprocess) against a real store file holding many finished rows.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest
from conftest import FLAMEWATCH

from flamewatch.store import open_store
from flamewatch.testing import outbox_states, make_event, make_story

DONE_ROWS = 1500


@pytest.fixture
async def busy_store(tmp_path: Path) -> tuple[Path, dict[str, list[int]]]:
    """A store with 1,500 sent rows, then 2 dead letters and 3 pending rows (ids by status)."""
    path = tmp_path / "fw.db"
    events = [make_event(make_story(i)) for i in range(1, DONE_ROWS + 6)]
    async with await open_store(path) as store:
        await store.record_events(events, {e.key: ["hook"] for e in events}, 1000.0)
        rows = await store.pending()
        ids = [r.id for r in rows]
        await store.mark_sent(ids[:DONE_ROWS], 1001.0)
        await store.mark_dead(ids[DONE_ROWS:DONE_ROWS + 2], error="HTTP 401 from receiver \x1b[31mred\x1b[0m")
    return path, {"done": ids[:DONE_ROWS], "dead": ids[DONE_ROWS:DONE_ROWS + 2], "pending": ids[DONE_ROWS + 2:]}


async def outbox(store: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "-c", os.devnull, "outbox", "--store", str(store), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_dead_rows_are_never_hidden_behind_finished_ones(busy_store: tuple[Path, dict[str, list[int]]]) -> None:
    path, ids = busy_store
    out = await outbox(path)
    lines = out.splitlines()
    assert lines[0] == f"outbox: 3 pending, {DONE_ROWS} sent, 2 dead"
    listed = [int(line.split()[0][1:]) for line in lines[1:]]
    assert listed == ids["dead"] + ids["pending"]
    assert "more not shown" not in out
    assert "\x1b" not in out and "HTTP 401 from receiver \ufffd[31mred" in out  # no escape sequences reach the terminal


async def test_a_cut_listing_says_so(busy_store: tuple[Path, dict[str, list[int]]]) -> None:
    path, _ = busy_store
    out = await outbox(path, "--status", "done")
    assert len([line for line in out.splitlines() if line.startswith("  #")]) == 1000
    cut = "  ... and 500 more not shown (listing cut at 1000 rows; use --limit, --status or --id)"
    assert out.splitlines()[-1] == cut
    out = await outbox(path, "--status", "all", "--limit", "10")
    assert out.splitlines()[-1].startswith(f"  ... and {DONE_ROWS + 5 - 10} more not shown (listing cut at 10 rows")


async def test_id_picks_rows_whatever_their_status(busy_store: tuple[Path, dict[str, list[int]]]) -> None:
    path, ids = busy_store
    done, dead = ids["done"][7], ids["dead"][0]
    out = await outbox(path, "--id", str(done), "--id", str(dead), "--id", "999999")
    rows = [line for line in out.splitlines() if line.startswith("  #")]
    assert [row.split()[0] for row in rows] == [f"#{done}", f"#{dead}", "#999999:"]
    assert rows[0].split()[1] == "sent" and rows[1].split()[1] == "dead"
    assert rows[2] == "  #999999: no such outbox row"


async def test_json_listing(busy_store: tuple[Path, dict[str, list[int]]]) -> None:
    path, ids = busy_store
    listing = json.loads(await outbox(path, "--json", "--status", "all", "--limit", "3"))
    assert listing["counts"] == outbox_states(pending=3, sent=DONE_ROWS, dead=2)
    assert [r["id"] for r in listing["rows"]] == ids["done"][:3]
    assert listing["truncated"] is True and listing["shown"] == 3 and listing["matching"] == DONE_ROWS + 5
    first = listing["rows"][0]
    assert first["status"] == "sent" and first["instance"] == "hook" and first["key"] == "1:comments:100"
    dead = json.loads(await outbox(path, "--json", "--status", "dead"))
    assert [r["last_error"] for r in dead["rows"]] == ["HTTP 401 from receiver \x1b[31mred\x1b[0m"] * 2
    assert dead["truncated"] is False
    changed = json.loads(await outbox(path, "retry", "--json", "--id", str(ids["dead"][0])))
    assert changed == {"action": "retry", "changed": 1, "missing_ids": []}


async def test_json_listing_of_a_store_not_created_yet(tmp_path: Path) -> None:
    listing = json.loads(await outbox(tmp_path / "none.db", "--json"))
    assert listing["rows"] == [] and listing["counts"] == outbox_states()
    assert not (tmp_path / "none.db").exists()


@pytest.mark.parametrize("action", ["retry", "drop"])
async def test_retry_or_drop_of_a_missing_row_names_it_and_fails(
    busy_store: tuple[Path, dict[str, list[int]]], action: str
) -> None:
    # Issue 22 item 8: "0 deliveries queued" and exit 0 hid a mistyped id.
    path, ids = busy_store
    proc = await asyncio.create_subprocess_exec(
        *FLAMEWATCH, "-c", os.devnull, "outbox", action, "--store", str(path), "--id", "999999", "--id",
        str(ids["dead"][1]), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 1
    assert out.decode().splitlines() == [f"1 deliveries {'queued for retry' if action == 'retry' else 'dropped'}"]
    (line,) = err.decode().splitlines()
    assert line.startswith("flamewatch: error: no such outbox row: #999999")
