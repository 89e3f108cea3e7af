"""Plugin loading: built-ins by entry point, plugin dirs, and every way a plugin can break, reported by name."""

from __future__ import annotations

import asyncio

import inspect
import logging
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flamewatch import Notifier, hookimpl, hookspecs
from flamewatch.plugins import (
    PluginError,
    Plugins,
    make_plugin_manager,
)

BUILTINS = {"console", "email", "slack", "webhook"}


def notifier_class(type_name: str) -> type[Notifier]:
    class Sample(Notifier):
        """A do-nothing notifier for these tests."""

        async def send(self, event: Any) -> None:  # pragma: no cover - never sent here
            pass

    Sample.type_name = type_name
    return Sample


def plugin(name: str, **hooks: Callable[..., Any]) -> types.ModuleType:
    """A plugin object registered under ``name``, with ``hooks`` marked as hook implementations."""
    module = types.ModuleType(name)
    for hook_name, function in hooks.items():
        function.__name__ = hook_name
        setattr(module, hook_name, hookimpl(function))
    return module


def offering(name: str, *classes: Any) -> types.ModuleType:
    return plugin(name, flamewatch_notifier_types=lambda: list(classes))


def only(*extra: object, **kwargs: Any) -> Plugins:
    return make_plugin_manager(extra=extra, defaults=False, load_entry_points=False, **kwargs)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "plugins"
    directory.mkdir()
    return directory


GOOD_FILE_PLUGIN = '''
from flamewatch import Notifier, hookimpl

class Pager(Notifier):
    type_name = "pager"
    async def send(self, event):
        pass

@hookimpl
def flamewatch_notifier_types():
    return [Pager]
'''


# --- finding plugins -------------------------------------------------------------------------------


def test_builtins_come_from_default_plugins_without_any_entry_point() -> None:
    # A checkout that is not installed has no entry points: the defaults must still be there.
    plugins = make_plugin_manager(load_entry_points=False)
    sources = {info.name: info.source for info in plugins.infos}
    for name in BUILTINS:
        assert sources[name] == f"built-in flamewatch.notifiers.{name}"
        assert plugins.type_owner(name) == name
    assert set(plugins.notifier_types()) >= BUILTINS
    assert plugins.errors == []


def test_without_defaults_nothing_is_builtin() -> None:
    assert only().notifier_types() == {}


def test_a_file_in_a_plugin_dir_is_loaded(plugin_dir: Path) -> None:
    (plugin_dir / "pager.py").write_text(GOOD_FILE_PLUGIN)
    (plugin_dir / "_helpers.py").write_text("raise RuntimeError('private modules are not plugins')\n")
    plugins = only(plugin_dirs=[plugin_dir])
    assert plugins.errors == []
    assert [(i.name, i.source, i.hooks) for i in plugins.infos] == [
        ("pager", f"file {plugin_dir / 'pager.py'}", ("flamewatch_notifier_types",))
    ]
    assert plugins.notifier_types()["pager"].type_name == "pager"


def test_a_missing_plugin_dir_is_reported(tmp_path: Path) -> None:
    plugins = only(plugin_dirs=[tmp_path / "nowhere"])
    assert plugins.errors == [f"plugins directory {tmp_path / 'nowhere'} does not exist"]


def test_a_file_that_fails_to_import_is_reported_and_the_rest_load(plugin_dir: Path) -> None:
    (plugin_dir / "aaa_broken.py").write_text("import flamewatch_no_such_module\n")
    (plugin_dir / "pager.py").write_text(GOOD_FILE_PLUGIN)
    plugins = only(plugin_dirs=[plugin_dir])
    (error,) = plugins.errors
    assert error.startswith("plugin aaa_broken: ")
    assert "ModuleNotFoundError" in error and "flamewatch_no_such_module" in error
    assert "pager" in plugins.notifier_types()


