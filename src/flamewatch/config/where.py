"""Where a config value sits (the file and the key path) and how a user's value is shown in an error."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["Where", "show"]


@dataclass(frozen=True)
class Where:
    """Where a value sits, for error messages: the file and the key path (``rules.velocity[0].level``)."""

    file: str
    path: str = ""

    def key(self, name: str) -> Where:
        """The place of key ``name`` inside this table."""
        return Where(self.file, f"{self.path}.{name}" if self.path else name)

    def index(self, i: int) -> Where:
        """The place of element ``i`` of this list."""
        return Where(self.file, f"{self.path}[{i}]")

    def error(self, message: str) -> ConfigError:
        """A one-line ConfigError about the value here."""
        return ConfigError(f"{self.file}: {self.path}: {message}" if self.path else f"{self.file}: {message}")


def show(value: Any) -> str:
    """A short rendering of a user's value for an error message (tables and lists are not dumped)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
