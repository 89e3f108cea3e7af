"""The public plugin API: what the built-in notifiers and the plugins under plugins/ may import.

``lint-imports`` holds ``flamewatch.notifiers`` to it (pyproject.toml); the plugins are not in the package
it reads, so this test reads their sources (and the built-ins', for the names): every ``flamewatch``
import is of a public module, and every name taken from one is in that module's ``__all__``.
"""

from __future__ import annotations

import ast
import importlib
import tomllib
from pathlib import Path

import pytest

import flamewatch

ROOT = Path(__file__).resolve().parent.parent

#: The public API (the README's "Write your own notifier plugin" lists it); the rest may change any release.
PUBLIC = ("flamewatch", "flamewatch.text", "flamewatch.pacing")
#: What a plugin's tests may import besides.
PUBLIC_FOR_TESTS = ("flamewatch.testing", "flamewatch.testing.fixtures")

NOTIFIERS = ROOT / "src" / "flamewatch" / "notifiers"
PLUGIN_SOURCES = sorted(ROOT.glob("plugins/*/src/**/*.py"))
PLUGIN_TESTS = sorted(ROOT.glob("plugins/*/tests/**/*.py"))


def _absolute(node: ast.ImportFrom, path: Path) -> str | None:
    """The module ``node`` imports from, relative imports resolved for a module of ``src/flamewatch``."""
    if not node.level:
        return node.module
    try:
        parts = list(path.relative_to(ROOT / "src").with_suffix("").parts)
    except ValueError:
        return None  # a plugin's own relative import: not flamewatch
    package = parts[:-1]  # of a module and of a package's __init__ alike
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def flamewatch_imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """Every import of ``flamewatch`` in ``path``: (line, module, names taken from it; [] for ``import``)."""
    found: list[tuple[int, str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names if alias.name.split(".")[0] == "flamewatch"]
        elif isinstance(node, ast.ImportFrom):
            module = _absolute(node, path)
            if module and module.split(".")[0] == "flamewatch":
                found.append((node.lineno, module, [alias.name for alias in node.names]))
    return found


def _offences(paths: list[Path], allowed: tuple[str, ...], own: str = "") -> list[str]:
    """What in ``paths`` imports flamewatch other than through ``allowed`` (``own``: the sources' package)."""
    offences: list[str] = []
    for path in paths:
        where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path.name
        for line, module, names in flamewatch_imports(path):
            if own and (module == own or module.startswith(own + ".")):
                continue
            if module not in allowed:
                offences.append(f"{where}:{line}: imports {module}, which is not public API")
                continue
            exported = set(importlib.import_module(module).__all__)
            offences += [f"{where}:{line}: {module}.{name} is not in its __all__" for name in names
                         if name not in exported and f"{module}.{name}" not in allowed]
    return offences


def test_the_public_modules_export_what_they_list() -> None:
    for module in (*PUBLIC, *PUBLIC_FOR_TESTS):
        missing = [name for name in importlib.import_module(module).__all__
                   if not hasattr(importlib.import_module(module), name)]
        assert missing == [], f"{module}.__all__ names what it lacks"
    # One version for the API: the distribution's (the plugins pin it, flamewatch>=0.2) is the facade's.
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert flamewatch.__version__ == project["version"]


def test_the_built_in_notifiers_use_only_the_public_api() -> None:
    sources = sorted(NOTIFIERS.rglob("*.py"))
    assert len(sources) > 15 and any(flamewatch_imports(path) for path in sources)
    assert _offences(sources, PUBLIC, own="flamewatch.notifiers") == []


@pytest.mark.parametrize("paths, allowed", [(PLUGIN_SOURCES, PUBLIC), (PLUGIN_TESTS, PUBLIC + PUBLIC_FOR_TESTS)],
                         ids=["sources", "tests"])
def test_the_plugins_use_only_the_public_api(paths: list[Path], allowed: tuple[str, ...]) -> None:
    assert len(paths) >= 8, "the plugins under plugins/ were not found"
    assert _offences(paths, allowed) == []


def test_an_internal_import_is_caught(tmp_path: Path) -> None:
    """The check can fail: an internal module, a name outside ``__all__``, a relative reach into the core."""
    notifier = NOTIFIERS / "webhook" / "notifier.py"
    relative = ast.parse("from ...hn.client import MAX_HEADER_LINE").body[0]
    assert isinstance(relative, ast.ImportFrom) and _absolute(relative, notifier) == "flamewatch.hn.client"
    source = tmp_path / "plugin.py"
    source.write_text("import flamewatch.store\nfrom flamewatch import Event, hookspecs\n"
                      "from flamewatch.text import flatten\nfrom flamewatch.marks import render_marked\n")
    assert [line.partition(": ")[2] for line in _offences([source], PUBLIC)] == [
        "imports flamewatch.store, which is not public API",
        "flamewatch.hookspecs is not in its __all__",
        "imports flamewatch.marks, which is not public API",
    ]
