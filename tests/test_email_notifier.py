"""The email notifier against a real SMTP server on loopback (aiosmtpd), plain, with AUTH and with TLS."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from fakes.smtp_server import FakeSMTPServer, TestCA
from flamewatch import DeliveryError, NotifierContext, PermanentDeliveryError, Secret, testing
from flamewatch.notifiers.email import (
    EmailNotifier,
    EmailOptions,
    MailSettings,
    build_digest_message,
    flamewatch_notifier_types,
)
from flamewatch.testing import HOSTILE_TITLE, closed_port

PASSWORD = "s3cret-app-pw"
T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)


#: The event most tests here mail: story 8863 crossing 500 comments with 512, its velocity and growth known.
make_event = partial(
    testing.make_event,
    comments=512,
    level=500,
    score=321,
    url="https://example.com/dropbox",
    rank=3,
    velocity=120.0,
    growth=40,
    at=T0,
)


@pytest.fixture
def make_notifier(session: aiohttp.ClientSession):
    def make(port: int, **overrides: Any) -> EmailNotifier:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "security": "none",
            "sender": "flamewatch <alerts@flamewatch.example>",
            "to": ["oncall@example.com", "Team Lead <lead@example.com>"],
            "smtp_timeout": 5.0,
        }
        values.update(overrides)
        return EmailNotifier(NotifierContext(name="oncall-mail", session=session), EmailOptions(**values))

    return make


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain and HTML bodies, checking the multipart/alternative shape on the way."""
    assert message.get_content_type() == "multipart/alternative"
    plain, html = list(message.iter_parts())
    assert plain.get_content_type() == "text/plain"
    assert html.get_content_type() == "text/html"
    return plain.get_content(), html.get_content()


# --- the plugin and its options -------------------------------------------------------------------


def test_hook_registers_the_email_type() -> None:
    (notifier_type,) = flamewatch_notifier_types()
    assert notifier_type is EmailNotifier
    assert notifier_type.type_name == "email"
    assert notifier_type.supports_digest()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"to": ["ok@example.com", "bob@"]}, "to: 'bob@' is not an email address"),
        ({"to": []}, "to: needs at least one address"),
        ({"sender": "alerts at example.com"}, "sender: 'alerts at example.com' is not an email address"),
        ({"to": ["a@example.com\r\nBcc: x@example.com"]}, "to: "),
        ({"password": Secret(env="SMTP_PASSWORD")}, "password: set username too"),
        ({"security": "ssl"}, "security: 'ssl' must be one of"),
        ({"port": 70000}, "port: 70000 is not a TCP port"),
        ({"smtp_timeout": 0.0}, "smtp_timeout: 0.0 must be more than 0"),
        ({"list_unsubscribe": "javascript:alert(1)"}, "list_unsubscribe: 'javascript:alert(1)'"),
    ],
)
def test_options_reject_bad_values_with_one_line(overrides: dict[str, Any], error: str) -> None:
    values: dict[str, Any] = {"host": "smtp.example.com", "sender": "a@example.com", "to": ["b@example.com"]}
    values.update(overrides)
    with pytest.raises(ValueError) as excinfo:
        EmailOptions(**values)
    assert str(excinfo.value).startswith(error)
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_port_defaults_by_security(security: str, port: int) -> None:
    options = EmailOptions(host="smtp.example.com", sender="a@example.com", to=["b@example.com"], security=security)
    assert options.effective_port == port


# --- messages over SMTP ------------------------------------------------------------------------------


async def test_immediate_mail_is_multipart_with_the_expected_headers(make_notifier) -> None:
    event = make_event()
    async with FakeSMTPServer() as smtp:
        notifier = make_notifier(smtp.port)
        await notifier.start()
        await notifier.send(event)
        await notifier.send(event)  # what a retry of the same event looks like
        first, second = await smtp.wait_for_messages(2)
        await notifier.aclose()

    assert first.mail_from == "alerts@flamewatch.example"
    assert first.rcpt_tos == ["oncall@example.com", "lead@example.com"]
    msg = first.message
    assert msg["Subject"] == (
        "[flamewatch] 'My YC app: Dropbox - Throw away your USB drive' reached 500 comments (512 now)"
    )
    assert msg["From"] == "flamewatch <alerts@flamewatch.example>"
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["X-Flamewatch-Event-Key"] == "8863:comments:500"
    assert msg["Date"].datetime.tzinfo is not None
    assert msg["Message-ID"].endswith(".flamewatch@flamewatch.example>")
    assert second.message["Message-ID"] == msg["Message-ID"]
    assert msg["List-Unsubscribe"] is None

    plain, html = parts(msg)
    assert "reached 500 comments (512 now)" in plain
    assert "https://news.ycombinator.com/item?id=8863" in plain
    assert "+40" in plain and "120/h" in plain
    assert '<a href="https://example.com/dropbox">My YC app' in html
    assert '<a href="https://news.ycombinator.com/item?id=8863">' in html
    assert "<table" in html and "120/h" in html


