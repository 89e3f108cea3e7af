"""flamewatch: watch Hacker News threads heat up and alert through notifier plugins.

This module is the public plugin API, and only that: what a notifier or rule plugin imports.

    from flamewatch import hookimpl, Notifier, Event

    class Ntfy(Notifier):
        type_name = "ntfy"
        ...

    @hookimpl
    def flamewatch_notifier_types():
        return [Ntfy]

A rule plugin subclasses :class:`Rule` and returns it from ``flamewatch_rule_types``; ``Options`` fields of
both kinds may use the annotated setting types (``Duration``, ``PositiveInt``, ``Levels``, ``Secret``...).

The public API is this module, :mod:`flamewatch.text` (cleaning untrusted HN text for any channel:
``flatten``, ``safe_link``, ``render_marked``...), :mod:`flamewatch.pacing` (keeping a notifier to its
service's rate limits: :class:`Pacer`, ``shared_pacer``, ``fingerprint``) and, for tests,
:mod:`flamewatch.testing`. Every other module is internal and may change in any release; the built-in
notifiers import nothing else (``lint-imports`` checks it).
"""

import pluggy

from .errors import ConfigError, DeliveryError, FlamewatchError, PermanentDeliveryError
from .config.values import Duration, Levels, NonNegativeInt, PositiveFloat, PositiveInt, TimeOfDay
from .eventkeys import DECLINE_KINDS, EventKey, EventKind, LevelOrder
from .events import EVENT_SCHEMA_VERSION, CycleStats, Event, StorySnapshot, Subject, Wording
from .hn.item import Item
from .notifier import (
    MemoryState,
    NoOptions,
    Notifier,
    NotifierContext,
    PluginState,
    Secret,
    not_timed,
    parse_retry_after,
    raise_for_http_status,
)
from .pacing import Pace, Pacer, shared_pacer
from .rules.base import Evaluation, ItemContext, ItemMatch, Rule, RuleContext, comments_per_hour
from . import pacing, text  # rate limits (``flamewatch.pacing``); cleaning untrusted HN text (``flamewatch.text``)

#: Marks a plugin's hook implementations (``@hookimpl def flamewatch_notifier_types(): ...``).
hookimpl = pluggy.HookimplMarker("flamewatch")

__version__ = "0.2.0"

__all__ = [
    "DECLINE_KINDS",
    "EVENT_SCHEMA_VERSION",
    "ConfigError",
    "CycleStats",
    "DeliveryError",
    "Duration",
    "Evaluation",
    "Event",
    "EventKey",
    "EventKind",
    "FlamewatchError",
    "Item",
    "ItemContext",
    "ItemMatch",
    "LevelOrder",
    "Levels",
    "MemoryState",
    "NoOptions",
    "NonNegativeInt",
    "Notifier",
    "NotifierContext",
    "Pace",
    "Pacer",
    "PermanentDeliveryError",
    "PluginState",
    "PositiveFloat",
    "PositiveInt",
    "Rule",
    "RuleContext",
    "Secret",
    "StorySnapshot",
    "Subject",
    "TimeOfDay",
    "Wording",
    "__version__",
    "comments_per_hour",
    "hookimpl",
    "not_timed",
    "pacing",
    "parse_retry_after",
    "raise_for_http_status",
    "shared_pacer",
    "text",
]
