"""The daemon's HTTP face: a live status page, ``/api/*`` JSON, ``/metrics`` and health endpoints.

* :mod:`.server`: the aiohttp application and its runner on the daemon's own event loop;
* :mod:`.recorder`: the internal observer plugin remembering recent cycles and events;
* :mod:`.api`: the JSON data; :mod:`.page`: the status page drawn from it; :mod:`.metrics`: Prometheus;
* :mod:`.listen`: ``host:port`` parsing and the loopback rule.

This package's ``__init__`` imports nothing heavy, so the config loader can use :mod:`.listen`.
"""
