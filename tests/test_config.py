"""Config: every mistake is one ``<file>: <key path>: <problem>`` line; secrets never show."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import time
from pathlib import Path

import pytest

from flamewatch import Duration, Levels, NonNegativeInt, Notifier, PositiveInt, TimeOfDay, hookimpl
from flamewatch.app import resolve_notifiers, resolve_rules
from flamewatch.dispatch import NotifierInstance
from flamewatch.cli.admin import option_lines
from flamewatch.config import Config, ConfigError, load_config, parse_config
from flamewatch.plugins import Plugins, make_plugin_manager

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "flamewatch.example.toml"

SECRETS = {
    "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T000/B000/webhookSECRETpart",
    "SLACK_BOT_TOKEN": "xoxb-botSECRETtoken",
    "SMTP_PASSWORD": "smtpSECRETpassword",
    "FLAMEWATCH_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "FLAMEWATCH_FEED_TOKEN": "feedSECRETtoken0123456789",
}


@pytest.fixture(scope="module")
def builtin_plugins() -> Plugins:
    """The shipped notifiers, found through their entry points (loaded once: importing slack-sdk is slow)."""
    return make_plugin_manager()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "fw.toml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write


@pytest.fixture
def secrets_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    # The example's digest mail reads its password from ~/.config/flamewatch/smtp-password.
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".config" / "flamewatch").mkdir(parents=True)
    (tmp_path / ".config" / "flamewatch" / "smtp-password").write_text("fileSECRETpassword\n")


def config_error(path: Path, plugins: Plugins | None = None) -> str:
    """The one-line message loading (and, given plugins, resolving) ``path`` fails with."""
    with pytest.raises(ConfigError) as info:
        config = load_config(path)
        if plugins is not None:
            resolve_rules(config, plugins)
            resolve_notifiers(config, plugins)
    message = str(info.value)
    assert "\n" not in message, message
    assert message.startswith(f"{path}: "), message
    return message


def resolve(path: Path, plugins: Plugins) -> list[NotifierInstance]:
    return resolve_notifiers(load_config(path), plugins)


# --- valid configs ---------------------------------------------------------------------------------


def test_no_file_gives_defaults_with_a_console_notifier() -> None:
    config = load_config(None)
    assert config.watch.period == 60.0
    assert [(n.name, n.type) for n in config.notifiers] == [("console", "console")]


def test_example_config_is_valid_and_uses_every_shipped_type(secrets_env: None, builtin_plugins: Plugins) -> None:
    config = load_config(EXAMPLE)
    resolved = resolve_notifiers(config, builtin_plugins)
    assert {r.settings.type for r in resolved} == {"console", "slack", "email", "webhook", "feed"}
    by_name = {r.settings.name: r for r in resolved}
    assert by_name["hn-slack"].options.webhook_url is not None  # slack, webhook mode
    assert by_name["team-slack"].options.token is not None  # slack, bot mode
    assert by_name["oncall-mail"].settings.digest is None and by_name["oncall-mail"].settings.digest_at is None
    assert by_name["morning-digest"].settings.digest_at is not None
    assert by_name["hooks"].settings.digest == 6 * 3600
    rules = {rule.name: rule for rule in resolve_rules(config, builtin_plugins)}
    assert [(v.level, v.window) for v in rules["velocity"].options.velocity] == [(100, 3600.0), (300, 900.0)]


def test_example_config_sets_every_key_the_reader_knows(secrets_env: None, builtin_plugins: Plugins) -> None:
    # Each settings dataclass field should appear in the example, so it documents every key.
    import dataclasses
    import tomllib

    data = tomllib.loads(EXAMPLE.read_text())
    config = load_config(EXAMPLE)
    for section in ("hn", "watch", "crawl", "store", "delivery", "plugins"):
        fields = {f.name for f in dataclasses.fields(getattr(config, section))}
        assert fields == set(data[section]), section
    assert {"comment_levels", "points_levels", "keywords", "velocity", "mentions", "decline", "flamewar_ratio",
            "stale_after"} <= set(data["rules"])
    rule_keys = {f.name for rule in builtin_plugins.rule_types().values() for f in dataclasses.fields(rule.Options)}
    assert rule_keys == set(data["rules"])
    text = EXAMPLE.read_text()
    for key in ("enabled", "rules", "min_comments", "min_points", "lists", "keywords", "digest", "digest_at",
                "timeout", "concurrency", "quiet_hours", "timezone", "group_wait"):
        assert re.search(rf"^{key} = ", text, re.MULTILINE), f"no notifier example sets {key}"


@pytest.mark.parametrize(
    ("written", "seconds"),
    [('"5m"', 300.0), ('"24h"', 86400.0), ("90", 90.0), ('"90s"', 90.0), ('"1.5h"', 5400.0), ("2.5", 2.5),
     ('"500ms"', 0.5), ('"1d"', 86400.0)],
)
def test_durations(write: Callable[[str], Path], written: str, seconds: float) -> None:
    assert load_config(write(f"[watch]\nperiod = {written}\n")).watch.period == seconds


@pytest.mark.parametrize("written", ['"soon"', '"5 minutes"', '"5x"', "0", "-1", "true", '""', "[5]"])
def test_bad_durations(write: Callable[[str], Path], written: str) -> None:
    message = config_error(write(f"[watch]\nperiod = {written}\n"))
    problem = r"(expected a number of seconds .*|must be (a finite number )?more than zero.*)"
    assert re.fullmatch(r".*fw\.toml: watch\.period: " + problem, message), message


def test_relative_plugin_dirs_are_relative_to_the_config_file(write: Callable[[str], Path], tmp_path: Path) -> None:
    config = load_config(write('[plugins]\ndirs = ["myplugins", "/abs/dir"]\n'))
    assert config.plugins.dirs == (str(tmp_path / "myplugins"), "/abs/dir")


# --- one-line errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[hnn]\n", r"hnn: unknown key \(known keys here: .*hn.*\)"),
        ("[watch]\nperod = 5\n", r"watch\.perod: unknown key \(known keys here: .*period.*\)"),
        ("rules = 5\n", r"rules: expected a table, got 5"),
        ("[watch]\ntop = \"30\"\n", r"watch\.top: expected a whole number, got '30'"),
        ("[watch]\ntop = 0\n", r"watch\.top: must be at least 1, got 0"),
        ("[watch]\nlist = \"hotstories\"\n", r"watch\.list: expected one of topstories, .*got 'hotstories'"),
        ("[crawl]\nincremental = \"yes\"\n", r"crawl\.incremental: expected true or false, got 'yes'"),
        ("[plugins]\ndirs = \"plugins\"\n", r"plugins\.dirs: expected a list of strings, got 'plugins'"),
        ("[hn]\napi_url = \"ftp://x\"\n", r"hn\.api_url: expected an http:// or https:// URL, got 'ftp://x'"),
        ("[store]\nhistory_days = 0\n", r"store\.history_days: must be more than zero, got 0"),
        ("watch = 5\n", r"watch: expected a table, got 5"),
        ("notifiers = 5\n", r"notifiers: expected an array of tables .*"),
        ("[[notifiers]]\nname = \"x\"\n", r"notifiers\[0\]\.type: missing .*"),
        ("[[notifiers]]\ntype = \"\"\n", r"notifiers\[0\]\.type: must name a notifier type.*"),
        ("[[notifiers]]\ntype = \"console\"\nname = \"a b\"\n", r"notifiers\[0\]\.name: use letters.*"),
        ("[[notifiers]]\ntype = \"console\"\nlists = [\"top\"]\n", r"notifiers\[0\]\.lists: unknown list 'top' .*"),
        ("[[notifiers]]\ntype = \"console\"\ndigest = \"1h\"\ndigest_at = \"08:00\"\n",
         r"notifiers\[0\]\.digest_at: set either digest .* not both"),
        ("[[notifiers]]\ntype = \"console\"\ndigest_at = \"25:00\"\n",
         r"notifiers\[0\]\.digest_at: expected a local time of day like \"08:00\", got '25:00'"),
    ],
)
def test_mistakes_are_one_line_naming_file_and_key(write: Callable[[str], Path], text: str, expected: str) -> None:
    path = write(text)
    message = config_error(path)
    assert re.fullmatch(re.escape(f"{path}: ") + expected, message), message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[rules.velocity]]\nlevel = 5\nwindw = 60\n", r"rules\.velocity\[0\]\.windw: unknown key .*"),
        ("[[rules.velocity]]\nwindow = 60\n",
         r"rules\.velocity\[0\]\.level: missing \(comments per hour that fires the rule\)"),
        ("[rules]\ncomment_levels = [5, \"x\"]\n",
         r"rules\.comment_levels\[1\]: expected a positive whole number, got 'x'"),
        ("[rules]\ncoment_levels = [5]\n",
         r"rules\.coment_levels: unknown key \(known keys here: comment_levels, decline, .*, keywords, mentions, "
         r"points_levels, stale_after, stale_lists, velocity\)"),
        ("[[notifiers]]\ntype = \"console\"\nrules = [\"comment\"]\n",
         r"notifiers\[0\]\.rules: unknown rule 'comment' \(expected some of comments, points, velocity, keyword, "
         r"rank, reply, mention, decline, flamewar, stale, domain\)"),
    ],
)
def test_rule_mistakes_are_found_once_plugins_are_loaded(
    write: Callable[[str], Path], builtin_plugins: Plugins, text: str, expected: str
) -> None:
    # [rules] keys belong to the loaded rule types, so the file alone reads fine...
    path = write(text)
    config = load_config(path)
    assert config.rules or config.notifiers
    # ...and the mistake is one line as soon as the rules are known.
    message = config_error(path, builtin_plugins)
    assert re.fullmatch(re.escape(f"{path}: ") + expected, message), message


def test_invalid_toml_names_file_and_line(write: Callable[[str], Path]) -> None:
    path = write('[watch]\nperiod = "5m"\ntop = = 3\n')
    assert re.fullmatch(re.escape(str(path)) + r": line 3, column \d+: not valid TOML: .+", config_error(path))


def test_not_utf8_is_one_line(write: Callable[[str], Path], tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[watch]\nlist = "caf\xe9"\n')
    assert "not valid TOML: not UTF-8" in config_error(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert config_error(path) == f"{path}: no such file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert config_error(tmp_path).startswith(f"{tmp_path}: cannot read: ")


def test_duplicate_notifier_names(write: Callable[[str], Path]) -> None:
    path = write('[[notifiers]]\ntype = "console"\n[[notifiers]]\ntype = "webhook"\nname = "console"\nurl = "http://x"\n')
    assert config_error(path) == (
        f"{path}: notifiers[1] (console).name: notifier name 'console' is already used by notifiers[0] (console); "
        "give each [[notifiers]] table a unique name"
    )


def test_default_names_collide_too(write: Callable[[str], Path]) -> None:
    path = write('[[notifiers]]\ntype = "console"\n[[notifiers]]\ntype = "console"\n')
    assert "notifiers[1] (console).name: notifier name 'console' is already used" in config_error(path)


def test_unknown_notifier_type_lists_the_available_ones(write: Callable[[str], Path]) -> None:
    path = write('[[notifiers]]\ntype = "slak"\n')
    # The built-ins only: plugins installed from plugins/ (CI does) would lengthen the list.
    assert config_error(path, make_plugin_manager(load_entry_points=False)) == (
        f"{path}: notifiers[0] (slak).type: unknown notifier type 'slak' "
        "(available: console, email, feed, slack, webhook)"
    )


def test_unknown_option_names_the_type(write: Callable[[str], Path], builtin_plugins: Plugins) -> None:
    path = write('[[notifiers]]\nname = "out"\ntype = "console"\nstreem = "stderr"\n')
    message = config_error(path, builtin_plugins)
    assert message.startswith(f"{path}: notifiers[0] (out).streem: unknown key for type 'console' (known keys: ")
    assert "stream" in message and "min_comments" in message


def test_wrong_option_type(write: Callable[[str], Path], builtin_plugins: Plugins) -> None:
    path = write('[[notifiers]]\ntype = "webhook"\nurl = "http://x"\nrequest_timeout = "fast"\n')
    assert config_error(path, builtin_plugins) == (
        f'{path}: notifiers[0] (webhook).request_timeout: expected a number of seconds or a duration like "90s", '
        "\"5m\", \"24h\", got 'fast'"
    )
    path = write('[[notifiers]]\ntype = "webhook"\nurl = "http://x"\nformat = 5\n', "format.toml")
    assert config_error(path, builtin_plugins) == f"{path}: notifiers[0] (webhook).format: expected a string, got 5"
    # A plain float option still says "a number".
    typed = make_plugin_manager(extra=[TypedOptionsPlugin()], defaults=False, load_entry_points=False)
    path = write('[[notifiers]]\ntype = "typed"\nratio = "fast"\n', "ratio.toml")
    assert config_error(path, typed) == f"{path}: notifiers[0] (typed).ratio: expected a number, got 'fast'"


def test_plugin_options_typed_duration_take_durations(write: Callable[[str], Path], builtin_plugins: Plugins) -> None:
    (webhook,) = resolve(write('[[notifiers]]\ntype = "webhook"\nurl = "http://x"\nrequest_timeout = "10s"\n'),
                         builtin_plugins)
    assert webhook.options.request_timeout == 10.0
    plugins = make_plugin_manager(extra=[TypedOptionsPlugin()], defaults=False, load_entry_points=False)
    text = ('[[notifiers]]\ntype = "typed"\nwait = "1.5m"\nlevels = [30, 10, 30]\n'
            'retries = 0\nquiet_from = "22:30"\n[notifiers.limits]\nburst = 4\n')
    (typed,) = resolve(write(text, "typed.toml"), plugins)
    assert typed.options == Typed.Options(wait=90.0, levels=(10, 30), retries=0, quiet_from=time(22, 30),
                                          limits=Limits(burst=4))
    path = write('[[notifiers]]\ntype = "typed"\nlevels = [1, -2]\n', "bad.toml")
    assert config_error(path, plugins) == (
        f"{path}: notifiers[0] (typed).levels[1]: expected a positive whole number, got -2"
    )
    path = write('[[notifiers]]\ntype = "typed"\n[notifiers.limits]\nburst = 0\n', "bad2.toml")
    assert config_error(path, plugins) == f"{path}: notifiers[0] (typed).limits.burst: must be at least 1, got 0"


@dataclass(frozen=True)
class Limits:
    burst: PositiveInt = 1


class Typed(Notifier):
    """A third-party notifier whose options use the public annotated setting types."""

    type_name = "typed"

    @dataclass(frozen=True)
    class Options:
        wait: Duration = 60.0
        levels: Levels = ()
        retries: NonNegativeInt = 3
        quiet_from: TimeOfDay | None = None
        limits: Limits = Limits()
        ratio: float = 1.0

    async def send(self, event: object) -> None:  # pragma: no cover - never sent
        pass


class TypedOptionsPlugin:
    @hookimpl
    def flamewatch_notifier_types(self) -> list[type[Notifier]]:
        return [Typed]


def test_missing_required_option(write: Callable[[str], Path], builtin_plugins: Plugins) -> None:
    path = write('[[notifiers]]\ntype = "webhook"\n')
    assert config_error(path, builtin_plugins) == (
        f"{path}: notifiers[0] (webhook).url: missing (required by type 'webhook')"
    )


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ('type = "email"\nhost = "smtp.example.com"\nsender = "not an address"\nto = ["a@example.com"]',
         "notifiers[0] (n).sender: 'not an address' is not an email address"),
        ('type = "slack"\nwebhook_url = { env = "SLACK_WEBHOOK_URL" }\ntoken = { env = "SLACK_BOT_TOKEN" }',
         "notifiers[0] (n).webhook_url: set either webhook_url or token (with channel), not both"),
        ('type = "webhook"\nurl = "ftp://example.com/x"',
         "notifiers[0] (n).url: scheme 'ftp' is not supported; use an http:// or https:// URL"),
    ],
)
def test_options_post_init_errors_name_the_key(
    write: Callable[[str], Path], builtin_plugins: Plugins, secrets_env: None, options: str, expected: str
) -> None:
    path = write(f'[[notifiers]]\nname = "n"\n{options}\n')
    assert config_error(path, builtin_plugins) == f"{path}: {expected}"


class NoDigest(Notifier):
    """A notifier type without send_digest."""

    type_name = "nodigest"

    async def send(self, event: object) -> None:  # pragma: no cover - never sent
        pass


class NoDigestPlugin:
    @hookimpl
    def flamewatch_notifier_types(self) -> list[type[Notifier]]:
        return [NoDigest]


def test_digest_on_a_type_without_send_digest(write: Callable[[str], Path]) -> None:
    plugins = make_plugin_manager(extra=[NoDigestPlugin()], defaults=False, load_entry_points=False)
    path = write('[[notifiers]]\ntype = "nodigest"\ndigest = "1h"\n')
    assert config_error(path, plugins) == (
        f"{path}: notifiers[0] (nodigest).digest: notifier type 'nodigest' does not support digests"
    )
    ok = write('[[notifiers]]\ntype = "nodigest"\n', "ok.toml")
    assert [r.notifier_type for r in resolve(ok, plugins)] == [NoDigest]


# --- secrets ---------------------------------------------------------------------------------------


def slack_with(secret: str) -> str:
    return f'[[notifiers]]\nname = "s"\ntype = "slack"\nwebhook_url = {secret}\n'


def test_secret_as_plain_string_is_rejected_without_echoing_it(
    write: Callable[[str], Path], builtin_plugins: Plugins
) -> None:
    path = write(slack_with('"https://hooks.slack.com/services/T/B/plainSECRET"'))
    message = config_error(path, builtin_plugins)
    assert message == (
        f'{path}: notifiers[0] (s).webhook_url: secrets are not written in the config file: '
        'use { env = "VARIABLE" } or { file = "/path" }'
    )
    assert "plainSECRET" not in message


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ('{ env = "FW_TEST_UNSET_VARIABLE" }', "environment variable FW_TEST_UNSET_VARIABLE is not set"),
        ('{ env = "FW_TEST_EMPTY" }', "environment variable FW_TEST_EMPTY is empty"),
        ('{ env = "" }', "env: expected a non-empty string, got ''"),
        ('{ env = "A", file = "/b" }', "a secret takes exactly one of env or file"),
        ('{ value = "x" }', "unknown key 'value' in a secret"),
        ("42", 'expected { env = "VARIABLE" } or { file = "/path" }, got 42'),
        ('{ file = "/nonexistent/flamewatch/secret" }', "cannot read secret file /nonexistent/flamewatch/secret"),
    ],
)
def test_bad_secret_references(
    write: Callable[[str], Path], builtin_plugins: Plugins, monkeypatch: pytest.MonkeyPatch, secret: str, expected: str
) -> None:
    monkeypatch.delenv("FW_TEST_UNSET_VARIABLE", raising=False)
    monkeypatch.setenv("FW_TEST_EMPTY", "")
    path = write(slack_with(secret))
    assert config_error(path, builtin_plugins).startswith(f"{path}: notifiers[0] (s).webhook_url: {expected}")


def test_a_string_or_secret_key_gives_the_secret_s_own_reason(
    write: Callable[[str], Path], builtin_plugins: Plugins, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``url = { env = "X" }`` with X unset: the reason is the variable, not "expected one of str, Secret"."""
    monkeypatch.delenv("FW_TEST_UNSET_URL", raising=False)
    with pytest.raises(ConfigError) as info:
        parse_config({"store": {"url": {"env": "FW_TEST_UNSET_URL"}}}, "fw.toml")
    assert str(info.value) == "fw.toml: store.url: environment variable FW_TEST_UNSET_URL is not set"
    path = write('[[notifiers]]\ntype = "webhook"\nname = "w"\nurl = { env = "FW_TEST_UNSET_URL" }\n')
    assert config_error(path, builtin_plugins) == (
        f"{path}: notifiers[0] (w).url: environment variable FW_TEST_UNSET_URL is not set")
    with pytest.raises(ConfigError, match=r"store\.url: expected one of str, Secret, got 42"):
        parse_config({"store": {"url": 42}}, "fw.toml")  # fits neither: both named
    monkeypatch.setenv("FW_TEST_UNSET_URL", "postgresql://me@db/x")
    assert parse_config({"store": {"url": {"env": "FW_TEST_UNSET_URL"}}}, "fw.toml").store.url is not None
    assert parse_config({"store": {"url": "postgresql://me@db/x"}}, "fw.toml").store.url == "postgresql://me@db/x"


