"""A real SMTP server on loopback for tests, built on aiosmtpd.

    async with FakeSMTPServer() as smtp:
        await notifier.send(event)             # host=smtp.host, port=smtp.port
        (mail,) = await smtp.wait_for_messages(1)
        assert mail.rcpt_tos == ["ops@example.com"]
        assert mail.message["Subject"].startswith("[flamewatch]")

aiosmtpd runs the server in a thread with its own event loop. Everything the handler sees is handed
to the test's loop with ``loop.call_soon_threadsafe``, so tests can await "N messages received"
instead of sleeping. Starting and stopping (which join the thread) run in a worker thread so the
test's loop never blocks, and ``__aexit__`` always stops the server.

Options cover what notifier tests need: AUTH with a fixed user and password, STARTTLS or implicit TLS
with a test CA (:class:`TestCA`, made with ``trustme``), and refusing RCPT or DATA with a chosen reply
(``"550 5.1.1 No such user"``, ``"451 4.3.0 Try again later"``).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["FakeSMTPServer", "ReceivedMail", "TestCA"]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the server accepted: the SMTP envelope and the raw bytes of the message."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    auth_user: str | None = None
    tls: bool = False

    @property
    def message(self) -> EmailMessage:
        """The message parsed with the modern policy (header objects, ``get_body`` and friends)."""
        parsed = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Recorder:
    """The test-loop side: what was received, and futures waiting for "N messages"."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.mails: list[ReceivedMail] = []
        self.auth_attempts: list[tuple[str, bool]] = []
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def post(self, kind: str, item: Any) -> None:
        """Called from the server thread: record ``item`` on the test loop."""
        self.loop.call_soon_threadsafe(self._add, kind, item)

    def _add(self, kind: str, item: Any) -> None:
        if kind == "mail":
            self.mails.append(item)
        else:
            self.auth_attempts.append(item)
        for count, waiter in self._waiters:
            if len(self.mails) >= count and not waiter.done():
                waiter.set_result(None)

    async def wait_for(self, count: int) -> None:
        if len(self.mails) >= count:
            return
        entry = (count, self.loop.create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        finally:
            self._waiters.remove(entry)


class _Handler:
    """aiosmtpd handler (runs in the server thread): applies the configured refusals, records mail."""

    def __init__(
        self,
        recorder: _Recorder,
        rcpt_reply: str | None,
        data_reply: str | None,
        refused_recipients: Mapping[str, str],
    ) -> None:
        self._recorder = recorder
        self._rcpt_reply = rcpt_reply
        self._data_reply = data_reply
        self._refused = {address.lower(): reply for address, reply in refused_recipients.items()}

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self._rcpt_reply is not None:
            return self._rcpt_reply
        if address.lower() in self._refused:
            return self._refused[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._data_reply is not None:
            return self._data_reply
        auth_user = None
        if session.authenticated and isinstance(session.auth_data, LoginPassword):
            auth_user = session.auth_data.login.decode()
        raw = envelope.original_content or b""
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            raw=raw,
            auth_user=auth_user,
            tls=session.ssl is not None,
        )
        self._recorder.post("mail", mail)
        return "250 Message accepted for delivery"


class _Authenticator:
    """Accepts exactly one user/password pair; records every attempt (user and outcome, never the password)."""

    def __init__(self, recorder: _Recorder, user: str, password: str) -> None:
        self._recorder = recorder
        self._user = user.encode()
        self._password = password.encode()

    def __call__(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = data.login == self._user and data.password == self._password
        self._recorder.post("auth", (data.login.decode(errors="replace"), ok))
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


class _LoopbackController(Controller):
    """A Controller that binds port 0 and learns the port the OS picked (no guessing, no races)."""

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]  # aiosmtpd leaves this hook unannotated


class TestCA:
    """A throwaway certificate authority and a server certificate for 127.0.0.1 / localhost.

    ``ca_file`` is the CA certificate in PEM (what a client trusts, e.g. the email notifier's
    ``ca_file``); :meth:`server_context` is the server side's ``SSLContext``.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, directory: Path) -> None:
        import trustme  # test-only dependency, imported here so plain SMTP tests do not need it

        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = directory / "flamewatch-test-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))

    def server_context(self) -> ssl.SSLContext:
        """A server ``SSLContext`` presenting the certificate signed by this CA."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        return context


class FakeSMTPServer:
    """An aiosmtpd server on 127.0.0.1 (a free port) that records what it receives.

    ``auth=("user", "password")`` offers AUTH PLAIN/LOGIN with that one account (allowed without TLS
    unless ``starttls_context`` is given); ``starttls_context`` offers STARTTLS (and then requires it
    before AUTH); ``implicit_tls_context`` wraps the whole connection in TLS (port-465 style);
    ``rcpt_reply`` / ``data_reply`` replace the answer to every RCPT / DATA (e.g. ``"550 5.1.1 No such
    user"``); ``refused_recipients`` maps single addresses to the reply their RCPT gets.
    """

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        auth: tuple[str, str] | None = None,
        starttls_context: ssl.SSLContext | None = None,
        implicit_tls_context: ssl.SSLContext | None = None,
        rcpt_reply: str | None = None,
        data_reply: str | None = None,
        refused_recipients: Mapping[str, str] | None = None,
    ) -> None:
        self._auth = auth
        self._starttls_context = starttls_context
        self._implicit_tls_context = implicit_tls_context
        self._rcpt_reply = rcpt_reply
        self._data_reply = data_reply
        self._refused_recipients = dict(refused_recipients or {})
        self._recorder: _Recorder | None = None
        self._controller: _LoopbackController | None = None
        self.port = 0

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the server thread and wait until it answers."""
        self._recorder = _Recorder(asyncio.get_running_loop())
        smtp_kwargs: dict[str, Any] = {"server_hostname": "flamewatch-test.localhost"}
        if self._auth is not None:
            smtp_kwargs["authenticator"] = _Authenticator(self._recorder, *self._auth)
            # aiosmtpd refuses AUTH on a plain connection by default; tests without TLS need it.
            smtp_kwargs["auth_require_tls"] = self._starttls_context is not None
        if self._starttls_context is not None:
            smtp_kwargs["tls_context"] = self._starttls_context
        controller = _LoopbackController(
            _Handler(self._recorder, self._rcpt_reply, self._data_reply, self._refused_recipients),
            hostname=self.host,
            port=0,
            ssl_context=self._implicit_tls_context,
            **smtp_kwargs,
        )
        self._controller = controller
        try:
            await asyncio.to_thread(controller.start)
        except BaseException:
            await self.stop()
            raise
        self.port = controller.port

    async def stop(self) -> None:
        """Stop the server and join its thread (safe to call twice or after a failed start)."""
        controller, self._controller = self._controller, None
        if controller is not None:
            await asyncio.to_thread(controller.stop, True)

    async def __aenter__(self) -> FakeSMTPServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- what was received -------------------------------------------------------------------

    @property
    def mails(self) -> list[ReceivedMail]:
        """Every message accepted so far, in order."""
        return list(self._require_recorder().mails)

    @property
    def auth_attempts(self) -> list[tuple[str, bool]]:
        """Every AUTH attempt so far as ``(user, succeeded)``."""
        return list(self._require_recorder().auth_attempts)

    # ``timeout`` (ASYNC109) is deliberate: a default bound makes a broken test fail instead of hanging.
    async def wait_for_messages(self, count: int, timeout: float = 5.0) -> list[ReceivedMail]:  # noqa: ASYNC109
        """Wait until at least ``count`` messages arrived; return them all (TimeoutError after ``timeout``)."""
        recorder = self._require_recorder()
        async with asyncio.timeout(timeout):
            await recorder.wait_for(count)
        return list(recorder.mails)

    def _require_recorder(self) -> _Recorder:
        if self._recorder is None:
            raise RuntimeError("FakeSMTPServer is not started")
        return self._recorder
