#!/usr/bin/env python3
"""Size gate for issue 18: no module over 400 lines, no function over 60 lines under src/flamewatch.

Run from the repository root (``python scripts/check_sizes.py [root]``). Prints each offender as
``path:line: what (n lines > limit)`` and exits 1 when there is any, so a reader finds it in one step.
A function's length is counted from its ``def`` line (decorators excluded) to its last line, nested
functions included, as an editor would show it.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def offenders(root: Path) -> list[str]:
    """The modules and functions under ``root`` over the limits, one line each."""
    found: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            found.append(f"{path}:1: module ({lines} lines > {MAX_MODULE_LINES})")
        for node in ast.walk(ast.parse(text, filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path}:{node.lineno}: function {node.name} ({length} lines > {MAX_FUNCTION_LINES})")
    return found


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path("src/flamewatch")
    found = offenders(root)
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
