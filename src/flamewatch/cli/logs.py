"""Logging for the command line: readable text on a terminal, or one JSON object per line for machines."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``.

    journald, Docker and Kubernetes collectors keep each line as one entry; a traceback, when there is
    one, goes into the ``exc`` field instead of spilling over several lines.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(verbose: int, quiet: bool, log_format: str = "text", *, replace: bool = True) -> None:
    """Configure the root logger on stderr: WARNING with -q, DEBUG with -vv, else INFO.

    ``replace=False`` (flamewatch called in-process) leaves handlers already installed in place.
    """
    level = logging.WARNING if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, datefmt="%H:%M:%S"))
    logging.basicConfig(level=level, handlers=[handler], force=replace)
    # aiosqlite logs every statement at DEBUG: that is noise even when debugging flamewatch itself.
    logging.getLogger("aiosqlite").setLevel(logging.INFO if verbose >= 2 else logging.WARNING)
