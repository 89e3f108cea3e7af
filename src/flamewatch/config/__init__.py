"""One TOML file, validated up front into typed settings.

* :mod:`.values`: the one validation engine (type hints and ``Annotated`` markers such as ``Duration``);
* :mod:`.model`: the settings dataclasses, where every default is written once;
* :mod:`.load`: finding and reading the file, the ``[[notifiers]]`` tables and their options;
* :mod:`.rules_section`: the ``[rules]`` table, checked against the loaded rule types.
"""

from ..errors import ConfigError
from .load import check_route_rules, find_config_file, load_config, notifier_options, parse_config
from .model import (
    CORE_NOTIFIER_KEYS,
    DEFAULT_NOTIFIERS,
    Config,
    CrawlSettings,
    DeliverySettings,
    HNSettings,
    NotifierSettings,
    PluginSettings,
    StoreSettings,
    WatchSettings,
)
from .rules_section import configure_rules
from .values import (
    Duration,
    HttpUrl,
    Levels,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    TimeOfDay,
    Where,
    parse_duration,
    read_dataclass,
    read_value,
)

__all__ = [
    "CORE_NOTIFIER_KEYS",
    "DEFAULT_NOTIFIERS",
    "Config",
    "ConfigError",
    "CrawlSettings",
    "DeliverySettings",
    "Duration",
    "HNSettings",
    "HttpUrl",
    "Levels",
    "NonNegativeInt",
    "NotifierSettings",
    "PluginSettings",
    "PositiveFloat",
    "PositiveInt",
    "StoreSettings",
    "TimeOfDay",
    "WatchSettings",
    "Where",
    "check_route_rules",
    "configure_rules",
    "find_config_file",
    "load_config",
    "notifier_options",
    "parse_config",
    "parse_duration",
    "read_dataclass",
    "read_value",
]
