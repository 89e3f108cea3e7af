"""The webhook notifier against a real Standard Webhooks receiver on loopback."""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from functools import partial

import aiohttp
import pytest
from standardwebhooks.webhooks import Webhook

from fakes.webhook_receiver import FakeWebhookReceiver
from flamewatch import DeliveryError, Event, NotifierContext, PermanentDeliveryError, Secret, testing
from flamewatch.errors import ConfigError
from flamewatch.notifiers.webhook import WebhookNotifier, WebhookOptions, flamewatch_notifier_types, message_id, sign
from flamewatch.notifiers.webhook.signing import SecretFormatError
from flamewatch.plugins import DEFAULT_PLUGINS
from flamewatch.testing import HOSTILE_TITLE

AT = datetime(2024, 5, 1, 12, 30, tzinfo=UTC)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


#: The event most tests here post: "Show HN: a thing" crossing 100 comments with 103.
make_event = partial(
    testing.make_event,
    title="Show HN: a thing",
    comments=103,
    score=250,
    url="https://example.com/x",
    by="pg",
    time=1_714_560_000,
    rank=2,
    at=AT,
)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = new_secret()
    monkeypatch.setenv("FW_TEST_WEBHOOK_SECRET", value)
    return value


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[FakeWebhookReceiver]:
    async with FakeWebhookReceiver(secret) as fake:
        yield fake


def webhook(session: aiohttp.ClientSession, url: str, *, env: str | None = "FW_TEST_WEBHOOK_SECRET",
            **options: object) -> WebhookNotifier:
    secret = Secret(env=env) if env else None
    opts = WebhookOptions(url=url, secret=secret, **options)  # type: ignore[arg-type]
    return WebhookNotifier(NotifierContext(name="hooks", session=session), opts)


# --- signing and the body ------------------------------------------------------------------------


async def test_signed_delivery_verifies_with_standardwebhooks(session, receiver, secret) -> None:
    notifier = webhook(session, receiver.url)
    await notifier.start()
    event = make_event()
    await notifier.send(event)

    (got,) = await receiver.wait_for_deliveries(1)
    assert receiver.rejected == []
    # Verified independently of the fake too, with the reference library.
    assert Webhook(secret).verify(got.raw, got.headers) == got.body
    assert got.id == message_id([event.key]) and got.id.startswith("msg_")
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 60
    assert got.headers["content-type"] == "application/json"
    assert got.body == {"type": "flamewatch.event", "timestamp": AT.isoformat(), "version": 1,
                        "data": json.loads(json.dumps(event.to_dict()))}
    assert Event.from_dict(got.body["data"]) == event
    assert len(got.raw) < 20_000


def test_signature_matches_the_reference_implementation() -> None:
    secret = new_secret()
    body = b'{"a":"\\u00e9"}'
    ours = sign([base64.b64decode(secret.removeprefix("whsec_"))], "msg_x", 1_714_560_000, body)
    theirs = Webhook(secret).sign("msg_x", datetime.fromtimestamp(1_714_560_000, UTC), body.decode())
    assert ours == theirs


async def test_retry_sends_the_same_webhook_id_and_receiver_counts_a_duplicate(session, receiver) -> None:
    notifier = webhook(session, receiver.url)
    event = make_event()
    receiver.fail_next(500)
    with pytest.raises(DeliveryError) as first:
        await notifier.send(event)
    assert first.value.retryable
    await notifier.send(event)  # the core's retry
    await notifier.send(event)  # an at-least-once repeat after the receiver already accepted it

    assert len({r.id for r in receiver.requests}) == 1
    assert [r.status for r in receiver.requests] == [500, 200, 200]
    assert len(receiver.deliveries) == 1
    assert receiver.duplicates == 1


def test_different_events_and_digests_get_different_ids() -> None:
    a, b = make_event(level=100), make_event(level=200)
    assert message_id([a.key]) != message_id([b.key])
    digest_id = message_id([a.key, b.key], kind="digest")
    assert digest_id == message_id([b.key, a.key], kind="digest")  # order does not matter
    assert digest_id not in (message_id([a.key]), message_id([b.key]))


