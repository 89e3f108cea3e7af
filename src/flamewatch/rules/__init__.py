"""Rules turn a story's counts into threshold events with stable keys.

Every rule, built-in or third-party, is a :class:`Rule` subclass offered by a plugin through the
``flamewatch_rule_types`` hook; its ``Options`` fields are its keys in the ``[rules]`` table. The built-in
rules live one per module (``comments``, ``points``, ``velocity``, ``keywords``) and are loaded as plugins
from :data:`flamewatch.plugins.DEFAULT_PLUGINS`, exactly as a third-party rule would be (so this package
does not import them). :class:`RuleEngine` runs the configured rules for the monitor.
"""

from .base import Evaluation, ItemContext, ItemMatch, NoRuleOptions, Rule, RuleContext, comments_per_hour
from .engine import SHOWN_VELOCITY_WINDOW, RuleEngine

__all__ = [
    "SHOWN_VELOCITY_WINDOW",
    "Evaluation",
    "ItemContext",
    "ItemMatch",
    "NoRuleOptions",
    "Rule",
    "RuleContext",
    "RuleEngine",
    "comments_per_hour",
]
