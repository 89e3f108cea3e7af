"""The one interface every step of the alert path has (see :func:`flamewatch.pipeline.build_pipeline`).

A stage is a small object with a ``name`` (what the chain prints) and an async call that takes a batch
and returns it, changed or not. Batches, not single stories or rows: a stage sees everything the step
before it produced, so a stage that wants one store query for a whole cycle (or one outbox transaction
for all of a pump's rows) can have it. This module sits at the bottom of the layers, so the cycle's
stages (:mod:`flamewatch.pipeline`) and the pump's (:mod:`flamewatch.dispatch.pump`) share it.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

__all__ = ["Stage"]

B = TypeVar("B")


class Stage(Protocol[B]):
    """One step: ``await stage(batch)`` returns the batch the next step gets."""

    #: What the chain shows for this step ("collect", "supersede", ...).
    name: str

    async def __call__(self, batch: B, /) -> B: ...