async def test_message_id_differs_between_events(make_notifier) -> None:
    async with FakeSMTPServer() as smtp:
        notifier = make_notifier(smtp.port, list_unsubscribe="mailto:leave@example.com, https://example.com/u")
        await notifier.send(make_event(level=500))
        await notifier.send(make_event(level=1000, comments=1003))
        first, second = await smtp.wait_for_messages(2)
    assert first.message["Message-ID"] != second.message["Message-ID"]
    assert first.message["List-Unsubscribe"] == "<mailto:leave@example.com>, <https://example.com/u>"


async def test_digest_holds_every_event_in_one_mail(make_notifier) -> None:
    events = [
        make_event(story_id=1, title="Rust 2.0 released", level=100, comments=150, at=T0),
        make_event(story_id=1, title="Rust 2.0 released", level=200, comments=230, at=T0 + timedelta(hours=1)),
        make_event(story_id=2, title="Show HN: a tiny database", rule="points", level=300, comments=80, growth=None),
        make_event(
            story_id=3, title="Ask HN: what are you reading?", url=None, rule="keyword", level="rust", comments=40,
            velocity=None,
        ),
    ]
    async with FakeSMTPServer() as smtp:
        notifier = make_notifier(smtp.port)
        await notifier.send_digest(events)
        (mail,) = await smtp.wait_for_messages(1)

    msg = mail.message
    assert msg["Subject"] == "[flamewatch] Digest: 3 hot threads"
    # A long header may be folded onto the next line; the keys are what matters.
    keys = [key.strip() for key in msg["X-Flamewatch-Event-Keys"].split(",")]
    assert keys == ["1:comments:100", "1:comments:200", "2:points:300", "3:keyword:rust"]
    assert msg["X-Flamewatch-Event-Count"] == "4"
    plain, html = parts(msg)
    for phrase in ("reached 100 comments", "reached 200 comments", "reached 300 points", "matches keyword 'rust'"):
        assert phrase in plain
        assert phrase.replace("'", "&#x27;") in html
    assert "3 hot threads, 4 alerts" in plain
    # Hottest thread first, with its latest count; the aligned columns line up with the header.
    lines = plain.splitlines()
    header = next(line for line in lines if line.strip().startswith("Comments"))
    first_row = lines[lines.index(header) + 2]
    assert first_row.endswith("Rust 2.0 released")
    assert first_row[: header.index("Thread")].split() == ["230", "321", "+40", "120/h"]
    assert html.count("<tr>") == 4  # header row and one row per thread
    for story_id in (1, 2, 3):
        assert f"https://news.ycombinator.com/item?id={story_id}" in html


def test_digest_message_id_ignores_order_and_caps_the_keys_header() -> None:
    settings = MailSettings(sender=Address(addr_spec="alerts@flamewatch.example"), to=[Address(addr_spec="a@b.c")])
    events = [make_event(story_id=n, level=100) for n in range(1, 151)]
    forward = build_digest_message(events, settings)
    backward = build_digest_message(events[::-1], settings, now=T0)
    assert forward["Message-ID"] == backward["Message-ID"]
    assert forward["X-Flamewatch-Event-Count"] == "150"
    assert len(forward["X-Flamewatch-Event-Keys"].split(",")) == 100
    other = build_digest_message(events[:-1], settings)
    assert other["Message-ID"] != forward["Message-ID"]


async def test_empty_digest_sends_nothing(make_notifier) -> None:
    # Nothing listens on this port: trying to send would raise DeliveryError.
    notifier = make_notifier(closed_port())
    await notifier.send_digest([])