def test_an_entry_point_that_fails_to_import_is_reported_and_the_rest_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real (if tiny) installed distribution: a dist-info directory on sys.path declaring an entry point.
    dist = tmp_path / "site" / "flamewatch_broken_example-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: flamewatch-broken-example\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[flamewatch]\nbroken = flamewatch_broken_example_module\n")
    (tmp_path / "site" / "flamewatch_broken_example_module.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    plugins = make_plugin_manager()
    assert plugins.errors == [
        "plugin broken: cannot import flamewatch_broken_example_module: RuntimeError: boom at import"
    ]
    assert set(plugins.notifier_types()) >= BUILTINS


# --- broken hooks ----------------------------------------------------------------------------------


def test_a_raising_notifier_types_hook_is_reported_and_the_rest_load() -> None:
    def explode() -> list[type[Notifier]]:
        raise KeyError("missing thing")

    plugins = only(plugin("exploding", flamewatch_notifier_types=explode), offering("good", notifier_class("good")))
    assert set(plugins.notifier_types()) == {"good"}
    assert plugins.errors == ["plugin exploding: flamewatch_notifier_types raised KeyError: 'missing thing'"]


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        ("console", "returned 'console'; expected a list of Notifier subclasses"),
        (42, "returned 42; expected a list of Notifier subclasses"),
        ([int], "returned <class 'int'>, which is not a Notifier subclass"),
        (["slack"], "returned 'slack', which is not a Notifier subclass"),
        ([notifier_class("")], "returned notifier_class.<locals>.Sample, which has no type_name"),
    ],
)
def test_junk_from_notifier_types_is_reported_by_plugin(returned: Any, expected: str) -> None:
    plugins = only(plugin("junky", flamewatch_notifier_types=lambda: returned), offering("good", notifier_class("ok")))
    assert set(plugins.notifier_types()) == {"ok"}
    assert plugins.errors == [f"plugin junky: flamewatch_notifier_types {expected}"]


def test_the_hook_is_called_once_however_often_types_are_asked_for() -> None:
    calls = []

    def types_once() -> list[type[Notifier]]:
        calls.append(1)
        return [notifier_class("once")]

    plugins = only(plugin("counted", flamewatch_notifier_types=types_once))
    assert plugins.notifier_types() == plugins.notifier_types()
    assert len(calls) == 1


def test_two_plugins_offering_one_type_name_is_one_line_naming_both() -> None:
    plugins = only(offering("alpha", notifier_class("pager")), offering("beta", notifier_class("pager")))
    with pytest.raises(PluginError) as info:
        plugins.notifier_types()
    assert str(info.value) == (
        "notifier type 'pager' is offered by both plugin alpha and plugin beta; disable one in [plugins] disable"
    )


def test_one_class_offered_twice_is_not_a_conflict() -> None:
    cls = notifier_class("pager")
    plugins = only(offering("alpha", cls), offering("beta", cls))
    assert plugins.notifier_types() == {"pager": cls}


def test_a_typo_in_a_hook_name_is_reported_by_plugin() -> None:
    typo = plugin("typo", flamewatch_notifer_types=lambda: [notifier_class("never")])
    plugins = only(typo, offering("good", notifier_class("good")))
    assert plugins.errors == [
        ("plugin typo: unknown hook 'flamewatch_notifer_types', flamewatch never calls it "
        "(did you mean 'flamewatch_notifier_types'?)")
    ]
    assert set(plugins.notifier_types()) == {"good"}
    # pluggy itself agrees the hook is pending (has no spec); flamewatch just says which plugin and why.
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError):
        plugins.pm.check_pending()


def test_a_hook_function_without_hookimpl_is_reported() -> None:
    module = types.ModuleType("forgetful")
    module.flamewatch_notifier_types = lambda: [notifier_class("forgotten")]  # type: ignore[attr-defined]
    plugins = only(module)
    assert plugins.errors == [
        "plugin forgetful: flamewatch_notifier_types is not marked with @hookimpl, so flamewatch never calls it"
    ]
    assert plugins.notifier_types() == {}


def test_a_hook_with_wrong_arguments_cannot_register() -> None:
    plugins = only(plugin("badargs", flamewatch_event_fired=lambda evnt: None), offering("good", notifier_class("ok")))
    (error,) = plugins.errors
    assert error.startswith("plugin badargs: cannot register (object): ")
    assert "Argument(s) {'evnt'} are declared in the hookimpl but can not be found in the hookspec" in error
    assert [i.name for i in plugins.infos] == ["good"]


def test_a_raising_observer_is_logged_by_name_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[tuple[str, object]] = []

    def fail(event: object) -> None:
        raise RuntimeError("observer bug")

    plugins = only(
        plugin("first", flamewatch_event_fired=lambda event: seen.append(("first", event))),
        plugin("faulty", flamewatch_event_fired=fail),
        plugin("last", flamewatch_event_fired=lambda event: seen.append(("last", event))),
    )
    with caplog.at_level(logging.ERROR, logger="flamewatch.plugins"):
        plugins.notify("flamewatch_event_fired", event="E")
    assert sorted(seen) == [("first", "E"), ("last", "E")]
    assert [r.getMessage() for r in caplog.records] == [
        "plugin faulty: hook flamewatch_event_fired raised RuntimeError: observer bug"
    ]


def test_observers_get_only_the_arguments_they_ask_for() -> None:
    got: list[tuple[str, bool]] = []
    plugins = only(plugin("partial", flamewatch_delivery_done=lambda notifier, ok: got.append((notifier, ok))))
    plugins.notify("flamewatch_delivery_done", event="E", notifier="slack", ok=True, error=None)
    assert got == [("slack", True)]


