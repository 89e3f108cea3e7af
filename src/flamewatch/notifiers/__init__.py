"""The built-in notifiers (console, slack, email, webhook): plugins using only the public API.

Each is loaded by module name from :data:`flamewatch.plugins.DEFAULT_PLUGINS`, as a third-party one would be."""
