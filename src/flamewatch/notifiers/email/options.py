"""The email notifier's config keys (``[[notifiers]]`` with ``type = "email"``) and their checks.

The core checks names and types; :meth:`EmailOptions.__post_init__` checks what types cannot say
(addresses, the security mode, ports) and raises one-line ``ValueError("<key>: <problem>")``.
"""

from __future__ import annotations

import os
import re
import ssl
import unicodedata
from dataclasses import dataclass, field
from email.headerregistry import Address

from flamewatch import Duration, Secret

#: What ``security`` accepts, with the port each one uses when ``port`` is not set.
DEFAULT_PORTS = {"starttls": 587, "tls": 465, "none": 25}

# An ASCII dot-atom addr-spec: what every SMTP server accepts without SMTPUTF8. Deliberately
# stricter than RFC 5322 (no quoted local parts, no address literals): these are config values
# written by a person, and a strict check catches typos before the first alert is lost.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDR_SPEC = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
# "Display Name <addr-spec>", the display name optionally in double quotes.
_NAME_ADDR = re.compile(r'\s*(?:"([^"]*)"|([^"<>]*?))\s*<([^<>]*)>\s*')
# A List-Unsubscribe target: a mailto: or http(s): URI without spaces, brackets or commas.
_UNSUBSCRIBE_URI = re.compile(r"(?:mailto:|https?://)[^\s<>,]+", re.IGNORECASE)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in text)


def parse_mailbox(value: str, key: str) -> Address:
    """Parse ``"bob@example.com"`` or ``"Bob <bob@example.com>"``; raise ``ValueError`` naming ``key``.

    >>> parse_mailbox("Alerts <alerts@example.com>", "sender").addr_spec
    'alerts@example.com'
    """
    bad = ValueError(f"{key}: {value!r} is not an email address")
    if not isinstance(value, str) or _has_control(value):
        raise bad
    display_name = ""
    addr_spec = value.strip()
    match = _NAME_ADDR.fullmatch(value)
    if match:
        display_name = (match.group(1) if match.group(1) is not None else match.group(2)).strip()
        addr_spec = match.group(3).strip()
    if not _ADDR_SPEC.fullmatch(addr_spec):
        raise bad
    username, domain = addr_spec.rsplit("@", 1)
    return Address(display_name=display_name, username=username, domain=domain)


@dataclass(frozen=True)
class EmailOptions:
    """Options of ``type = "email"``.

    ``sender`` and each of ``to`` are ``addr@example.com`` or ``Name <addr@example.com>``.
    ``port`` defaults by ``security``: 587 for ``starttls``, 465 for ``tls``, 25 for ``none``.
    ``ca_file`` adds a PEM CA bundle to trust (self-hosted relays with a private CA).
    ``smtp_timeout`` bounds one whole SMTP conversation (connect, TLS, login, send).
    ``list_unsubscribe`` is one or more ``mailto:``/``https://`` URIs, comma-separated.
    """

    host: str
    sender: str
    to: list[str]
    port: int | None = None
    security: str = "starttls"
    username: str | None = None
    password: Secret | None = None
    subject_prefix: str = "[flamewatch]"
    # Not called "timeout": that key belongs to the core (its deadline for a whole delivery attempt), so
    # a field of that name could never be set from config.
    smtp_timeout: Duration = 30.0
    validate_certs: bool = True
    ca_file: str | None = None
    # Kept out of the repr: an unsubscribe link can carry a token.
    list_unsubscribe: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._check_server()
        self._check_addresses()
        self._check_login()
        if _has_control(self.subject_prefix):
            raise ValueError("subject_prefix: must not contain control characters or line breaks")
        if self.ca_file is not None:
            self._check_ca_file(self.ca_file)
        if self.list_unsubscribe is not None:
            for uri in self.list_unsubscribe.split(","):
                if not _UNSUBSCRIBE_URI.fullmatch(uri.strip().strip("<>")):
                    raise ValueError(f"list_unsubscribe: {uri.strip()!r} is not a mailto: or https:// URI")

    def _check_server(self) -> None:
        host = self.host.strip()
        if not host or _has_control(host) or any(ch.isspace() for ch in host):
            raise ValueError(f"host: {self.host!r} is not a host name")
        if self.security not in DEFAULT_PORTS:
            raise ValueError(f"security: {self.security!r} must be one of " + ", ".join(map(repr, DEFAULT_PORTS)))
        if self.port is not None and not 1 <= self.port <= 65535:
            raise ValueError(f"port: {self.port} is not a TCP port (1-65535)")
        if not self.smtp_timeout > 0:
            raise ValueError(f"smtp_timeout: {self.smtp_timeout} must be more than 0 seconds")

    def _check_addresses(self) -> None:
        parse_mailbox(self.sender, "sender")
        if not self.to:
            raise ValueError("to: needs at least one address")
        for address in self.to:
            parse_mailbox(address, "to")

    def _check_login(self) -> None:
        if self.password is not None and not self.username:
            raise ValueError("password: set username too (the SMTP login name)")
        if self.username is not None and (not self.username or _has_control(self.username)):
            raise ValueError("username: must be a non-empty name without control characters")

    @staticmethod
    def _check_ca_file(ca_file: str) -> None:
        if not ca_file.strip():
            raise ValueError("ca_file: must be a path to a PEM file")
        # Load it now: a missing or broken CA file is a config mistake, not something to retry for a day.
        try:
            ssl.create_default_context(cafile=os.path.expanduser(ca_file))
        except (OSError, ssl.SSLError) as exc:
            reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or type(exc).__name__
            raise ValueError(f"ca_file: cannot load {ca_file!r} as PEM certificates: {reason}") from exc

    @property
    def effective_port(self) -> int:
        """``port``, or the usual port of ``security``."""
        return self.port if self.port is not None else DEFAULT_PORTS[self.security]

    @property
    def sender_address(self) -> Address:
        """``sender`` parsed (display name and addr-spec)."""
        return parse_mailbox(self.sender, "sender")

    @property
    def recipient_addresses(self) -> list[Address]:
        """``to`` parsed, duplicates (same addr-spec) dropped, order kept."""
        seen: set[str] = set()
        result: list[Address] = []
        for value in self.to:
            address = parse_mailbox(value, "to")
            if address.addr_spec.lower() not in seen:
                seen.add(address.addr_spec.lower())
                result.append(address)
        return result

    @property
    def unsubscribe_header(self) -> str | None:
        """The ``List-Unsubscribe`` header value (``<uri>, <uri>``), or None."""
        if self.list_unsubscribe is None:
            return None
        uris = [uri.strip().strip("<>") for uri in self.list_unsubscribe.split(",")]
        return ", ".join(f"<{uri}>" for uri in uris)
