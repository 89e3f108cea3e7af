"""The config's scalar readers: durations (``"90s"``, ``"5m"``), times of day (``"08:00"``) and secrets.

Each takes the raw TOML value and the :class:`Where` it came from, and raises a one-line
:class:`~flamewatch.errors.ConfigError` naming that place when the value is wrong. The command line
(``--period``, ``--for``) reads its durations with the same :func:`parse_duration`.
"""

from __future__ import annotations

import math
import re
from datetime import time as dtime
from typing import Any

from ..notifier import Secret
from .where import Where, show

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any, where: Where) -> float:
    """Seconds from a number or a string like ``"90s"``, ``"5m"``, ``"1.5h"``, ``"1d"``, ``"250ms"``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (m := _DURATION.match(value)):
        seconds = float(m[1]) * _UNITS[m[2]]
    else:
        raise where.error(f'expected a number of seconds or a duration like "90s", "5m", "24h", got {show(value)}')
    if not math.isfinite(seconds) or seconds <= 0:
        raise where.error(f"must be a finite number more than zero, got {show(value)}")
    if seconds < 0.001:
        raise where.error(f"must be at least a millisecond, got {show(value)}")
    return seconds


def parse_time_of_day(value: Any, where: Where) -> dtime:
    """A :class:`datetime.time` from ``"HH:MM"`` (24-hour clock)."""
    match = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", value) if isinstance(value, str) else None
    if match is None:
        raise where.error(f'expected a local time of day like "08:00", got {show(value)}')
    return dtime(int(match[1]), int(match[2]))


def read_secret(value: Any, where: Where) -> Secret:
    """A :class:`Secret` from ``{ env = "NAME" }`` or ``{ file = "/path" }``, checked to be readable now.

    Messages never include the value: a plain string here is probably the secret itself.
    """
    if isinstance(value, str):
        raise where.error('secrets are not written in the config file: use { env = "VARIABLE" } or { file = "/path" }')
    if not isinstance(value, dict):
        raise where.error(f'expected {{ env = "VARIABLE" }} or {{ file = "/path" }}, got {show(value)}')
    unknown = sorted(set(value) - {"env", "file"})
    if unknown:
        raise where.error(f'unknown key {unknown[0]!r} in a secret: use {{ env = "VARIABLE" }} or {{ file = "/path" }}')
    if len(value) != 1:
        raise where.error('a secret takes exactly one of env or file: { env = "VARIABLE" } or { file = "/path" }')
    ((kind, ref),) = value.items()
    if not isinstance(ref, str) or not ref.strip():
        raise where.error(f"{kind}: expected a non-empty string, got {show(ref)}")
    secret = Secret(env=ref) if kind == "env" else Secret(file=ref)
    try:
        revealed = secret.reveal()  # fail at start-up, not at the first alert hours later
    except LookupError as exc:
        raise where.error(str(exc)) from None  # the lookup's context may hold the secret's text
    if not revealed:
        source = f"environment variable {ref}" if kind == "env" else f"secret file {ref}"
        raise where.error(f"{source} is empty")
    return secret
