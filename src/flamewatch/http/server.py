"""The aiohttp application of the HTTP face, served on the daemon's own event loop.

Routes: ``/`` (status page), ``/fragment`` (what the page polls), ``/static/*``, ``/api/stories``,
``/api/events``, ``/api/outbox``, ``/api/cycles``, ``/api/health``, ``/metrics``, ``/-/healthy``,
``/-/ready``, ``POST /-/reload`` and the feeds (``/feeds/<name>.atom`` and ``.json``, :mod:`.feeds`, behind
their own tokens). Who may ask what (Host names, the token, reload) is :mod:`.guard`'s;
how connections are held is :mod:`.transport`'s; a store that fails gets a 503 from :mod:`.storefail`.
Handlers only read (the store, the recorder); nothing here can change what flamewatch does except
``/-/reload``, which calls the callback it was given.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..hookcalls import isolate
from ..errors import ConfigError
from . import api
from .api import Reload, Source
from .feeds import FEEDS, Feeds, add_feed_routes, feeds_of, listing
from .guard import AUTHORIZED, LOOPBACK_NAMES, allowed_host_set, middlewares
from ..config.listen import listen_problem, parse_listen
from .metrics import CONTENT_TYPE
from .page import fragment, page, shell, static_text
from .recorder import StatusRecorder
from .storefail import StoreFailures, store_errors
from .transport import IDLE_TIMEOUT, AcceptErrorFilter, CappedListener, connection_cap

if TYPE_CHECKING:
    from ..app import App
    from ..watch import Watcher

__all__ = ["HttpServer", "make_web_app", "start_http"]

log = logging.getLogger("flamewatch.http")

STATIC_FILES = {"style.css": "text/css", "page.js": "text/javascript"}
SECURITY_HEADERS = {
    # Only our own script and stylesheet; inline SVG needs nothing more.
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

SOURCE: web.AppKey[Source] = web.AppKey("source", Source)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _health_with_leader(source: Source) -> dict[str, Any]:
    """:func:`api.health` plus who leads the store (a lock holder asks the database)."""
    data = api.health(source)
    data["leader"] = await source.leader() if source.leader is not None else None
    return data


async def _everything(source: Source) -> dict[str, Any]:
    data: dict[str, Any] = api.shown({
        "health": await _health_with_leader(source),
        "stories": await api.stories(source),
        "cycles": api.cycles(source),
        "events": await api.events(source),
        "outbox": await api.outbox(source),
    })
    return data


async def _with_feeds(request: web.Request) -> dict[str, Any]:
    """:func:`_everything` and the feeds' names and paths (never their tokens), for the page."""
    data = await _everything(request.app[SOURCE])
    data["feeds"] = listing(request.app.get(FEEDS))
    return data


async def _page(request: web.Request) -> web.Response:
    if not request[AUTHORIZED]:  # the shell: its script fetches the data with the token from #token=
        return web.Response(text=shell(), content_type="text/html", headers={"Cache-Control": "no-store"})
    return web.Response(text=page(await _with_feeds(request)), content_type="text/html",
                        headers={"Cache-Control": "no-store"})


