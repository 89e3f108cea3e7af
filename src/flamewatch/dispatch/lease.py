"""Leases on outbox rows: who may send a row, and for how long.

**The lease invariant.** A row is sent only under a live lease held by the sending dispatcher, and
:meth:`Store.claim_due <flamewatch.store.base.Store.claim_due>` never returns a row under a live lease,
not even to its own holder. A lease starts in the claim's atomic step and ends only in the statement
that records the row's outcome (done, retry, dead, skipped), by an explicit release, or when it lapses.
A delivery starts sending only while at least its attempt timeout is left on its lease, and the attempt
is cut at that timeout, so the lease outlives the send by :data:`CLAIM_MARGIN` for recording the
outcome. Hence, while a row is being sent and until its outcome is committed, no claim (of this pump, of
this process or of another instance) can return it: a row is never sent twice at once by construction,
not by a filter applied after the claim. The dispatcher's in-memory ``inflight`` and ``held`` sets stay
as a second line of defence; a claim that hands back a row they hold is logged as a broken invariant.

The one case a lease cannot cover is a store that cannot record an outcome for longer than the margin:
the send happened, the row is still pending and its lease lapses. This process never sends it again
(``held``) and writes the outcome when the store is back.

Owners are unique for one dispatcher in one process run (``host:pid:random``): two instances on one
host, or a process restarted after ``kill -9``, never share one, so nobody takes back rows whose
earlier send may still be under way. Rows left leased by a dead process are taken when their lease
lapses; on a SQLite store the holder of the file lock releases them at start (the lock proves that
every other sender is gone).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable

from ..store import Delivery

__all__ = ["CLAIM_MARGIN", "claim_owner", "lease_left"]

#: A lease lasts the instance's attempt timeout plus this: the time left to record the outcome once the
#: send has ended. A crashed leader's rows in flight are resent by another instance after that long.
CLAIM_MARGIN = 5.0


def claim_owner() -> str:
    """A new owner name for outbox leases: this host and process, and a random part for this run."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_left(rows: Iterable[Delivery], now: float) -> float:
    """Seconds until the first of ``rows``' leases lapses (0 when one has no lease)."""
    return min((r.claimed_until - now if r.claimed_until is not None else 0.0) for r in rows)
