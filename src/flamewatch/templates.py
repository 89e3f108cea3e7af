"""Message templates: a ``template`` per notifier instance, rendered by Jinja2's sandbox.

A notifier type that can show a user's wording sets ``template_format`` (``"text"``, ``"html"``,
``"markdown"`` or ``"mrkdwn"``); an instance with ``template = "..."`` then gets a
:class:`MessageTemplate` as ``ctx.template`` and sends ``ctx.template.render(event)`` instead of its
built-in wording (without one, ``ctx.template`` is None and nothing changes).

The template is the user's and trusted as such; the values it shows are not: titles, authors and
excerpts come from Hacker News. So every ``{{ ... }}`` output is cleaned (one line, no control or bidi
characters) and escaped for the channel's format: HTML entities for ``html`` (Jinja's autoescape),
backslashes for ``markdown``, ``&amp;``/``&lt;``/``&gt;`` for Slack's ``mrkdwn``. The sandbox keeps a
template from reaching anything but the event it is given. A template that does not compile is a
config error naming the instance and the line; one that fails while rendering (an unknown variable)
falls back to the built-in wording with a warning, rather than losing the alert.

    {{ story.title }} reached {{ event.level }} comments ({{ story.comments }} now): {{ story.hn_url | url }}

Links go through the ``url`` filter (http(s) only, encoded rather than escaped, so markdown keeps them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment
from markupsafe import Markup

from .events import Event, StorySnapshot, Subject
from .text import flatten, safe_link

__all__ = ["FORMATS", "MessageTemplate", "TemplateProblem", "Url", "compile_template", "url_filter"]

log = logging.getLogger("flamewatch.templates")

_MARKDOWN = set("\\`*_{}[]()<>#+-.!|~@")
_MRKDWN = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
#: The longest rendered message (a template with a loop must not build megabytes).
MAX_RENDERED = 20_000


def _clean(value: Any) -> str:
    return flatten("" if value is None else str(value))


def _html(value: Any) -> Any:
    # Markup is ours (the template's own text, or escaped already); anything else is cleaned first and
    # then escaped by autoescape.
    return value if isinstance(value, Markup) else _clean(value)


class Url(str):
    """A link checked by the ``url`` filter: only http(s), characters that could end a link encoded."""


def url_filter(value: Any) -> Url:
    """``{{ story.url | url }}``: the value as a link target, or "" when it is not an http(s) URL.

    Markdown escaping would put backslashes into a URL and break it, so a value passed through this filter
    is not escaped again (except as HTML attribute text in ``html``, and ``&`` in ``mrkdwn``): instead,
    whatever could end or disguise a link (brackets, quotes, spaces, control characters) is percent-encoded.
    """
    link = safe_link("" if value is None else str(value))
    if link is None:
        return Url("")
    return Url("".join(f"%{ord(ch):02X}" if ch in "()[]<>\"'`|\\" else ch for ch in link))


def _markdown(value: Any) -> str:
    if isinstance(value, Url):
        return str(value)
    return "".join("\\" + ch if ch in _MARKDOWN else ch for ch in _clean(value))


#: How each format makes a value inert (applied to every ``{{ ... }}`` output).
FORMATS: dict[str, Callable[[Any], Any]] = {
    "text": _clean,
    "html": _html,
    "markdown": _markdown,
    "mrkdwn": lambda v: "".join(_MRKDWN.get(ch, ch) for ch in _clean(v)),
}


#: What a template is tried on at compile time: every field set, so only real mistakes fail.
_SAMPLE = Event(key="8863:comments:100", rule="comments", level=100, value=123.0, velocity=42.0, growth=7,
                story=StorySnapshot(id=8863, title="My YC app: Dropbox", comments=123, score=111,
                                    url="http://www.getdropbox.com/", by="dhouston", rank=1, lists={"topstories": 1}),
                subject=Subject(id=8864, by="pg", excerpt="Nice.", parent=8863))


#: What rendering a template can raise: Jinja's errors (unknown variable, sandbox refusal) and the
#: arithmetic and type errors of the expressions it runs.
_RENDER_ERRORS = (TemplateError, ArithmeticError, TypeError, ValueError, LookupError)


class TemplateProblem(ValueError):
    """A template that cannot be used: ``line`` (1-based, when known) and Jinja's own words."""

    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line


class MessageTemplate:
    """A compiled template for one channel format; :meth:`render` turns an event into the message text."""

    def __init__(self, source: str, fmt: str) -> None:
        if fmt not in FORMATS:
            raise TemplateProblem(f"unknown format {fmt!r} (one of {', '.join(FORMATS)})", None)
        self.format = fmt
        env = SandboxedEnvironment(autoescape=fmt == "html", undefined=StrictUndefined, finalize=FORMATS[fmt],
                                   keep_trailing_newline=False)
        env.filters["url"] = url_filter
        try:
            self._template = env.from_string(source)
        except TemplateSyntaxError as exc:
            raise TemplateProblem(exc.message or "syntax error", exc.lineno) from None
        # A first render on a sample event finds unknown variables and filters now, at `check`.
        try:
            self._template.render(self._variables(_SAMPLE))
        except _RENDER_ERRORS as exc:
            raise TemplateProblem(str(exc).split("\n")[0], _line_of(exc)) from None

    @staticmethod
    def _variables(event: Event) -> dict[str, Any]:
        return {"event": event, "story": event.story, "wording": event.wording, "subject": event.subject,
                "rule": event.rule, "level": event.level, "key": event.key, "headline": event.headline()}

    def render(self, event: Event) -> str | None:
        """The message for ``event``, or None when rendering failed (the caller uses its built-in wording)."""
        try:
            text = self._template.render(self._variables(event))
        except _RENDER_ERRORS as exc:
            log.warning("template failed for event %s (%s: %s); the built-in wording is used",
                        event.key, type(exc).__name__, str(exc).split("\n")[0][:200])
            return None
        return text[:MAX_RENDERED].strip() or None


def _line_of(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja names it in the traceback)."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def compile_template(source: str, fmt: str) -> MessageTemplate:
    """Compile ``source`` for channel format ``fmt``; raises :class:`TemplateProblem` (line and reason)."""
    return MessageTemplate(source, fmt)