async def _fragment(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    version = source.recorder.version
    if request.query.get("since") == str(version):
        return web.Response(status=204)
    html = fragment(await _with_feeds(request))
    return web.Response(text=html, content_type="text/html", headers={"X-Flamewatch-Version": str(version),
                                                                       "Cache-Control": "no-store"})


async def _static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in STATIC_FILES:
        raise web.HTTPNotFound()
    return web.Response(text=static_text(name), content_type=STATIC_FILES[name])


def _json_route(build: Callable[[Source], Awaitable[Any]]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(api.shown(await build(request.app[SOURCE])), headers={"Cache-Control": "no-store"})

    return handler


async def _sync(value: Any) -> Any:
    return value


async def _metrics(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    metrics = source.recorder.metrics
    if source.watcher is not None:
        metrics.ticks_started(source.watcher.cycles_started, source.watcher.tick_lateness)
    role = source.role()
    metrics.leader.clear()
    metrics.leader.labels(role).set(0 if role == "standby" else 1)
    if (store := source.store()) is not None:
        metrics.outbox(source.instances(), await store.backlog())
        metrics.outbox_states(source.instances(), await store.outbox_counts_by_instance())
    return web.Response(body=metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def _healthy(request: web.Request) -> web.Response:
    return web.Response(text="OK\n")


async def _ready(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    ready, why = source.recorder.ready(source.period(), source.store() is not None)
    return web.Response(text=f"{'OK' if ready else 'not ready'}: {why}\n", status=200 if ready else 503)


async def _reload(request: web.Request) -> web.Response:
    source = request.app[SOURCE]
    if source.reload is None:
        return web.json_response({"ok": False, "error": "reload not available"}, status=503)
    error = await source.reload()
    source.recorder.touch()
    if error is not None:
        return web.json_response({"ok": False, "error": error}, status=400)
    return web.json_response({"ok": True})


def make_web_app(source: Source, *, token: str | None = None,
                 hosts: frozenset[str] | None = LOOPBACK_NAMES, feeds: Feeds | None = None) -> web.Application:
    """The aiohttp application serving ``source`` (``token``: the bearer token required, if any;
    ``hosts``: the Host names answered, None for any; see :mod:`.guard`; ``feeds``: the feeds to serve)."""
    # Innermost, so a request the guard turns away never reads the store, and the 503 gets the headers.
    app = web.Application(middlewares=[_security_headers, *middlewares(token, hosts), store_errors(StoreFailures())])
    app[SOURCE] = source
    if feeds is not None:
        add_feed_routes(app, feeds)
    app.router.add_get("/", _page)
    app.router.add_get("/fragment", _fragment)
    app.router.add_get("/static/{name}", _static)
    app.router.add_get("/api/stories", _json_route(api.stories))
    app.router.add_get("/api/events", _json_route(api.events))
    app.router.add_get("/api/outbox", _json_route(api.outbox))
    app.router.add_get("/api/cycles", _json_route(lambda s: _sync(api.cycles(s))))
    app.router.add_get("/api/health", _json_route(_health_with_leader))
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/-/healthy", _healthy)
    app.router.add_get("/-/ready", _ready)
    app.router.add_post("/-/reload", _reload)
    return app


class HttpServer:
    """The HTTP face listening on ``host:port`` (port 0: any free port; see :attr:`url`).

    ``allowed_hosts``: more Host names to answer besides loopback and ``host`` (``"*"``: any);
    ``idle_timeout`` and ``cap``: see :mod:`.transport`.
    """

    def __init__(self, source: Source, host: str, port: int, *, token: str | None = None,
                 allowed_hosts: tuple[str, ...] = (), idle_timeout: float = IDLE_TIMEOUT,
                 cap: int | None = None, feeds: Feeds | None = None) -> None:
        self.source = source
        self.host = host
        self.port = port
        app = make_web_app(source, token=token, hosts=allowed_host_set(host, allowed_hosts), feeds=feeds)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, keepalive_timeout=idle_timeout)
        self._listener = CappedListener(self._runner, connection_cap() if cap is None else cap)
        self._quiet_accept_errors = AcceptErrorFilter()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    @property
    def refused(self) -> int:
        """How many connections were turned away at the cap so far."""
        return self._listener.refused

    async def start(self) -> None:
        """Listen; raises :class:`ConfigError` (one line) when the address cannot be used."""
        await self._runner.setup()
        try:
            self.port = await self._listener.start(self.host, self.port)
        except OSError as exc:
            await self._runner.cleanup()
            raise ConfigError(f"http.listen: cannot listen on {self.host}:{self.port}: {exc.strerror or exc}") from None
        logging.getLogger("asyncio").addFilter(self._quiet_accept_errors)

    async def stop(self) -> None:
        """Stop listening and finish open requests (idempotent)."""
        self._listener.close()
        await self._runner.cleanup()
        logging.getLogger("asyncio").removeFilter(self._quiet_accept_errors)


async def start_http(
    app: App,
    *,
    listen: str | None = None,
    watcher: Watcher | None = None,
    reload: Reload | None = None,
) -> HttpServer | None:
    """Register a :class:`StatusRecorder` on ``app``'s plugins and serve the HTTP face at ``listen``
    (default: the config's ``[http] listen``); None when that is ``""``. Stop it with :func:`stop_http`."""
    settings = app.config.http
    address = settings.listen if listen is None else listen
    if not address:
        return None
    if (problem := listen_problem(address, settings.token is not None)) is not None:
        raise ConfigError(f"http.listen: {problem}")
    host, port = parse_listen(address)
    recorder = StatusRecorder(clock=app.clock)
    app.plugins.pm.register(recorder, name="flamewatch.http")
    isolate(app.plugins.pm, recorder, "flamewatch.http")  # a bug here must not keep other observers from events
    token = settings.token.reveal() if settings.token is not None else None
    server = HttpServer(Source.of_app(app, recorder, watcher=watcher, reload=reload), host, port, token=token,
                        allowed_hosts=settings.allowed_hosts, feeds=feeds_of(app))
    try:
        await server.start()
    except BaseException:
        app.plugins.pm.unregister(recorder)
        raise
    log.info("status page at %s", server.url)
    return server


async def stop_http(app: App, server: HttpServer | None) -> None:
    """Stop ``server`` (from :func:`start_http`) and take its recorder off ``app``'s plugins."""
    if server is None:
        return
    await server.stop()
    if app.plugins.pm.is_registered(server.source.recorder):
        app.plugins.pm.unregister(server.source.recorder)