async def test_hostile_title_adds_no_header_and_no_recipient(make_notifier) -> None:
    event = make_event(title=HOSTILE_TITLE + " ünïcödé", url="javascript:alert(1)")
    async with FakeSMTPServer() as smtp:
        notifier = make_notifier(smtp.port)
        await notifier.send(event)
        await notifier.send_digest([event])
        mails = await smtp.wait_for_messages(2)

    for mail in mails:
        msg = mail.message
        assert mail.rcpt_tos == ["oncall@example.com", "lead@example.com"]
        assert msg["Bcc"] is None
        assert b"\nBcc:" not in mail.raw
        assert [a.addr_spec for a in msg["To"].addresses] == ["oncall@example.com", "lead@example.com"]
        plain, html = parts(msg)
        # Faithful in plain text (the line break became a space), escaped in HTML, never a javascript: link.
        assert "<!channel> Ask HN: 'quotes' & <b>tags</b> Bcc: victim@example.com ünïcödé" in plain
        assert "&lt;!channel&gt; Ask HN: &#x27;quotes&#x27; &amp; &lt;b&gt;tags&lt;/b&gt; Bcc: victim@" in html
        assert "<b>tags</b>" not in html
        assert "javascript:" not in html
    subject = mails[0].message["Subject"]
    assert "\r" not in subject and "\n" not in subject
    assert subject == (
        "[flamewatch] '<!channel> Ask HN: 'quotes' & <b>tags</b> Bcc: victim@example.com ünïcödé'"
        " reached 500 comments (512 now)"
    )


# --- AUTH, TLS -------------------------------------------------------------------------------------------


