"""The email notifier: one mail per event, or one digest mail, sent with aiosmtplib.

Delivery errors are sorted into the core's two kinds: :class:`DeliveryError` for what may work later
(connection trouble, timeouts, 4xx replies) and :class:`PermanentDeliveryError` for what will not
(bad credentials, 5xx replies, a missing password, a refused certificate). The core retries; this
module never does. No message it raises contains the password.
"""

from __future__ import annotations

import asyncio
import os
import ssl
from collections.abc import Sequence
from email.message import EmailMessage
from typing import Any

import aiosmtplib

from flamewatch import DeliveryError, Event, Notifier, NotifierContext, PermanentDeliveryError

from .compose import MailSettings, build_digest_message, build_event_message, one_line
from .options import EmailOptions


class EmailNotifier(Notifier):
    """Send alerts by email through an SMTP server (STARTTLS, implicit TLS or plain)."""

    type_name = "email"
    description = "sends an email per event (or one digest email) through an SMTP server"
    Options = EmailOptions

    options: EmailOptions

    def __init__(self, ctx: NotifierContext, options: EmailOptions) -> None:
        super().__init__(ctx, options)
        # Resolved once here rather than in every (async) send.
        self._cert_bundle = os.path.expanduser(options.ca_file) if options.ca_file else None

    @property
    def settings(self) -> MailSettings:
        """The message settings derived from the options."""
        return MailSettings(
            sender=self.options.sender_address,
            to=self.options.recipient_addresses,
            subject_prefix=self.options.subject_prefix,
            instance=self.name,
            list_unsubscribe=self.options.unsubscribe_header,
        )

    @property
    def _target(self) -> str:
        return f"SMTP {self.options.host}:{self.options.effective_port}"

    async def start(self) -> None:
        """Warn about settings that weaken security (no certificate check, a password sent in clear)."""
        opts = self.options
        if not opts.validate_certs and opts.security != "none":
            self.ctx.log.warning("%s: validate_certs is off: the server's certificate is not checked", self.name)
        if opts.password is not None and opts.security == "none":
            self.ctx.log.warning("%s: security is 'none': the SMTP password is sent unencrypted", self.name)

    async def send(self, event: Event) -> None:
        """Mail one event."""
        await self.deliver(build_event_message(event, self.settings))

    async def send_digest(self, events: Sequence[Event]) -> None:
        """Mail every event in one digest (nothing for none)."""
        if not events:
            return  # nothing happened: no empty mail
        await self.deliver(build_digest_message(events, self.settings))

    async def deliver(self, message: EmailMessage) -> None:
        """Send ``message`` to the configured recipients (only them, whatever its headers say)."""
        password = self._reveal_password()
        try:
            refused = await self._send(message, password)
        except Exception as exc:
            failure = self._reply_failure(exc, password) or self._link_failure(exc, password)
            if failure is None:
                raise
            if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
                # from None: the cause is the server's reply to AUTH, which may echo the credentials (in
                # base64, which _clean cannot spot); the message keeps only the cleaned reply.
                raise failure from None
            raise failure from exc
        if refused:
            # Some recipients took it: do not fail (a retry would mail the others again), but say who not.
            self.ctx.log.warning(
                "%s: %s refused some recipients: %s",
                self.name,
                self._target,
                "; ".join(f"{rcpt}: {self._reply(resp, password)}" for rcpt, resp in refused.items()),
            )

    async def _send(self, message: EmailMessage, password: str | None) -> dict[str, Any]:
        """One SMTP exchange; returns the recipients refused (the others took the message)."""
        opts = self.options
        # aiosmtplib's timeout applies to each socket operation; this one bounds the whole send.
        async with asyncio.timeout(opts.smtp_timeout):
            refused, _ = await aiosmtplib.send(
                message,
                sender=opts.sender_address.addr_spec,
                recipients=[a.addr_spec for a in opts.recipient_addresses],
                hostname=opts.host,
                port=opts.effective_port,
                username=opts.username,
                password=password,
                use_tls=opts.security == "tls",
                start_tls=opts.security == "starttls",
                validate_certs=opts.validate_certs,
                cert_bundle=self._cert_bundle,
                timeout=opts.smtp_timeout,
            )
        return dict(refused)

    def _reply_failure(self, exc: Exception, password: str | None) -> DeliveryError | None:
        """What an SMTP reply refusing the login, the recipients or the message means (None: not one)."""
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
            return PermanentDeliveryError(
                f"{self._target} refused the login for user {self.options.username!r}: {self._reply(exc, password)}"
            )
        if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
            replies = "; ".join(f"{r.recipient}: {self._reply(r, password)}" for r in exc.recipients)
            text = f"{self._target} refused every recipient ({replies})"
            # A 4xx refusal (greylisting, a full mailbox queue) may pass later; 5xx will not.
            retry = any(400 <= r.code < 500 for r in exc.recipients)
            return DeliveryError(text) if retry else PermanentDeliveryError(text)
        if isinstance(exc, aiosmtplib.SMTPResponseException):
            text = f"{self._target} answered {self._reply(exc, password)}"
            return DeliveryError(text) if 400 <= exc.code < 500 else PermanentDeliveryError(text)
        return None

    def _link_failure(self, exc: Exception, password: str | None) -> DeliveryError | None:
        """What a failure to reach or talk to the server means (None: not one of those)."""
        if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
            return DeliveryError(f"{self._target} did not answer within {self.options.smtp_timeout:g}s")
        if isinstance(exc, aiosmtplib.SMTPNotSupported):
            # e.g. STARTTLS required by config but not offered: retrying the same server cannot help.
            return PermanentDeliveryError(f"{self._target}: {self._clean(str(exc), password)}")
        if isinstance(exc, ssl.SSLCertVerificationError):
            return PermanentDeliveryError(self._cert_error(exc))
        if isinstance(exc, (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected)):
            cause = exc.__cause__ or exc.__context__
            if isinstance(cause, ssl.SSLCertVerificationError):
                return PermanentDeliveryError(self._cert_error(cause))
            return DeliveryError(f"{self._target}: {self._clean(str(exc), password)}")
        if type(exc) is aiosmtplib.SMTPException and "STARTTLS extension not supported" in str(exc):
            # aiosmtplib's "STARTTLS extension not supported": we refuse to send in clear text, and
            # retrying the same server will not make it offer TLS.
            return PermanentDeliveryError(
                f"{self._target} does not offer STARTTLS; use security = \"tls\" for an implicit-TLS port"
                " (465), or \"none\" only for a trusted relay"
            )
        if isinstance(exc, (aiosmtplib.SMTPException, OSError)):
            return DeliveryError(f"{self._target}: {self._clean(str(exc) or type(exc).__name__, password)}")
        if isinstance(exc, ValueError):
            # aiosmtplib's own address checks. The options were validated already, so this is an address
            # our check let through and the library did not: the same send can never succeed.
            return PermanentDeliveryError(f"{self._target}: {self._clean(str(exc), password)}")
        return None

    def _reveal_password(self) -> str | None:
        if self.options.password is None:
            return None
        try:
            return self.options.password.reveal()
        except LookupError as exc:  # names the env variable or file, never the value
            raise PermanentDeliveryError(f"password: {exc}") from exc

    def _cert_error(self, exc: ssl.SSLCertVerificationError) -> str:
        reason = exc.verify_message or exc.reason or "verification failed"
        return (
            f"{self._target}: the server's TLS certificate was refused ({reason}); "
            "set ca_file if it uses a private CA"
        )

    @staticmethod
    def _clean(text: str, password: str | None) -> str:
        """One line, and never the password, even if a server echoed it back."""
        text = one_line(text)
        if password:
            text = text.replace(password, "***")
        return text

    @classmethod
    def _reply(cls, exc: object, password: str | None) -> str:
        code = getattr(exc, "code", None)
        message = getattr(exc, "message", "") or ""
        return cls._clean(f"{code} {message}" if code is not None else str(message), password)