async def test_secret_rotation_signs_with_every_key(session, monkeypatch) -> None:
    old, new = new_secret(), new_secret()
    monkeypatch.setenv("FW_ROTATING", f"{old} {new}")
    async with FakeWebhookReceiver(old) as old_rx, FakeWebhookReceiver(new) as new_rx:
        for rx in (old_rx, new_rx):
            await webhook(session, rx.url, env="FW_ROTATING").send(make_event())
            (got,) = await rx.wait_for_deliveries(1)
            assert len(got.headers["webhook-signature"].split(" ")) == 2
            assert rx.rejected == []


async def test_receiver_with_another_secret_rejects_and_that_is_permanent(session, monkeypatch) -> None:
    monkeypatch.setenv("FW_OTHER", new_secret())
    async with FakeWebhookReceiver(new_secret()) as rx:
        with pytest.raises(PermanentDeliveryError, match="HTTP 401"):
            await webhook(session, rx.url, env="FW_OTHER").send(make_event())
        assert len(rx.rejected) == 1 and rx.deliveries == []


async def test_without_a_secret_messages_are_unsigned(session, receiver) -> None:
    with pytest.raises(PermanentDeliveryError):
        await webhook(session, receiver.url, env=None).send(make_event())
    (got,) = receiver.rejected
    assert "webhook-signature" not in got.headers and got.id is not None


async def test_extra_headers_are_sent(session, receiver) -> None:
    notifier = webhook(session, receiver.url, headers={"Authorization": "Bearer t0ken", "X-Team": "hn"})
    await notifier.send(make_event())
    (got,) = await receiver.wait_for_deliveries(1)
    assert got.headers["authorization"] == "Bearer t0ken"
    assert got.headers["x-team"] == "hn"


async def test_hostile_title_arrives_byte_faithful(session, receiver) -> None:
    await webhook(session, receiver.url).send(make_event(title=HOSTILE_TITLE))
    (got,) = await receiver.wait_for_deliveries(1)
    assert got.body["data"]["story"]["title"] == HOSTILE_TITLE
    assert b"\r" not in got.raw and b"\n" not in got.raw  # escaped inside the JSON string
    assert "bcc" not in got.headers


async def test_digest_body_holds_all_events(session, receiver) -> None:
    events = [make_event(story_id=i, title=f"story {i}") for i in (1, 2, 3)]
    notifier = webhook(session, receiver.url)
    assert notifier.supports_digest()
    await notifier.send_digest(events)
    await notifier.send_digest([])  # nothing to send: no request
    (got,) = await receiver.wait_for_deliveries(1)
    assert len(receiver.requests) == 1
    assert got.body["type"] == "flamewatch.digest" and got.body["version"] == 1
    assert [e["key"] for e in got.body["data"]["events"]] == [e.key for e in events]
    assert got.id == message_id([e.key for e in events], kind="digest")


async def test_alertmanager_format(session, receiver) -> None:
    await webhook(session, receiver.url, format="alertmanager").send_digest(
        [make_event(level=100), make_event(level=200)]
    )
    (got,) = await receiver.wait_for_deliveries(1)
    body = got.body
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "hooks"
    assert [a["labels"]["level"] for a in body["alerts"]] == ["100", "200"]
    assert body["commonLabels"] == {"alertname": "flamewatch_comments"}
    assert all(isinstance(v, str) for a in body["alerts"] for v in a["labels"].values())


async def test_non_finite_numbers_become_null(session, receiver) -> None:
    await webhook(session, receiver.url).send(make_event(velocity=float("nan")))
    (got,) = await receiver.wait_for_deliveries(1)
    assert got.body["data"]["velocity"] is None


# --- outcomes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (500, {}, None),
    (503, {"Retry-After": "30"}, 30.0),
    (429, {"Retry-After": "7"}, 7.0),
    (408, {}, None),
])
async def test_retryable_statuses(session, receiver, status, headers, retry_after) -> None:
    receiver.fail_next(status, headers=headers)
    with pytest.raises(DeliveryError, match=f"HTTP {status}") as info:
        await webhook(session, receiver.url).send(make_event())
    assert info.value.retryable and not isinstance(info.value, PermanentDeliveryError)
    assert info.value.retry_after == retry_after


