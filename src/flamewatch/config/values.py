"""The one engine that turns TOML values into typed settings, driven by type hints.

Core sections, ``[[notifiers]]`` options and ``[rules]`` options are all dataclasses; :func:`read_dataclass`
reads a table into one by looking at each field's type hint. Plain hints (``str``, ``int``, ``float``,
``bool``, ``list[...]``, ``tuple[..., ...]``, ``dict[str, ...]``, ``Literal[...]``, ``X | None``, a nested
dataclass, a list of dataclasses, :class:`~flamewatch.Secret`) need nothing more. Units and ranges are
``typing.Annotated`` markers, so type checkers still see ``float`` or ``int``::

    @dataclass(frozen=True)
    class Options:
        request_timeout: Duration = 10.0      # 10, "10s", "1.5m", "250ms"
        retries: NonNegativeInt = 3

Every problem is one :class:`ConfigError` line naming the file and the key path, list elements included
(``fw.toml: rules.comment_levels[1]: expected a positive whole number, got 'x'``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import time as dtime
from typing import Annotated, Any, TypeVar

from ..errors import ConfigError
from ..notifier import Secret
# Re-exported: the engine's callers (the CLI, load.py) read durations, times of day and secrets from here.
from .scalars import parse_duration as parse_duration
from .scalars import parse_time_of_day as parse_time_of_day
from .scalars import read_secret as read_secret
from .where import Where as Where, show as show  # re-exported: callers of the engine name places with it

T = TypeVar("T")


# --- markers ---------------------------------------------------------------------------------------


class Check:
    """An ``Annotated`` marker that reads or checks a value beyond what its base type says.

    The first marker of a hint reads the raw value (by default: read it as the base type, then
    :meth:`check` it); any further markers only :meth:`check` the result.
    """

    def read(self, value: Any, base: Any, where: Where) -> Any:
        """The setting from the raw TOML ``value`` (ConfigError at ``where`` when it is wrong)."""
        return self.check(read_value(value, base, where), where)

    def check(self, value: Any, where: Where) -> Any:
        """``value`` (already of the base type) if acceptable; raise ``where.error(...)`` if not."""
        return value


class _Duration(Check):
    def read(self, value: Any, base: Any, where: Where) -> float:
        return parse_duration(value, where)


@dataclass(frozen=True)
class AtLeast(Check):
    """A whole number no smaller than ``minimum``."""

    minimum: int

    def check(self, value: Any, where: Where) -> Any:
        if value < self.minimum:
            if self.minimum == 0:
                raise where.error(f"must not be negative, got {value}")
            raise where.error(f"must be at least {self.minimum}, got {value}")
        return value


class _MoreThanZero(Check):
    def check(self, value: Any, where: Where) -> Any:
        if value <= 0:
            raise where.error(f"must be more than zero, got {value:g}")
        return value


class _TimeOfDay(Check):
    def read(self, value: Any, base: Any, where: Where) -> dtime:
        return parse_time_of_day(value, where)


class _Levels(Check):
    def read(self, value: Any, base: Any, where: Where) -> tuple[int, ...]:
        if not isinstance(value, list):
            raise where.error(f"expected a list of positive whole numbers, got {show(value)}")
        for i, item in enumerate(value):
            if not isinstance(item, int) or isinstance(item, bool) or item < 1:
                raise where.index(i).error(f"expected a positive whole number, got {show(item)}")
        return tuple(sorted(set(value)))


class _HttpUrl(Check):
    def check(self, value: Any, where: Where) -> Any:
        if not re.match(r"^https?://[^\s/]+", value):
            raise where.error(f"expected an http:// or https:// URL, got {value!r}")
        return value


@dataclass(frozen=True)
class OneOf(Check):
    """A string that must be one of ``choices`` (listed in the error)."""

    choices: tuple[str, ...]

    def check(self, value: Any, where: Where) -> Any:
        if value not in self.choices:
            raise where.error(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return value


#: Seconds, written as a number or a string with a unit: ``90``, ``"90s"``, ``"5m"``, ``"1.5h"``, ``"1d"``, ``"250ms"``.
Duration = Annotated[float, _Duration()]
#: A whole number of at least 1.
PositiveInt = Annotated[int, AtLeast(1)]
#: A whole number of at least 0.
NonNegativeInt = Annotated[int, AtLeast(0)]
#: A local time of day written ``"HH:MM"``.
TimeOfDay = Annotated[dtime, _TimeOfDay()]
#: Thresholds: a list of positive whole numbers, kept sorted and without repeats.
Levels = Annotated[tuple[int, ...], _Levels()]
#: A number more than zero (not a duration: no units).
PositiveFloat = Annotated[float, _MoreThanZero()]
#: An ``http://`` or ``https://`` URL.
HttpUrl = Annotated[str, _HttpUrl()]


# --- the engine ------------------------------------------------------------------------------------


def read_value(value: Any, hint: Any, where: Where) -> Any:
    """``value`` from TOML checked and converted to what ``hint`` describes."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is Annotated:
        return _read_annotated(value, args, where)
    if origin in (typing.Union, types.UnionType):
        return _read_union(value, [a for a in args if a is not type(None)], where)
    if hint is Any:
        return value
    if hint in _SCALARS:
        return _SCALARS[hint](value, where)
    if hint is Secret:
        return read_secret(value, where)
    if hint is dtime:
        return parse_time_of_day(value, where)
    if origin is typing.Literal:
        if value not in args:
            raise where.error(f"expected one of {', '.join(map(repr, args))}, got {show(value)}")
        return value
    return _read_container(value, hint, origin, args, where)


