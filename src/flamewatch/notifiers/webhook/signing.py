"""Standard Webhooks signing: secrets, message ids and the three ``webhook-*`` headers.

The scheme (https://www.standardwebhooks.com): the sender signs ``"{id}.{timestamp}.{body}"`` with
HMAC-SHA256 under each key and sends ``webhook-signature: v1,<base64> v1,<base64> ...``. A secret is written
``whsec_<base64 of the key bytes>``. This module is pure (no I/O) so it is easy to test on its own.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Sequence

from flamewatch import ConfigError

SECRET_PREFIX = "whsec_"

#: Header names this plugin owns; user-configured extra headers may not override them.
ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"


class SecretFormatError(ConfigError, ValueError):
    """A configured webhook secret is not ``whsec_<base64>`` (the message never contains the value).

    A config mistake, so a :class:`~flamewatch.ConfigError`; still a ``ValueError`` for callers of
    :func:`parse_secrets` that catch that.
    """


def parse_secrets(value: str) -> list[bytes]:
    """The signing keys in ``value``: one or more ``whsec_<base64>`` secrets separated by spaces.

    Several secrets mean key rotation: every message carries one signature per key, so a receiver that
    knows either the old or the new secret accepts it. The ``whsec_`` prefix is optional (as in the
    reference libraries); base64 padding may be omitted. Raises :class:`SecretFormatError` naming the
    position of a bad secret, never its text.
    """
    parts = value.split()
    if not parts:
        raise SecretFormatError("secret is empty")
    keys: list[bytes] = []
    for position, part in enumerate(parts, start=1):
        encoded = part.removeprefix(SECRET_PREFIX)
        try:
            # validate=True: a typo must not silently decode to a different key.
            key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
        except (binascii.Error, ValueError) as exc:  # binascii's messages describe, never quote, the input
            raise SecretFormatError(
                f"secret #{position} is not valid base64 (expected whsec_<base64 key bytes>)"
            ) from exc
        if not key:
            raise SecretFormatError(f"secret #{position} has an empty key")
        keys.append(key)
    return keys


def sign(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value: ``v1,<base64 HMAC-SHA256>`` per key, space-separated."""
    signed = b"%s.%d.%s" % (msg_id.encode("ascii"), timestamp, body)
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii") for key in keys
    )


def message_id(keys: Iterable[str], *, kind: str = "event") -> str:
    """A ``webhook-id`` derived only from event keys, so every retry of one message carries the same id.

    Event keys may hold arbitrary text (a keyword rule's level), so they are hashed rather than embedded:
    the id is always a short ASCII token that is safe in a header. A digest's id covers all its keys,
    sorted, so the same set of events gives the same id whatever their order.
    """
    material = "\n".join([kind, *sorted(keys)]).encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(material).digest()[:18]
    return "msg_" + base64.urlsafe_b64encode(digest).decode("ascii")


def webhook_headers(keys: Sequence[bytes], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers (no ``webhook-signature`` when there are no keys)."""
    headers = {ID_HEADER: msg_id, TIMESTAMP_HEADER: str(timestamp)}
    if keys:
        headers[SIGNATURE_HEADER] = sign(keys, msg_id, timestamp, body)
    return headers