@pytest.mark.parametrize(("status", "words"), [(400, "HTTP 400"), (410, "410 Gone"), (403, "HTTP 403")])
async def test_permanent_statuses(session, receiver, status, words) -> None:
    receiver.fail_next(status)
    with pytest.raises(PermanentDeliveryError, match=words):
        await webhook(session, receiver.url).send(make_event())


async def test_redirect_is_a_failure_and_not_followed(session, receiver) -> None:
    receiver.fail_next(302, headers={"Location": receiver.base_url + "/moved"})
    with pytest.raises(PermanentDeliveryError, match=r"HTTP 302.*not followed"):
        await webhook(session, receiver.url).send(make_event())
    assert [r.path for r in receiver.requests] == [receiver.path]
    assert receiver.deliveries == []


async def test_connection_refused_is_retryable_and_recovers(session, receiver) -> None:
    notifier = webhook(session, receiver.url)
    await receiver.go_down()
    with pytest.raises(DeliveryError, match="cannot connect") as info:
        await notifier.send(make_event())
    assert info.value.retryable
    await receiver.come_up()
    await notifier.send(make_event())
    assert len(await receiver.wait_for_deliveries(1)) == 1


@pytest.mark.looptime(start=0)  # the 10 s request timeout passes on the fake loop clock, instantly
async def test_timeout_is_retryable(session, receiver) -> None:
    receiver.hang_next()
    with pytest.raises(DeliveryError, match="did not answer within 10s") as info:
        await webhook(session, receiver.url, request_timeout=10.0).send(make_event())
    assert info.value.retryable


@pytest.mark.looptime(start=0)  # the hanging request times out on the fake loop clock
async def test_secrets_and_url_tokens_never_appear_in_messages_logs_or_repr(
    session, receiver, secret, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    url = receiver.url + "/T0PS3CRET?token=hunter2"
    receiver.path = receiver.path + "/T0PS3CRET"
    notifier = webhook(session, url, headers={"Authorization": "Bearer t0ken"})
    key_b64 = secret.removeprefix("whsec_")
    texts = [repr(notifier.options), str(notifier.options)]

    await notifier.send(make_event())  # success path logs at debug
    for status in (500, 410, 302, 400):
        receiver.fail_next(status)
        with pytest.raises(DeliveryError) as info:
            await notifier.send(make_event())
        texts.append(str(info.value))
    receiver.hang_next()
    with pytest.raises(DeliveryError) as info:
        await webhook(session, url, request_timeout=10.0).send(make_event())
    texts.append(str(info.value))
    await receiver.go_down()
    with pytest.raises(DeliveryError) as info:
        await notifier.send(make_event())
    texts.append(str(info.value))
    monkeypatch.setenv("FW_TEST_WEBHOOK_SECRET", secret + "!not-base64")
    with pytest.raises(PermanentDeliveryError) as info:
        await notifier.start()
    texts.append(str(info.value))

    everything = "\n".join(texts) + caplog.text
    assert "127.0.0.1" in everything  # the messages do name the target...
    for leak in (secret, key_b64, "hunter2", "T0PS3CRET", "t0ken"):  # ...but nothing secret
        assert leak not in everything


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"X-Evil\r\nBcc": "victim@example.com"},
    {"X-Ok": "fine\r\nBcc: victim@example.com"},
    {"X-Ok": "line\nbreak"},
    {"webhook-id": "msg_forged"},
    {"Webhook-Signature": "v1,forged"},
    {"Content-Type": "text/plain"},
    {"": "empty name"},
])
def test_header_injection_and_overrides_are_rejected_at_config_time(headers) -> None:
    with pytest.raises(ValueError) as info:
        WebhookOptions(url="https://example.com/hook", headers=headers)
    message = str(info.value)
    assert message.startswith("headers: ") and "\n" not in message and "\r" not in message
    assert "victim" not in message and "forged" not in message


