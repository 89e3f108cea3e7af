"""flamewatch: watch Hacker News threads heat up and alert through notifier plugins.

This module is the public plugin API, and only that: what a notifier plugin imports.

    from flamewatch import hookimpl, Notifier, Event

    class Ntfy(Notifier):
        type_name = "ntfy"
        ...

    @hookimpl
    def flamewatch_notifier_types():
        return [Ntfy]
"""

import pluggy

from .errors import FlamewatchError
from .events import EVENT_SCHEMA_VERSION, CycleStats, Event, StorySnapshot
from .notifier import (
    DeliveryError,
    MemoryState,
    NoOptions,
    Notifier,
    NotifierContext,
    PermanentDeliveryError,
    PluginState,
    Secret,
    parse_retry_after,
    raise_for_http_status,
)

#: Marks a plugin's hook implementations (``@hookimpl def flamewatch_notifier_types(): ...``).
hookimpl = pluggy.HookimplMarker("flamewatch")

__version__ = "0.1.0"

__all__ = [
    "EVENT_SCHEMA_VERSION",
    "CycleStats",
    "DeliveryError",
    "Event",
    "FlamewatchError",
    "MemoryState",
    "NoOptions",
    "Notifier",
    "NotifierContext",
    "PermanentDeliveryError",
    "PluginState",
    "Secret",
    "StorySnapshot",
    "hookimpl",
    "parse_retry_after",
    "raise_for_http_status",
    "__version__",
]
