"""``flamewatch init [PATH]``: write a commented starter config that passes ``flamewatch check``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .common import EXIT_CONFIG, CliError

HEADER = """\
# flamewatch configuration, written by `flamewatch init`.
#
# Check it with `flamewatch check`, then start watching with `flamewatch run`. Every key is optional
# except inside [[notifiers]]; config/flamewatch.example.toml in the source lists all of them.
# Durations are seconds (90) or strings with a unit: "500ms", "90s", "5m", "24h", "1d".
# Secrets are never written here: { env = "VARIABLE" } or { file = "/path" } say where to read them.

[watch]
list = "topstories"       # topstories, newstories, beststories, askstories, showstories or jobstories
top = 30                  # how many stories of that list to watch
period = "1m"             # one cycle (count every watched story) starts this often

[rules]
comment_levels = [50, 100, 250, 500, 1000]   # alert once when a story's comments cross each level
points_levels = []                           # the same for points; [] turns the rule off
keywords = []                                # alert when a watched title contains one of these

[store]
path = ""                 # SQLite file; "" = $XDG_STATE_HOME/flamewatch/flamewatch.db

# --- notifiers: where alerts go (one [[notifiers]] table each) -------------------------------------

# Console: one line per alert on the terminal or in the service's log.
[[notifiers]]
name = "console"
type = "console"
"""

#: Each optional notifier: its table, and the environment variables it reads secrets from.
NOTIFIERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "slack": ("""
# Slack through an incoming webhook (https://api.slack.com/messaging/webhooks). The URL is the
# credential, so it is read from the environment.
[[notifiers]]
name = "slack"
type = "slack"
min_comments = 100        # only stories with at least this many comments
webhook_url = { env = "SLACK_WEBHOOK_URL" }
""", ("SLACK_WEBHOOK_URL",)),
    "email": ("""
# Email, one mail per alert. Change the host and the addresses to yours.
[[notifiers]]
name = "email"
type = "email"
min_comments = 250
host = "smtp.example.com"
security = "starttls"     # "starttls" (port 587), "tls" (465) or "none" (25)
sender = "flamewatch <alerts@example.com>"
to = ["you@example.com"]
username = "alerts@example.com"
password = { env = "SMTP_PASSWORD" }
""", ("SMTP_PASSWORD",)),
    "webhook": ("""
# Webhook: signed JSON POSTs (Standard Webhooks). Change the URL to your receiver's.
[[notifiers]]
name = "webhook"
type = "webhook"
url = "https://alerts.example.com/hooks/flamewatch"
secret = { env = "FLAMEWATCH_WEBHOOK_SECRET" }   # whsec_<base64>, shared with the receiver
""", ("FLAMEWATCH_WEBHOOK_SECRET",)),
}


def starter_config(kinds: list[str]) -> str:
    """The starter config text with the console notifier and the chosen ones."""
    return HEADER + "".join(NOTIFIERS[kind][0] for kind in kinds)


def _ask(kinds: list[str]) -> list[str]:
    """Ask on the terminal which notifiers to add (Enter means no)."""
    chosen = []
    for kind in kinds:
        try:
            answer = input(f"Send alerts to {kind}? [y/N] ").strip().lower()
        except EOFError:
            break
        if answer in ("y", "yes"):
            chosen.append(kind)
    return chosen


async def cmd_init(args: argparse.Namespace) -> int:
    return write_starter(args)  # nothing else runs on the loop: blocking file calls and input() are fine


def write_starter(args: argparse.Namespace) -> int:
    """Write the starter config to ``args.path`` and print the next steps."""
    path = Path(args.path).expanduser()
    if path.is_dir():
        raise CliError(f"{path}: is a directory; give a file name, e.g. {path / 'flamewatch.toml'}", EXIT_CONFIG)
    if path.exists() and not args.force:
        raise CliError(f"{path}: already exists; use --force to overwrite it", EXIT_CONFIG)
    kinds = [kind for kind in NOTIFIERS if getattr(args, kind)]
    if not kinds and sys.stdin.isatty() and sys.stdout.isatty():
        kinds = _ask(list(NOTIFIERS))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_config(kinds))
    except OSError as exc:
        raise CliError(f"{path}: cannot write: {exc.strerror}") from None
    print(f"wrote {path} (notifiers: {', '.join(['console', *kinds])})")
    missing = [var for kind in kinds for var in NOTIFIERS[kind][1] if not os.environ.get(var)]
    step = 1
    print("next steps:")
    if kinds:
        print(f"  {step}. edit {path}: the addresses and URLs in it are examples")
        step += 1
    if missing:
        print(f"  {step}. set the secrets it reads: {', '.join(f'export {var}=...' for var in missing)}")
        step += 1
    config = "" if path == Path("flamewatch.toml") else f"-c {path} "
    print(f"  {step}. flamewatch {config}check")
    print(f"  {step + 1}. flamewatch {config}notify-test   (sends a sample alert)")
    print(f"  {step + 2}. flamewatch {config}run")
    return 0
