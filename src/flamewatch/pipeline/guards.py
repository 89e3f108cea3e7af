"""The locks a cycle and live mode's batches share (see :mod:`.live`)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["Guards"]


@dataclass
class Guards:
    """One poll of the stream at a time (its cursor), one counting pass at a time (the counter's trees).

    The monitor keeps one across pipeline rebuilds, so a reload never lets two of either run at once.
    """

    stream: asyncio.Lock = field(default_factory=asyncio.Lock)
    count: asyncio.Lock = field(default_factory=asyncio.Lock)
