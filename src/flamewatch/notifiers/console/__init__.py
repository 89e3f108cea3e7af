"""The console notifier: prints one line per event (and a block per digest) to stdout or stderr."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from flamewatch import Event, Notifier, hookimpl
from flamewatch.text import PLAIN_MARKS, inline, printable, render_marked


def _piece(text: str) -> str:
    # A piece of a snippet next to a mark keeps its spaces; nothing that could rewrite the terminal.
    return "".join(ch if ch.isprintable() else " " for ch in inline(text))


class ConsoleNotifier(Notifier):
    """Print events to the terminal."""

    type_name = "console"
    description = "prints one line per event to stderr (or stdout)"
    template_format = "text"

    @dataclass(frozen=True)
    class Options:
        """Options of a ``type = "console"`` notifier."""

        # stderr by default, so stdout stays clean for `once --json` and pipes.
        stream: str = "stderr"  # "stdout" or "stderr"

        def __post_init__(self) -> None:
            if self.stream not in ("stdout", "stderr"):
                raise ValueError(f'stream: expected "stdout" or "stderr", got {self.stream!r}')

    def _write(self, text: str) -> None:
        stream = sys.stderr if self.options.stream == "stderr" else sys.stdout
        print(text, file=stream, flush=True)

    @staticmethod
    def format(event: Event) -> str:
        """The line printed for ``event``."""
        line = f"ALERT {printable(event.describe())} {event.story.hn_url}"
        wording = event.wording
        if wording.snippet:  # a mention: the matched words between »…«
            line += f" “{render_marked(wording.snippet, wording.marks, _piece, *PLAIN_MARKS)}”"
        elif event.subject is not None:  # a reply: quote it (one line, shortened)
            text = " ".join(printable(event.subject.excerpt).split())
            text = text if len(text) <= 200 else text[:199] + "…"
            line += f"\n      > {text} ({event.subject.hn_url})"
        return line

    async def send(self, event: Event) -> None:
        """Print the line for ``event`` (the instance's ``template``, when it has one)."""
        rendered = self.ctx.template.render(event) if self.ctx.template is not None else None
        self._write(f"ALERT {printable(rendered)}" if rendered else self.format(event))

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Print a ``DIGEST`` header line and one indented line per event."""
        lines = [f"DIGEST {len(events)} events"] + [f"  - {self.format(e)}" for e in events]
        self._write("\n".join(lines))


@hookimpl
def flamewatch_notifier_types() -> list[type[Notifier]]:
    """Register the ``console`` notifier type."""
    return [ConsoleNotifier]