@pytest.mark.parametrize(("options", "start"), [
    ({"url": "ftp://example.com/hook"}, "url: scheme 'ftp'"),
    ({"url": "example.com/hook"}, "url: scheme"),
    ({"url": "https:///hook"}, "url: has no host"),
    ({"url": "https://example.com/a b"}, "url: contains whitespace"),
    ({"url": "https://example.com", "request_timeout": 0.0}, "request_timeout: "),
    ({"url": "https://example.com", "format": "xml"}, "format: 'xml'"),
])
def test_bad_options_give_one_line_errors(options, start) -> None:
    with pytest.raises(ValueError) as info:
        WebhookOptions(**options)
    assert str(info.value).startswith(start) and "\n" not in str(info.value)


async def test_missing_or_malformed_secret_fails_at_start(session, monkeypatch) -> None:
    monkeypatch.delenv("FW_NOT_SET", raising=False)
    with pytest.raises(PermanentDeliveryError, match="FW_NOT_SET"):
        await webhook(session, "https://example.com/hook", env="FW_NOT_SET").start()
    monkeypatch.setenv("FW_BAD", "whsec_ok+ whsec_***")
    with pytest.raises(PermanentDeliveryError, match="secret #2 is not valid base64") as info:
        await webhook(session, "https://example.com/hook", env="FW_BAD").start()
    # The cause names the position of the bad secret, never its text, so it is kept for -vv.
    assert isinstance(info.value.__cause__, SecretFormatError) and isinstance(info.value.__cause__, ConfigError)
    assert "***" not in str(info.value.__cause__)


def test_plugin_registers_the_webhook_type() -> None:
    (cls,) = flamewatch_notifier_types()
    assert cls is WebhookNotifier and cls.type_name == "webhook" and cls.supports_digest()
    assert ("webhook", "flamewatch.notifiers.webhook") in DEFAULT_PLUGINS


async def test_header_values_can_be_secrets_and_user_agent_can_be_replaced(
    session: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK_AUTH", "Bearer s3cr3t-token")
    secret = new_secret()
    monkeypatch.setenv("HOOK_SECRET_FOR_TEST", secret)
    async with FakeWebhookReceiver(secret) as receiver:
        options = WebhookOptions(url=receiver.url, secret=Secret(env="HOOK_SECRET_FOR_TEST"),
                                 headers={"Authorization": Secret(env="HOOK_AUTH"), "user-agent": "acme/1.0"})
        notifier = WebhookNotifier(NotifierContext(name="hooks", session=session), options)
        await notifier.send(make_event())
        (delivery,) = receiver.deliveries
    assert delivery.headers["authorization"] == "Bearer s3cr3t-token"
    assert delivery.headers["user-agent"] == "acme/1.0"
    assert "s3cr3t" not in repr(options)


async def test_a_200_with_a_huge_header_is_a_success(receiver) -> None:
    """A receiver's 200 OK with a 60 KB header (a big cookie) was accepted: reading its answer must not
    fail the send (it was resent 12 times and dead-lettered). The daemon's shared session is used."""
    from flamewatch.hn.client import MAX_HEADER_LINE, make_session
    from flamewatch.notifiers.webhook.notifier import ANSWER_HEADER_LIMIT

    assert ANSWER_HEADER_LIMIT == MAX_HEADER_LINE  # the limit the error names is the session's
    receiver.fail_next(200, headers={"Set-Cookie": "s=" + "x" * 60_000, "X-Trace": "t" * 30_000})
    async with make_session() as shared:
        await webhook(shared, receiver.url).send(make_event())
    assert len(receiver.deliveries) == 1 and receiver.duplicates == 0
    # Beyond the limit the answer cannot be read: retried, and said so without the header's text.
    receiver.fail_next(200, headers={"Set-Cookie": "s=SECRETCOOKIE" + "x" * 300_000})
    async with make_session() as shared:
        with pytest.raises(DeliveryError, match=r"its answer could not be read \(a header over 256 KiB") as info:
            await webhook(shared, receiver.url).send(make_event(title="another"))
    assert info.value.retryable and "SECRETCOOKIE" not in str(info.value)