async def test_auth_with_password_from_env(make_notifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAMEWATCH_TEST_SMTP_PASSWORD", PASSWORD)
    async with FakeSMTPServer(auth=("alerts", PASSWORD)) as smtp:
        notifier = make_notifier(
            smtp.port, username="alerts", password=Secret(env="FLAMEWATCH_TEST_SMTP_PASSWORD")
        )
        await notifier.send(make_event())
        (mail,) = await smtp.wait_for_messages(1)
        assert smtp.auth_attempts == [("alerts", True)]
    assert mail.auth_user == "alerts"
    assert PASSWORD not in repr(notifier.options)


async def test_wrong_password_is_permanent_and_not_echoed(make_notifier, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "wrong-pw-123456"
    monkeypatch.setenv("FLAMEWATCH_TEST_SMTP_PASSWORD", wrong)
    async with FakeSMTPServer(auth=("alerts", PASSWORD)) as smtp:
        notifier = make_notifier(
            smtp.port, username="alerts", password=Secret(env="FLAMEWATCH_TEST_SMTP_PASSWORD")
        )
        with pytest.raises(PermanentDeliveryError) as excinfo:
            await notifier.send(make_event())
        assert smtp.mails == []
    text = str(excinfo.value) + repr(excinfo.value)
    assert "refused the login for user 'alerts'" in text
    # The server's reply to AUTH may echo credentials, so it is not chained.
    assert excinfo.value.__cause__ is None and excinfo.value.__suppress_context__
    assert wrong not in text and PASSWORD not in text


async def test_missing_password_env_is_permanent(make_notifier, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLAMEWATCH_TEST_UNSET_PASSWORD", raising=False)
    notifier = make_notifier(closed_port(), username="alerts", password=Secret(env="FLAMEWATCH_TEST_UNSET_PASSWORD"))
    with pytest.raises(PermanentDeliveryError, match="password: environment variable FLAMEWATCH_TEST_UNSET"):
        await notifier.send(make_event())


@pytest.fixture(scope="module")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    pytest.importorskip("trustme")
    return TestCA(Path(tmp_path_factory.mktemp("ca")))


async def test_starttls_with_private_ca(make_notifier, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLAMEWATCH_TEST_SMTP_PASSWORD", PASSWORD)
    async with FakeSMTPServer(auth=("alerts", PASSWORD), starttls_context=test_ca.server_context()) as smtp:
        notifier = make_notifier(
            smtp.port,
            security="starttls",
            ca_file=str(test_ca.ca_file),
            username="alerts",
            password=Secret(env="FLAMEWATCH_TEST_SMTP_PASSWORD"),
        )
        await notifier.send(make_event())
        (mail,) = await smtp.wait_for_messages(1)
    assert mail.tls and mail.auth_user == "alerts"


async def test_implicit_tls_with_private_ca(make_notifier, test_ca: TestCA) -> None:
    async with FakeSMTPServer(implicit_tls_context=test_ca.server_context()) as smtp:
        notifier = make_notifier(smtp.port, security="tls", ca_file=str(test_ca.ca_file))
        await notifier.send(make_event())
        (mail,) = await smtp.wait_for_messages(1)
    assert mail.rcpt_tos == ["oncall@example.com", "lead@example.com"]


async def test_untrusted_certificate_is_permanent(make_notifier, test_ca: TestCA) -> None:
    async with FakeSMTPServer(starttls_context=test_ca.server_context()) as smtp:
        notifier = make_notifier(smtp.port, security="starttls")  # no ca_file: the test CA is unknown
        with pytest.raises(PermanentDeliveryError, match="certificate was refused"):
            await notifier.send(make_event())
        assert smtp.mails == []


async def test_starttls_not_offered_is_permanent(make_notifier) -> None:
    async with FakeSMTPServer() as smtp:  # no TLS at all
        notifier = make_notifier(smtp.port, security="starttls")
        with pytest.raises(PermanentDeliveryError, match="does not offer STARTTLS"):
            await notifier.send(make_event())
        assert smtp.mails == []


# --- failures -------------------------------------------------------------------------------------------


async def test_server_down_is_retryable(make_notifier) -> None:
    notifier = make_notifier(closed_port())
    with pytest.raises(DeliveryError) as excinfo:
        await notifier.send(make_event())
    assert excinfo.value.retryable
    assert "SMTP 127.0.0.1:" in str(excinfo.value)
    assert excinfo.value.__cause__ is not None  # the connection error, shown with -vv


@pytest.mark.looptime(start=0)  # the 30 s SMTP timeout passes on the fake loop clock, instantly
async def test_silent_server_times_out_as_retryable(make_notifier) -> None:
    connected = asyncio.Event()
    release = asyncio.Event()

    async def never_greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await release.wait()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(never_greet, "127.0.0.1", 0)
    try:
        notifier = make_notifier(server.sockets[0].getsockname()[1], smtp_timeout=30.0)
        with pytest.raises(DeliveryError, match="did not answer within 30s") as excinfo:
            await notifier.send(make_event())
        assert connected.is_set() and excinfo.value.retryable
    finally:
        release.set()
        server.close()
        await server.wait_closed()


async def test_partly_refused_recipients_deliver_and_warn(make_notifier, caplog: pytest.LogCaptureFixture) -> None:
    async with FakeSMTPServer(refused_recipients={"lead@example.com": "550 5.1.1 No such user"}) as smtp:
        notifier = make_notifier(smtp.port)
        await notifier.send(make_event())  # no exception: a retry would mail oncall@ twice
        (mail,) = await smtp.wait_for_messages(1)
    assert mail.rcpt_tos == ["oncall@example.com"]
    assert "refused some recipients: lead@example.com: 550 5.1.1 No such user" in caplog.text


@pytest.mark.parametrize(
    ("server_kwargs", "permanent"),
    [
        ({"rcpt_reply": "451 4.3.0 Try again later"}, False),
        ({"data_reply": "451 4.3.0 Queue full"}, False),
        ({"rcpt_reply": "550 5.1.1 No such user"}, True),
        ({"data_reply": "554 5.7.1 Message rejected"}, True),
    ],
)
async def test_smtp_replies_are_classified(make_notifier, server_kwargs: dict[str, str], permanent: bool) -> None:
    async with FakeSMTPServer(**server_kwargs) as smtp:
        notifier = make_notifier(smtp.port)
        with pytest.raises(DeliveryError) as excinfo:
            await notifier.send(make_event())
        assert smtp.mails == []
    assert isinstance(excinfo.value, PermanentDeliveryError) is permanent
    code = next(iter(server_kwargs.values()))[:3]
    assert code in str(excinfo.value)


@pytest.mark.parametrize("title", [
    "Show HN: =?utf-8?q?x=0D=0AReply-To:_x@evil.example?=",
    "Ask HN: =?utf-8?q?x=0D=0A=0D=0AReset_your_password_at_http://evil.example?=",
    "0 =?utf-8?q?=0A",
])
async def test_encoded_words_in_a_title_cannot_add_headers_or_replace_the_body(make_notifier, title: str) -> None:
    async with FakeSMTPServer() as smtp:
        notifier = make_notifier(smtp.port)
        await notifier.send(make_event(title=title))
        (mail,) = await smtp.wait_for_messages(1)
    msg = mail.message
    assert msg["Reply-To"] is None
    assert msg.get_content_type() == "multipart/alternative"
    subject = str(msg["Subject"])
    assert "\n" not in subject and "\r" not in subject
    assert title.split("=?")[0].strip() in subject  # the real subject, not the last-resort fallback
    assert b"\r\nReply-To:" not in mail.raw
    # The title is still shown as it was written, inside our own body, in both parts.
    assert [part.get_content_type() for part in msg.iter_parts()] == ["text/plain", "text/html"]
    assert title.split("=?")[0].strip() in msg.get_body(("plain",)).get_content()


def test_a_missing_or_broken_ca_file_is_a_config_error(tmp_path: Path) -> None:
    broken = tmp_path / "not-a-cert.pem"
    broken.write_text("hello")
    for path in (tmp_path / "missing.pem", broken):
        with pytest.raises(ValueError, match=r"^ca_file: cannot load .* as PEM certificates"):
            EmailOptions(host="smtp.example.com", sender="a@example.com", to=["b@example.com"], ca_file=str(path))