def test_secret_from_a_file(write: Callable[[str], Path], builtin_plugins: Plugins, tmp_path: Path) -> None:
    (tmp_path / "hook").write_text("https://hooks.slack.com/services/T/B/fileSECRET\n")
    (resolved,) = resolve(write(slack_with(f'{{ file = "{tmp_path / "hook"}" }}')), builtin_plugins)
    assert resolved.options.webhook_url.reveal() == "https://hooks.slack.com/services/T/B/fileSECRET"


def test_no_shipped_options_repr_or_check_listing_leaks_a_secret(
    secrets_env: None, builtin_plugins: Plugins, write: Callable[[str], Path]
) -> None:
    # Put secret-looking text in plain options as well: a webhook URL's path and header values carry tokens.
    extra = write(
        '[[notifiers]]\nname = "hook-plain"\ntype = "webhook"\n'
        'url = "https://alerts.example.com/hooks/urlSECRETpath?token=querySECRET"\n'
        'headers = { "Authorization" = "Bearer headerSECRET" }\n'
        '[[notifiers]]\nname = "mail"\ntype = "email"\nhost = "smtp.example.com"\nsender = "a@example.com"\n'
        'to = ["b@example.com"]\nlist_unsubscribe = "https://example.com/unsub?t=unsubSECRET"\n'
    )
    resolved = resolve_notifiers(load_config(EXAMPLE), builtin_plugins) + resolve(extra, builtin_plugins)
    # What each plugin promises to hide in its repr: Secret values, and the webhook URL's path/query and headers.
    promised = [*SECRETS.values(), "fileSECRETpassword", "urlSECRETpath", "querySECRET", "headerSECRET"]
    for r in resolved:
        for text in (repr(r.options), str(r.options)):
            assert not [s for s in promised if s in text], (r.settings.name, text)
        # check's own listing hides more: anything in a credential-like field, and every URL's path and query.
        listed = "\n".join(f"{k} = {v}" for k, v in option_lines(r.options))
        assert not [s for s in [*promised, "unsubSECRET"] if s in listed], (r.settings.name, listed)
    # ...but check still says where each secret comes from.
    listing = {r.settings.name: dict(option_lines(r.options)) for r in resolved}
    assert listing["hn-slack"]["webhook_url"] == "Secret(env='SLACK_WEBHOOK_URL')"
    assert listing["oncall-mail"]["password"] == "Secret(env='SMTP_PASSWORD')"
    assert listing["hooks"]["secret"] == "Secret(env='FLAMEWATCH_WEBHOOK_SECRET')"
    assert listing["hook-plain"]["url"] == "'https://alerts.example.com/…'"
    assert listing["mail"]["to"] == "['b@example.com']"