def _read_annotated(value: Any, args: tuple[Any, ...], where: Where) -> Any:
    """An ``Annotated[base, Check...]`` value: the first check reads it, the others check the result."""
    base, *markers = args
    checks = [m for m in markers if isinstance(m, Check)]
    if not checks:
        return read_value(value, base, where)
    result = checks[0].read(value, base, where)
    for extra in checks[1:]:
        result = extra.check(result, where)
    return result


def _read_container(value: Any, hint: Any, origin: Any, args: tuple[Any, ...], where: Where) -> Any:
    """A dataclass (a table), a list or tuple, or a dict."""
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return read_dataclass(hint, value, where)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return _read_list(value, origin or hint, args, where)
    if origin in (dict, Mapping) or hint is dict:
        if not isinstance(value, dict):
            raise where.error(f"expected a table, got {show(value)}")
        key_hint, value_hint = args if args else (str, Any)
        return {read_value(k, key_hint, where): read_value(v, value_hint, where.key(str(k))) for k, v in value.items()}
    raise where.error(f"option type {hint!r} is not supported by the config reader")


def _read_union(value: Any, options: list[Any], where: Where) -> Any:
    if len(options) == 1:
        return read_value(value, options[0], where)
    # When the value's shape fits one option only (a table for ``str | Secret``), that option's own
    # reason is the one to give: "environment variable X is not set", not "expected one of str, Secret".
    fitting = [option for option in options if _may_fit(value, option)]
    if len(fitting) == 1:
        return read_value(value, fitting[0], where)
    for option in options:
        try:
            return read_value(value, option, where)
        except ConfigError:
            continue
    names = ", ".join(getattr(o, "__name__", str(o)) for o in options)
    raise where.error(f"expected one of {names}, got {show(value)}")


