"""Where the HTTP face listens: ``"host:port"`` parsed and checked, with the loopback rule.

It belongs to the config (``[http] listen`` is checked when the file is read), below the HTTP face
that uses it, so the config never imports upward.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback", "listen_problem", "parse_listen"]


def parse_listen(text: str) -> tuple[str, int]:
    """``"127.0.0.1:8642"``, ``"[::1]:8642"``, ``"localhost:0"`` -> (host, port); ValueError saying why."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f'expected "host:port" (e.g. "127.0.0.1:8642"), got {text!r}')
    port = int(port_text)
    if port > 65535:
        raise ValueError(f"port {port} is out of range (0-65535)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise ValueError(f'give the host to listen on (e.g. "0.0.0.0:{port}" for every interface), got {text!r}')
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def listen_problem(listen: str, has_token: bool) -> str | None:
    """Why ``listen`` cannot be used (bad syntax; beyond loopback without a token), or None when fine."""
    if not listen:
        return None
    try:
        host, _ = parse_listen(listen)
    except ValueError as exc:
        return str(exc)
    if not is_loopback(host) and not has_token:
        return (f"listening on {host} (beyond loopback) needs a bearer token: "
                'set [http] token = { env = "FLAMEWATCH_HTTP_TOKEN" }')
    return None
