"""What every command shares: the one-line error type, exit statuses, config loading."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import Any

from ..config import Config, find_config_file, load_config
from ..errors import FlamewatchError

log = logging.getLogger("flamewatch")

EXIT_CONFIG = 2


class CliError(FlamewatchError):
    """An expected failure, reported as one line."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


#: Set by ``--log-format json``: error lines are then JSON objects too, like every other stderr line.
ERRORS_AS_JSON = False


def print_error(message: str) -> None:
    """One error line on stderr (``flamewatch: error: ...``, or a JSON object with ``--log-format json``)."""
    if ERRORS_AS_JSON:
        logging.getLogger("flamewatch").error("%s", first_line(message))
        return
    print(f"flamewatch: error: {first_line(message)}", file=sys.stderr)


def first_line(value: object) -> str:
    text = str(value).strip()
    return text.splitlines()[0] if text else type(value).__name__


def config_from_args(args: argparse.Namespace) -> Config:
    return load_config(find_config_file(args.config))




def plural(count: int, word: str, many: str | None = None) -> str:
    """``"1 comment"``, ``"2 comments"`` (``many`` for irregular plurals: ``plural(n, "fetch", "fetches")``)."""
    return f"{count} {word if count == 1 else (many or word + 's')}"


def outbox_words(counts: Mapping[str, Any]) -> str:
    """Outbox counts in words, in the order a row goes through its states: ``"3 pending, 1500 sent,
    1 superseded, 2 dead"``; pending and dead always, the other states only when there are any."""
    from ..store import DeliveryStatus

    always = (DeliveryStatus.PENDING, DeliveryStatus.DEAD)
    return ", ".join(f"{counts.get(s, 0)} {s}" for s in DeliveryStatus if s in always or counts.get(s, 0))