# --- disabling -------------------------------------------------------------------------------------


def test_disable_skips_an_entry_point_plugin() -> None:
    plugins = make_plugin_manager(disabled=["slack"])
    assert "slack" not in {i.name for i in plugins.infos}
    types = set(plugins.notifier_types())  # plugins installed from plugins/ (CI does) may add their own
    assert "slack" not in types and types >= BUILTINS - {"slack"}
    assert plugins.errors == []


def test_disable_skips_a_plugin_dir_file(plugin_dir: Path) -> None:
    (plugin_dir / "pager.py").write_text(GOOD_FILE_PLUGIN)
    assert only(plugin_dirs=[plugin_dir], disabled=["pager"]).infos == []


def test_disabling_a_plugin_that_does_not_exist_is_reported() -> None:
    plugins = make_plugin_manager(disabled=["slak"])
    (error,) = plugins.errors
    assert error.startswith("[plugins] disable: there is no plugin named 'slak' (found: ")
    assert "slack" in error


# --- the hook specifications -----------------------------------------------------------------------


def test_every_hookspec_has_a_docstring() -> None:
    specs = [f for name, f in vars(hookspecs).items() if name.startswith("flamewatch_") and inspect.isfunction(f)]
    assert {f.__name__ for f in specs} >= {"flamewatch_notifier_types", "flamewatch_event_fired"}
    for spec in specs:
        assert (spec.__doc__ or "").strip(), f"{spec.__name__} has no docstring"
        assert hasattr(spec, "flamewatch_spec"), f"{spec.__name__} is not marked @hookspec"


def test_every_hookspec_is_documented_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    specs = [name for name, f in vars(hookspecs).items() if name.startswith("flamewatch_") and inspect.isfunction(f)]
    missing = [name for name in specs if f"`{name}" not in readme]
    assert not missing, f"hooks not described in README.md's plugin guide: {missing}"


def test_observer_hooks_go_through_pluggys_caller_so_tryfirst_and_wrappers_apply() -> None:
    from flamewatch import hookimpl

    order: list[str] = []

    class Plain:
        __name__ = "plain"

        @hookimpl
        def flamewatch_cycle_done(self, stats: object) -> None:
            order.append("plain")

    class First:
        __name__ = "first"

        @hookimpl(tryfirst=True)
        def flamewatch_cycle_done(self, stats: object) -> None:
            order.append("first")

    class Wrapping:
        __name__ = "wrapping"

        @hookimpl(wrapper=True)
        def flamewatch_cycle_done(self, stats: object) -> Any:
            order.append("wrapper before")
            result = yield
            order.append("wrapper after")
            return result

    # First registered first: without tryfirst pluggy would call it last (newest first).
    plugins = make_plugin_manager(extra=[First(), Plain(), Wrapping()], defaults=False, load_entry_points=False)
    plugins.notify("flamewatch_cycle_done", stats=None)
    assert order == ["wrapper before", "first", "plain", "wrapper after"]
    assert plugins.errors == []


async def test_an_async_observer_runs_in_its_own_task_and_its_failure_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from flamewatch import hookimpl

    got: list[object] = []
    done = asyncio.Event()

    class Async:
        __name__ = "async-ok"

        @hookimpl
        async def flamewatch_event_fired(self, event: object) -> None:
            await asyncio.sleep(0)
            got.append(event)
            done.set()

    class AsyncFaulty:
        __name__ = "async-faulty"

        @hookimpl
        async def flamewatch_event_fired(self, event: object) -> None:
            raise RuntimeError("async observer bug")

    plugins = make_plugin_manager(extra=[Async(), AsyncFaulty()], defaults=False, load_entry_points=False)
    with caplog.at_level(logging.ERROR, logger="flamewatch.plugins"):
        plugins.notify("flamewatch_event_fired", event="E")  # returns at once: the coroutines run as tasks
        assert got == []
        await done.wait()
        await plugins.runner.close(1.0)
    assert got == ["E"]
    assert [r.getMessage() for r in caplog.records] == [
        "plugin async-faulty: hook flamewatch_event_fired raised RuntimeError: async observer bug"
    ]


def test_plugin_call_tracing_names_each_hook_call_and_the_plugins_it_reached(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FLAMEWATCH_TRACE_PLUGINS", "1")
    plugins = only(plugin("watcher", flamewatch_event_fired=lambda event: None))
    with caplog.at_level(logging.INFO, logger="flamewatch.plugins.trace"):
        plugins.notify("flamewatch_event_fired", event="E")
    assert "hook flamewatch_event_fired(event='E') -> watcher" in [r.getMessage() for r in caplog.records]
