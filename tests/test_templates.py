"""Message templates: Jinja2's sandbox, escaping per channel format, and check errors naming the line."""

from __future__ import annotations

import logging
from pathlib import Path

import aiohttp
import pytest

from flamewatch.app import load_plugins, resolve_notifiers
from flamewatch.config import ConfigError, load_config
from flamewatch.notifier import NotifierContext
from flamewatch.notifiers.console import ConsoleNotifier
from flamewatch.templates import TemplateProblem, compile_template
from flamewatch.testing import make_event

HOSTILE = "<!channel> <b>x</b> *bold* [a](https://evil.example) & \u202egnp\u202c \x1b[2J\r\nBcc: y"


def check_error(tmp_path: Path, table: str) -> str:
    path = tmp_path / "fw.toml"
    path.write_text(f"[[notifiers]]\nname = \"out\"\n{table}\n")
    config = load_config(path)
    with pytest.raises(ConfigError) as info:
        resolve_notifiers(config, load_plugins(config))
    return str(info.value).removeprefix(f"{path}: ")


def test_a_syntax_error_names_the_instance_and_the_line(tmp_path: Path) -> None:
    error = check_error(tmp_path, 'type = "console"\ntemplate = """{{ story.title }}\\n{{ story.comments }\\n"""')
    assert error == "notifiers[0] (out).template: line 2: unexpected '}'"


def test_an_unknown_variable_or_a_sandbox_escape_is_a_check_error(tmp_path: Path) -> None:
    error = check_error(tmp_path, 'type = "console"\ntemplate = "ok\\n{{ storyy.title }}"')
    assert error == "notifiers[0] (out).template: line 2: 'storyy' is undefined"
    error = check_error(tmp_path, 'type = "console"\ntemplate = "{{ story.__class__.__mro__ }}"')
    assert error.startswith("notifiers[0] (out).template: line 1: ") and "__class__" in error


def test_a_type_without_templates_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FW_HOOK", "https://hooks.slack.com/services/T/B/x")
    error = check_error(tmp_path, 'type = "slack"\nwebhook_url = { env = "FW_HOOK" }\ntemplate = "{{ story.title }}"')
    assert error == "notifiers[0] (out).template: type 'slack' takes no template"


@pytest.mark.parametrize(("fmt", "expected"), [
    ("text", "<!channel> <b>x</b> *bold* [a](https://evil.example) & gnp [2J Bcc: y"),
    ("html", "&lt;!channel&gt; &lt;b&gt;x&lt;/b&gt; *bold* [a](https://evil.example) &amp; gnp [2J Bcc: y"),
    ("markdown", "\\<\\!channel\\> \\<b\\>x\\</b\\> \\*bold\\* \\[a\\]\\(https://evil\\.example\\) & gnp \\[2J Bcc: y"),
    ("mrkdwn", "&lt;!channel&gt; &lt;b&gt;x&lt;/b&gt; *bold* [a](https://evil.example) &amp; gnp [2J Bcc: y"),
])
def test_values_are_escaped_for_the_format_and_the_template_is_not(fmt: str, expected: str) -> None:
    template = compile_template("<b>{{ story.title }}</b>\n{{ story.comments }} comments", fmt)
    assert template.render(make_event(title=HOSTILE, comments=530)) == f"<b>{expected}</b>\n530 comments"


def test_a_failure_while_rendering_falls_back_to_the_built_in_wording(caplog: pytest.LogCaptureFixture) -> None:
    template = compile_template("{{ 1000 // (story.comments - 120) }} per comment", "text")
    assert template.render(make_event(comments=130)) == "100 per comment"
    with caplog.at_level(logging.WARNING, "flamewatch.templates"):
        assert template.render(make_event(comments=120)) is None
    assert "ZeroDivisionError" in caplog.text


def test_a_compile_time_problem_carries_its_line() -> None:
    with pytest.raises(TemplateProblem) as problem:
        compile_template("a\nb\n{% if %}", "text")
    assert problem.value.line == 3


async def test_the_console_prints_its_template(capsys: pytest.CaptureFixture[str]) -> None:
    async with aiohttp.ClientSession() as session:
        template = compile_template("{{ story.title }}: {{ headline }} {{ story.hn_url }}", "text")
        console = ConsoleNotifier(NotifierContext(name="c", session=session, template=template),
                                  ConsoleNotifier.Options(stream="stdout"))
        await console.send(make_event(title=HOSTILE, comments=530, level=500))
    assert capsys.readouterr().out == (
        "ALERT <!channel> <b>x</b> *bold* [a](https://evil.example) & gnp [2J Bcc: y: reached 500 comments "
        "(530 now) https://news.ycombinator.com/item?id=8863\n")


def test_the_url_filter_keeps_links_working_in_markdown() -> None:
    template = compile_template("[{{ story.title }}]({{ story.url | url }}) {{ 'javascript:x' | url }}.", "markdown")
    rendered = template.render(make_event(title="a_b", url="https://example.com/a_(b)?q=1 2"))
    assert rendered == "[a\\_b](https://example.com/a_%28b%29?q=1%202) ."
