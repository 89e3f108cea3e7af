"""Rows of figures, the printed table, and the machine they were measured on."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class Row:
    """One printed figure. ``ok`` is None for figures without a target (context, not a verdict)."""

    section: str
    name: str
    value: float
    unit: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""

    def shown_value(self) -> str:
        if self.unit == "x":
            return f"{self.value:.2f}x"
        if self.unit == "%":
            return f"{self.value:.2f}%"
        text = f"{self.value:,.0f}" if abs(self.value) >= 100 or float(self.value).is_integer() else f"{self.value:.2f}"
        return f"{text} {self.unit}".rstrip()


def check(section: str, name: str, value: float, unit: str, *, at_most: float | None = None,
          at_least: float | None = None, note: str = "") -> Row:
    """A row with a target: ``at_most`` or ``at_least`` (in the row's own unit)."""
    if at_most is not None:
        return Row(section, name, value, unit, f"<= {_bound(at_most, unit)}", value <= at_most, note)
    assert at_least is not None
    return Row(section, name, value, unit, f">= {_bound(at_least, unit)}", value >= at_least, note)


def _bound(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:g}x"
    if unit == "%":
        return f"{value:g}%"
    return f"{value:g} {unit}".rstrip()


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
    }


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    if len(values) == 1:
        return float(values[0])
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(q) - 1))]


def render(rows: Sequence[Row], info: dict[str, Any], mode: str, elapsed: float) -> str:
    """The table as printed: one line per row, a verdict column, and a summary line."""
    head = (f"flamewatch benchmarks ({mode}) on {info['cpus']} CPU(s), {info['implementation']} {info['python']}, "
            f"{info['platform']}")
    widths = [max(len(r.section) for r in rows), max(len(r.name) for r in rows),
              max(len(r.shown_value()) for r in rows), max(len(r.target) for r in rows)]
    widths = [max(w, len(h)) for w, h in zip(widths, ("section", "figure", "value", "target"), strict=True)]

    def line(cells: Sequence[str], verdict: str, note: str) -> str:
        s, n, v, t = cells
        text = f"{s:<{widths[0]}}  {n:<{widths[1]}}  {v:>{widths[2]}}  {t:<{widths[3]}}  {verdict:<4}"
        return f"{text}  {note}".rstrip()

    out = [head, "", line(("section", "figure", "value", "target"), "ok", "notes"),
           "-" * (sum(widths) + 16)]
    for r in rows:
        verdict = "" if r.ok is None else ("yes" if r.ok else "NO")
        out.append(line((r.section, r.name, r.shown_value(), r.target), verdict, r.note))
    judged = [r for r in rows if r.ok is not None]
    missed = [f"{r.section}: {r.name}" for r in judged if not r.ok]
    out.append("")
    out.append(f"{len(judged) - len(missed)}/{len(judged)} targets met in {elapsed:.1f}s"
               + (f"; missed: {'; '.join(missed)}" if missed else ""))
    return "\n".join(out)


def to_json(rows: Sequence[Row], info: dict[str, Any], mode: str, elapsed: float) -> dict[str, Any]:
    """The same figures for machines (``--json``)."""
    return {"mode": mode, "machine": info, "elapsed": elapsed, "rows": [asdict(r) for r in rows]}


def spread(values: Sequence[float]) -> str:
    """``median (min-max)`` of ``values``, for a note: a figure with its spread."""
    if not values:
        return "n/a"
    return f"median {statistics.median(values):.3g} ({min(values):.3g}-{max(values):.3g})"
