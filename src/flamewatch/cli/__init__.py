"""The ``flamewatch`` command line: run · once · count · demo · simulate · check · plugins · notify-test · outbox ·
follow · unfollow.

Every expected failure (bad config, unreachable store, bad arguments) ends as one line on stderr and a
non-zero exit status (2 for configuration mistakes), never a traceback. The commands live in
:mod:`.watching` (run, once, count, demo, simulate) and :mod:`.admin` (check, plugins, notify-test, outbox).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Sequence

from ..config import ConfigError
from ..errors import PluginError, StoreLockedError, StoreSetupError
from ..gctune import tune_for_daemon
from ..store import StoreError
from .admin import cmd_notify_test, cmd_outbox, cmd_plugins
from .checking import cmd_check
from . import common
from .common import EXIT_CONFIG, CliError, first_line, log, print_error
from .init import cmd_init
from .logs import setup_logging
from .parser import build_parser, parse_args
from .counting import cmd_count
from .people import cmd_follow, cmd_unfollow
from .silence import cmd_silence
from .watching import cmd_demo, cmd_once, cmd_run, cmd_simulate
from .status import cmd_status
from .backtest import cmd_backtest


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit status (0 ok, 1 failure, 2 configuration or usage mistake)."""
    args = parse_args(list(argv) if argv is not None else None)  # one line and exit 2 on bad arguments
    # Process-wide settings only when this is the program itself (argv from the command line), not a call
    # from a test or an embedding application (which may run it in a thread and has its own logging).
    as_program = argv is None and threading.current_thread() is threading.main_thread()
    setup_logging(args.verbose, args.quiet, args.log_format, replace=as_program)
    common.ERRORS_AS_JSON = args.log_format == "json"
    handler = COMMANDS[args.command]
    if as_program:
        tune_for_daemon()  # start-up is over: keep the collector's cost flat as the watched set grows
    if as_program and args.command not in ("run", "simulate") and hasattr(signal, "SIGPIPE"):
        # `flamewatch check | head -1`: end quietly when the reader has gone, as other Unix tools do. Not
        # for the daemons: they must drain their deliveries whatever happened to stdout.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return asyncio.run(handler(args))
    except BrokenPipeError:
        # The reader of stdout went away (the daemons, or a platform without SIGPIPE): nothing more to
        # say to it. Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except ConfigError as exc:
        for problem in exc.problems:  # a file read on past its first mistake: every one, one line each
            print_error(problem)
        return EXIT_CONFIG
    except PluginError as exc:
        print_error(str(exc))
        return EXIT_CONFIG
    except (StoreLockedError, StoreSetupError) as exc:
        # Another flamewatch sends from this store, or the store cannot work as configured (a wrong
        # password, a read-only file): setup mistakes, like config ones. A server that is down is not.
        print_error(str(exc))
        return EXIT_CONFIG
    except (CliError, StoreError) as exc:
        print_error(str(exc))
        return getattr(exc, "code", 1)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # A bug, not a user mistake: still one line; the traceback is there for whoever asks with -vv.
        log.debug("unexpected error", exc_info=True)
        print_error(f"unexpected {type(exc).__name__}: {first_line(exc)} (run with -vv for the traceback)")
        return 1


__all__ = ["COMMANDS", "build_parser", "main", "setup_logging"]

COMMANDS = {
    "init": cmd_init,
    "run": cmd_run,
    "once": cmd_once,
    "count": cmd_count,
    "demo": cmd_demo,
    "simulate": cmd_simulate,
    "check": cmd_check,
    "plugins": cmd_plugins,
    "notify-test": cmd_notify_test,
    "outbox": cmd_outbox,
    "status": cmd_status,
    "backtest": cmd_backtest,
    "follow": cmd_follow,
    "unfollow": cmd_unfollow,
    "silence": cmd_silence,
}
