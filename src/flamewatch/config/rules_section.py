"""The ``[rules]`` table: each loaded rule type owns the keys its ``Options`` dataclass declares.

The table can only be checked once plugins are loaded (a third-party rule brings its own keys), so
:func:`~flamewatch.config.load_config` keeps it as written and :func:`configure_rules` checks it at the
moment notifier options are checked. Unknown keys are errors listing the keys of every loaded rule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import ConfigError
from .model import Config
from .values import Where, build, field_hints, read_fields

if TYPE_CHECKING:
    from ..rules.base import Rule


def configure_rules(config: Config, rule_types: Sequence[type[Rule]]) -> list[Rule]:
    """One configured instance of every rule type, its options read from ``config.rules`` (ConfigError).

    ``rule_types`` come from :meth:`flamewatch.plugins.Plugins.rule_types`, which already refused two rules
    claiming the same key.
    """
    at = Where(config.source, "rules")
    owner: dict[str, type[Rule]] = {}
    for rule_type in rule_types:
        try:
            field_hints(rule_type.Options)
        except Exception as exc:  # a plugin bug (an unresolvable annotation), not the user's mistake
            raise at.error(
                f"rule {rule_type.name!r} declares Options the config reader cannot use "
                f"({type(exc).__name__}: {exc}); report this to the plugin's author"
            ) from exc
        for f in dataclasses.fields(rule_type.Options):
            owner.setdefault(f.name, rule_type)
    unknown = sorted(set(config.rules) - set(owner))
    if unknown:
        raise at.key(unknown[0]).error(f"unknown key (known keys here: {', '.join(sorted(owner)) or 'none'})")
    rules = []
    for rule_type in rule_types:
        mine = {key: value for key, value in config.rules.items() if owner[key] is rule_type}
        values, _ = read_fields(rule_type.Options, mine, at, missing_note=f"required by rule {rule_type.name!r}")
        try:
            options = build(rule_type.Options, values, at)
            rules.append(rule_type(options))
        except ConfigError:
            raise
        except Exception as exc:  # plugin code may raise anything; still one line
            raise at.error(f"rule {rule_type.name!r} failed to start ({type(exc).__name__}: {exc})") from exc
    return rules
