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
    problems = [str(at.key(key).error(f"unknown key (known keys here: {', '.join(sorted(owner)) or 'none'})"))
                for key in sorted(set(config.rules) - set(owner))]
    rules = []
    for rule_type in rule_types:  # every rule's mistakes, not only the first rule's
        mine = {key: value for key, value in config.rules.items() if owner.get(key) is rule_type}
        try:
            values, _ = read_fields(rule_type.Options, mine, at, missing_note=f"required by rule {rule_type.name!r}")
            options = build(rule_type.Options, values, at)
            rules.append(rule_type(options))
        except ConfigError as exc:
            problems += exc.problems
        except Exception as exc:  # plugin code may raise anything; still one line
            problems.append(str(at.error(f"rule {rule_type.name!r} failed to start ({type(exc).__name__}: {exc})")))
    if problems:
        raise ConfigError.of(problems)
    return rules
