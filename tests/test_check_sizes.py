"""scripts/check_sizes.py, the size gate .ci/run runs: it names what is too big, and the tree passes it."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CHECKER: dict[str, Any] = runpy.run_path(str(ROOT / "scripts" / "check_sizes.py"))


def test_names_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    (tmp_path / "long_function.py").write_text(f"def too_long() -> None:\n{body}\n\n\ndef short() -> None:\n    pass\n")
    (tmp_path / "long_module.py").write_text("\n".join(f"x{i} = {i}" for i in range(401)) + "\n")
    (tmp_path / "fine.py").write_text("def f() -> int:\n    return 1\n")
    found = CHECKER["offenders"](tmp_path)
    assert found == [
        f"{tmp_path / 'long_function.py'}:1: function too_long (62 lines > 60)",
        f"{tmp_path / 'long_module.py'}:1: module (401 lines > 400)",
    ]
    assert CHECKER["main"](["check_sizes.py", str(tmp_path)]) == 1


def test_the_package_is_within_the_limits() -> None:
    assert CHECKER["offenders"](ROOT / "src" / "flamewatch") == []