def test_option_lines_hide_unknown_credential_fields() -> None:
    import dataclasses

    @dataclasses.dataclass
    class Careless:  # a third-party Options that typed its token as a plain string
        api_key: str = "keySECRET"
        auth_token: str = "tokSECRET"
        room: str = "general"
        retries: int = 3

    lines = dict(option_lines(Careless()))
    assert lines == {"api_key": "<hidden>", "auth_token": "<hidden>", "room": "'general'", "retries": "3"}


def test_parse_config_without_notifiers_key_uses_console() -> None:
    config = parse_config({"watch": {"top": 5}}, "mem.toml")
    assert isinstance(config, Config) and config.watch.top == 5
    assert [n.type for n in config.notifiers] == ["console"]
    assert parse_config({"notifiers": []}, "mem.toml").notifiers == ()


@pytest.mark.parametrize(("section", "key", "value"), [
    ("watch", "period", "nan"), ("watch", "period", "inf"), ("delivery", "max_age", "inf"),
    ("store", "history_days", "nan"), ("hn", "timeout", '"0.0001ms"'),
])
def test_non_finite_and_absurd_numbers_are_refused(tmp_path, section: str, key: str, value: str) -> None:
    from flamewatch.config import ConfigError, load_config

    path = tmp_path / "fw.toml"
    path.write_text(f"[{section}]\n{key} = {value}\n")
    with pytest.raises(ConfigError, match=rf"fw.toml: {section}\.{key}: "):
        load_config(path)


def test_empty_notifier_keyword_and_unknown_console_stream_are_refused(tmp_path) -> None:
    from flamewatch.app import load_plugins, resolve_notifiers
    from flamewatch.config import ConfigError, load_config

    path = tmp_path / "fw.toml"
    path.write_text('[[notifiers]]\ntype = "console"\nkeywords = [""]\n')
    with pytest.raises(ConfigError, match=r"notifiers\[0\]\.keywords: keywords must not be empty"):
        load_config(path)
    path.write_text('[[notifiers]]\ntype = "console"\nstream = "Stderr"\n')
    config = load_config(path)
    with pytest.raises(ConfigError, match=r"notifiers\[0\] \(console\)\.stream: expected \"stdout\" or \"stderr\""):
        resolve_notifiers(config, load_plugins(config))


def test_retry_after_is_digits_only_and_capped() -> None:
    from flamewatch import parse_retry_after

    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("10000000") == 24 * 3600.0
    assert [parse_retry_after(v) for v in ("inf", "1e999", "-5", "nan", "", None)] == [None] * 6
