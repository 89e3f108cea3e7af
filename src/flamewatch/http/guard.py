"""Who may ask the HTTP face what: the Host check, the bearer token and the guard on ``POST /-/reload``.

* **Host** (against DNS rebinding: a page on ``evil.example`` whose name is pointed at 127.0.0.1 would
  otherwise read ``/api`` and ``/metrics`` as a same-origin page): only loopback names, the host the face
  listens on and ``[http] allowed_hosts`` are answered; other names get ``421``. The two health checks
  answer any Host: a probe may know the machine by any name, and they tell nothing worth stealing.
* **Token**: with ``[http] token``, every data endpoint needs ``Authorization: Bearer <token>``. The page
  shell (``/`` without the header: the page without data) and its static files need none, so a browser can
  load ``/#token=...``; the page's script takes the token from the address's fragment (which never
  leaves the browser) and sends it as the header on every request for data.
* **Reload** must come from a script of the same origin or from a tool: a cross-site request (by
  ``Sec-Fetch-Site`` or ``Origin``) is refused, and so is a body that is not ``application/json``, which a
  plain HTML form cannot send (and a cross-site script cannot send without a CORS preflight we never allow).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

__all__ = ["AUTHORIZED", "FEED_PREFIX", "LOOPBACK_NAMES", "OPEN_PATHS", "allowed_host_set", "host_name",
           "middlewares"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

#: Paths anyone may ask, token or not, under any Host: a load balancer or Alertmanager probe has no token.
OPEN_PATHS = frozenset({"/-/healthy", "/-/ready"})
#: Paths served without the token, so a browser can load the page before its script adds the header.
SHELL_PATHS = frozenset({"/", "/static/page.js", "/static/style.css"})
#: Feeds are not behind the token: a feed reader sends no headers, so each feed checks its own token, given
#: in its URL (:mod:`.feeds`).
FEED_PREFIX = "/feeds/"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
#: Set on a request that carried the right token (or needed none): ``/`` draws its data only then.
AUTHORIZED: web.RequestKey[bool] = web.RequestKey("authorized", bool)

_WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def host_name(value: str) -> str:
    """The host part of a ``Host`` header or URL netloc, lower case, without port, brackets or final dot."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:].partition("]")[0]
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def allowed_host_set(listen_host: str | None, extra: Iterable[str] = ()) -> frozenset[str] | None:
    """The Host names answered: loopback, the listen host (unless a wildcard) and ``extra``; None when
    ``extra`` holds ``"*"`` (any Host)."""
    names = {host_name(name) for name in extra}
    if "*" in names:
        return None
    if listen_host is not None and listen_host not in _WILDCARDS:
        names.add(host_name(f"[{listen_host}]" if ":" in listen_host else listen_host))
    return frozenset(names | LOOPBACK_NAMES)


def _cross_site(request: web.Request) -> str | None:
    """Why a state-changing request looks cross-site, or None when it does not."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"a {site} request"
    origin = request.headers.get("Origin")
    if origin is not None:
        parts = urlsplit(origin)
        if origin == "null" or parts.netloc.lower() != request.host.lower():
            return "a request from another origin"
    if request.content_type != "application/json":
        return "send it with Content-Type: application/json"
    return None


def middlewares(token: str | None, hosts: frozenset[str] | None) -> list[Any]:
    """The guard middlewares, in order: Host, token, reload."""
    expected = f"Bearer {token}".encode() if token else None

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        if hosts is not None and request.path not in OPEN_PATHS and host_name(request.host) not in hosts:
            return web.Response(status=421, text="this server does not answer to that Host name: "
                                                 "add it to [http] allowed_hosts\n")
        return await handler(request)

    @web.middleware
    async def check_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.headers.get("Authorization", "").encode()
        request[AUTHORIZED] = expected is None or hmac.compare_digest(given, expected)
        if not request[AUTHORIZED] and request.path not in OPEN_PATHS | SHELL_PATHS \
                and not request.path.startswith(FEED_PREFIX):
            return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="flamewatch"'})
        return await handler(request)

    @web.middleware
    async def check_reload(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "POST" and (why := _cross_site(request)) is not None:
            return web.json_response({"ok": False, "error": f"reload refused: {why}"}, status=403)
        return await handler(request)

    return [check_host, check_token, check_reload]