def _may_fit(value: Any, hint: Any) -> bool:
    """Whether ``value``'s TOML type is one ``hint`` reads (True when not known: then it may)."""
    origin = typing.get_origin(hint)
    if origin is Annotated:  # a check may read other TOML types ("5m" for a float): it may fit
        base, *markers = typing.get_args(hint)
        return any(isinstance(m, Check) for m in markers) or _may_fit(value, base)
    if hint is Secret or (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
        return isinstance(value, dict)
    if hint is str:
        return isinstance(value, str)
    if hint is bool:
        return isinstance(value, bool)
    if hint in (int, float):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if origin in (list, tuple, Sequence) or hint in (list, tuple):
        return isinstance(value, list)
    if origin in (dict, Mapping) or hint is dict:
        return isinstance(value, dict)
    return True


def _read_list(value: Any, container: Any, args: tuple[Any, ...], where: Where) -> Any:
    item = args[0] if args else Any
    if not isinstance(value, list):
        if item is str:
            raise where.error(f"expected a list of strings, got {show(value)}")
        if isinstance(item, type) and dataclasses.is_dataclass(item):
            raise where.error(f"expected an array of tables ([[{where.path}]])")
        raise where.error(f"expected a list, got {show(value)}")
    items = []
    problems: list[str] = []
    for i, v in enumerate(value):  # every element's mistakes, not only the first's
        try:
            items.append(read_value(v, item, where.index(i)))
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError.of(problems)
    return tuple(items) if container is tuple else items


def _read_str(value: Any, where: Where) -> str:
    if not isinstance(value, str):
        raise where.error(f"expected a string, got {show(value)}")
    return value


def _read_bool(value: Any, where: Where) -> bool:
    if not isinstance(value, bool):
        raise where.error(f"expected true or false, got {show(value)}")
    return value


def _read_int(value: Any, where: Where) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise where.error(f"expected a whole number, got {show(value)}")
    return value


def _read_float(value: Any, where: Where) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise where.error(f"expected a number, got {show(value)}")
    if not math.isfinite(value):  # TOML has nan and inf; no setting means either
        raise where.error(f"expected a finite number, got {show(value)}")
    return float(value)


_SCALARS: dict[Any, Callable[[Any, Where], Any]] = {
    str: _read_str, bool: _read_bool, int: _read_int, float: _read_float,
}


def field_hints(cls: type[Any]) -> dict[str, Any]:
    """The type hints of dataclass ``cls``'s init fields, ``Annotated`` markers kept.

    Raises whatever ``typing.get_type_hints`` raises for an unresolvable annotation (a plugin bug).
    """
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _required(f: dataclasses.Field[Any]) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def read_fields(
    cls: type[Any],
    table: Any,
    where: Where,
    *,
    skip: Sequence[str] = (),
    keep_unknown: bool = False,
    unknown_message: Callable[[Sequence[str]], str] | None = None,
    missing_note: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read the keys of ``table`` that are fields of dataclass ``cls``: ``(values, unknown keys)``.

    Fields named in ``skip`` are left to the caller (keys for them count as unknown). An unknown key is
    an error, unless ``keep_unknown`` (then it is returned, unread). A required field that is absent is
    reported as ``missing``, with the field's ``metadata["missing"]`` or else ``missing_note`` in
    brackets. Fields left out of ``values`` take their dataclass default when the caller builds ``cls``:
    defaults are written only there. Every mistake in the table is reported (one :class:`ConfigError`
    carrying them all), not only the first.
    """
    if not isinstance(table, dict):
        raise where.error(f"expected a table, got {show(table)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in skip}
    hints = field_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in fields:
        if name in table:
            try:
                values[name] = read_value(table[name], hints[name], where.key(name))
            except ConfigError as exc:
                problems += exc.problems
    unknown = {k: v for k, v in table.items() if k not in fields}
    if unknown and not keep_unknown:
        for key in sorted(unknown):
            message = unknown_message(list(fields)) if unknown_message is not None else (
                f"unknown key (known keys here: {', '.join(sorted(fields)) or 'none'})")
            problems.append(str(where.key(key).error(message)))
    for name, f in fields.items():
        if name not in table and _required(f):
            note = f.metadata.get("missing", missing_note)
            problems.append(str(where.key(name).error(f"missing ({note})" if note else "missing")))
    if problems:
        raise ConfigError.of(problems)
    return values, unknown


def build(cls: type[T], values: dict[str, Any], where: Where) -> T:
    """``cls(**values)``, with a ``ValueError("key: problem")`` from ``__post_init__`` put at that key."""
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        key, sep, rest = message.partition(": ")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        # from None: the message is already shown, and a plugin's exception may carry option values.
        if sep and key in names:
            raise where.key(key).error(rest) from None
        raise where.error(message) from None


def read_dataclass(cls: type[T], table: Any, where: Where, **options: Any) -> T:
    """Dataclass ``cls`` from TOML ``table`` (see :func:`read_fields` for ``options``)."""
    values, _ = read_fields(cls, table, where, **options)
    return build(cls, values, where)
