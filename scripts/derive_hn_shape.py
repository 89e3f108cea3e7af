"""Derive ``hn_shape.json`` (the simulator's calibration table) from the real HN data.

Development-time only: flamewatch never imports or runs this, and never reads the real data at run time.
Run it from the repository root when the source data or the model changes:

    .venv/bin/python scripts/derive_hn_shape.py /work/shared/data

It records the 300-story front page (type, comment count, points, age), the real thread's facts (size,
deleted/dead counts, depth profile, reply-count histograms) and fits the tree model's few parameters
(`flamewatch.simulator.model.ThreadModel`) so generated 2,170-comment threads match the real depth profile and
share of comments with replies.
"""

from __future__ import annotations

import json
import math
import random
import sys
from collections import Counter
from pathlib import Path

from flamewatch.simulator.model import ThreadModel, grow_tree

OUT = Path(__file__).resolve().parent.parent / "src" / "flamewatch" / "data" / "hn_shape.json"


def front_page(data: Path) -> dict:
    rows = json.loads((data / "hn-news-2017-07-24.json").read_text())
    newest = max(r["time"] for r in rows)
    # Age relative to the newest front-page story, plus ten minutes: the snapshot was taken a bit later.
    table = [[r["type"], r["comments"], r["points"], newest - r["time"] + 600] for r in rows]
    return {"source": "hn-news-2017-07-24.json", "columns": ["type", "comments", "points", "age"], "rows": table}


def thread(data: Path) -> dict:
    items = [json.loads(line) for line in (data / "hn-thread-25015967.jsonl").read_text().splitlines()]
    by_id = {i["id"]: i for i in items}
    root = items[0]
    depth = {root["id"]: 0}
    order = [root["id"]]
    for iid in order:  # breadth-first: the list grows while we walk it
        for kid in by_id[iid].get("kids", []):
            depth[kid] = depth[iid] + 1
            order.append(kid)
    levels = max(depth.values())
    comments = [i for i in items if i["type"] == "comment"]
    kids_hist = {
        str(d): sorted(Counter(len(by_id[i].get("kids", [])) for i in order if depth[i] == d).items())
        for d in range(1, levels)
    }
    return {
        "source": "hn-thread-25015967.jsonl",
        "comments": len(comments),
        "visible": root["descendants"],
        "top_level": len(root["kids"]),
        "deleted": sum(1 for i in comments if i.get("deleted")),
        "dead": sum(1 for i in comments if i.get("dead")),
        "deleted_and_dead": sum(1 for i in comments if i.get("dead") and i.get("deleted")),
        "dead_with_kids": sum(1 for i in comments if i.get("dead") and i.get("kids")),
        "depth_counts": [sum(1 for i in order if depth[i] == d) for d in range(1, levels + 1)],
        "depth_note": "the source keeps only four reply levels: the last count includes deeper replies",
        "kids_histogram_by_depth": kids_hist,
        "growth_visible_by_hours": [[4, 855], [8, 1454], [24, 2088]],
    }


def fit(t: dict) -> dict:
    """Grid-fit the attachment model to the thread's depth profile and share of comments with replies."""
    n = t["comments"]
    levels = len(t["depth_counts"])
    real = [c / n for c in t["depth_counts"]]
    with_kids = [
        sum(c for k, c in hist if k) / max(1, sum(c for _k, c in hist))
        for hist in t["kids_histogram_by_depth"].values()
    ]
    base = {
        "top_exponent": round(math.log(t["top_level"]) / math.log(n), 3),
        "deleted_fraction": round(t["deleted"] / n, 4),
        "dead_fraction": round(t["dead"] / n, 4),
        "deleted_and_dead_fraction": round(t["deleted_and_dead"] / n, 4),
        # Dead comments draw replies about half as often as others; deleted ones (none here) rarely do.
        "dead_reply_factor": round((t["dead_with_kids"] / t["dead"]) / (sum(with_kids) / len(with_kids)), 2),
        "deleted_reply_factor": 0.15,
    }
    best: tuple[float, dict] | None = None
    for pref in (0.3, 0.5, 0.7):
        for w2 in (0.6, 0.8, 1.0):
            for w3 in (0.4, 0.6):
                for w4 in (0.15, 0.25, 0.35):
                    accept = (1.0, w2, w3, w4, round(w4 * 0.9, 3), round(w4 * 0.8, 3))
                    model = ThreadModel(preferential=pref, accept_by_depth=accept, **base)
                    loss = 0.0
                    for seed in range(3):
                        parent, depth, _status = grow_tree(n, random.Random(seed), model)
                        counts = Counter(min(d, levels) for d in depth)
                        has_kids = Counter(depth[p] for p in set(parent) if p >= 0)
                        loss += sum((counts[d] / n - real[d - 1]) ** 2 for d in range(1, levels + 1))
                        loss += 0.5 * sum(
                            (has_kids[d] / max(1, counts[d]) - with_kids[d - 1]) ** 2 for d in range(1, levels)
                        )
                    if best is None or loss < best[0]:
                        best = (loss, {"preferential": pref, "accept_by_depth": list(accept)})
    assert best is not None
    return {**base, **best[1], "fit_loss": round(best[0], 5)}


def main(argv: list[str]) -> int:
    data = Path(argv[1] if len(argv) > 1 else "/work/shared/data")
    t = thread(data)
    shape = {
        "about": "Calibration table for flamewatch's HN simulator, derived by derive_hn_shape.py from real "
        "HN data (titles, text and users were never part of it).",
        "front_page": front_page(data),
        "thread": t,
        "model": fit(t),
    }
    OUT.write_text(json.dumps(shape, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes): model {shape['model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
