"""The app factory: wires store, hub, persistence, ingest, live viewers, REST and the
dashboard into one FastAPI app, and runs it on uvicorn (uvloop, httptools, no deflate)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pitwire import __version__
from pitwire.server import ingest, live, rest, spool
from pitwire.server.hub import Hub
from pitwire.server.persist import Persistence
from pitwire.server.replay import Replays
from pitwire.server.stats import ServerStats
from pitwire.server.wsdirect import PitwireWebSocketProtocol
from pitwire.store import open_store
from pitwire.store.base import Store, StoreUnavailable

log = logging.getLogger("pitwire.server")

NOT_BUILT = """<!doctype html><title>pitwire</title>
<body style="font-family:sans-serif;background:#111;color:#eee;padding:2em">
<h1>pitwire</h1><p>The dashboard is not built. Run <code>make demo</code> (or
<code>make web</code>) from the repository, then reload. The API is at <a href="/docs">/docs</a>.
</p></body>"""


def dashboard_dir() -> Path | None:
    """The built dashboard inside the package, if it was built."""
    path = Path(str(resources.files("pitwire"))) / "web" / "dist"
    return path if (path / "index.html").is_file() else None


def create_app(
    store: Store | str,
    *,
    lag_limit: float = 10.0,
    max_body: int = ingest.DEFAULT_MAX_BODY,
    chunk_frames: int = 1000,
    chunk_age: float = 1.0,
    spool_dir: str | os.PathLike[str] | None = "auto",
    spool_max: int = spool.DEFAULT_MAX_BYTES,
    on_shutdown: Callable[[], None] | None = None,
    replay_cache: int = 256 << 20,
    max_delay: float = 600.0,
) -> FastAPI:
    """Build the server app. ``store`` is a Store or a URL (``sqlite:///data/pitwire.db``).

    spool_dir: where frames wait on disk while the store is unavailable: a directory;
    ``"auto"`` for ``spool.default_dir`` of a store URL (no spool for a Store object or
    ``memory://``); None for no spool (frames wait in memory). Locked here, so that a
    directory in use by another server raises SpoolError at once; removed again if this
    created it and the server does not start. At start, the spool takes over other spool
    folders holding frames for the same store (``spool.adopt_strays``).
    spool_max: bound of the spool on disk [bytes]
    replay_cache: bound of the decoded frames replays keep in memory [bytes]
    max_delay: the longest delay delayed-live viewers may ask for [s]
    """
    the_store = open_store(store) if isinstance(store, str) else store
    if spool_dir == "auto":
        spool_dir = spool.default_dir(store) if isinstance(store, str) else None
    the_spool = None
    if spool_dir is not None:
        owner = spool.store_identity(store) if isinstance(store, str) else None
        the_spool = spool.Spool(spool_dir, max_bytes=spool_max, store=owner)
    if the_spool is not None:
        the_spool.lock()
    stats = ServerStats()
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    def call_later(delay: float, fn: Callable[[], None]) -> object:
        return loop_holder["loop"].call_later(delay, fn)

    hub = Hub(call_later)
    persistence = Persistence(
        the_store, max_frames=chunk_frames, max_age=chunk_age, spool=the_spool
    )
    ingestor = ingest.Ingestor(store=the_store, hub=hub, persistence=persistence, stats=stats)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop_holder["loop"] = asyncio.get_running_loop()
        tasks: list[asyncio.Task[None]] = []
        try:
            if the_spool is not None:
                await asyncio.to_thread(spool.adopt_strays, the_spool)
            await persistence.open()
            await the_store.open()
        except (StoreUnavailable, OSError) as exc:
            if not persistence.spooling or the_spool is None:
                await _abandon(persistence)  # nothing to recover: a setup error, fail fast
                app.state.startup_error = exc  # serve() raises it instead of uvicorn's exit
                raise
            # Restarted during an outage (e.g. after a kill), with frames in the spool:
            # serve live and spool meanwhile, and store them once the store opens.
            log.error(
                "store unavailable at start (%s); serving live and spooling frames to %s "
                "until it answers",
                exc,
                the_spool.directory,
            )
            persistence.store_open = False
            tasks.append(asyncio.create_task(_open_later(the_store, persistence)))
        except BaseException as exc:
            await _abandon(persistence)
            app.state.startup_error = exc
            raise
        tasks.append(asyncio.create_task(persistence.run()))
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await _shutdown(persistence)
            await the_store.close()

    app = FastAPI(
        title="pitwire",
        version=__version__,
        description="Real-time motorsport telemetry server. Wire protocol: spec/protocol.md.",
        lifespan=lifespan,
    )
    app.state.hub = hub
    app.state.store = the_store
    app.state.stats = stats
    app.state.persistence = persistence
    app.state.ingestor = ingestor

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse({"error": f"{where}: {first.get('msg', 'invalid request')}"}, 400)

    dist = dashboard_dir()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and dist is not None and wants_page(request):
            # A mistyped dashboard URL: the dashboard's own "no such page" (still a 404).
            return FileResponse(dist / "index.html", status_code=404)
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    replays = Replays(hub=hub, store=the_store, cache_bytes=replay_cache, max_delay=max_delay)
    app.include_router(ingest.router(ingestor, max_body=max_body))
    app.include_router(
        rest.router(
            store=the_store,
            hub=hub,
            ingestor=ingestor,
            persistence=persistence,
            stats=stats,
            replays=replays,
        )
    )
    app.state.replays = replays
    app.include_router(
        live.router(hub=hub, store=the_store, stats=stats, lag_limit=lag_limit, replays=replays)
    )

    _mount_dashboard(app, dist)
    return app


API_PREFIXES = ("/api", "/ws", "/ingest", "/healthz", "/docs", "/redoc", "/openapi", "/assets")
"""Paths whose 404 stays JSON, whatever the client accepts."""


def wants_page(request: Request) -> bool:
    """A browser asking for a page (``Accept: text/html``) outside the API's paths."""
    path = request.url.path
    if any(path == p or path.startswith(p + "/") for p in API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


async def _open_later(store: Store, persistence: Persistence) -> None:
    """Retry opening the store with backoff; once open, persistence drains its spool."""
    delay = 0.5
    while True:
        await asyncio.sleep(delay)
        try:
            await store.open()
        except (StoreUnavailable, OSError) as exc:
            delay = min(delay * 2, 10.0)
            log.warning("store still unavailable (%s); retrying in %.0f s", exc, delay)
            continue
        log.info("store open: storing the spooled frames")
        persistence.store_open = True
        return


async def _abandon(persistence: Persistence) -> None:
    """The server does not start: release the spool, and remove its folder if it was
    created for this start and holds nothing."""
    if persistence.spool is not None:
        await asyncio.to_thread(persistence.spool.abandon)
    await persistence.close()


async def _shutdown(persistence: Persistence) -> None:
    """Make buffered frames durable (stored, else spooled), then store what the spool holds
    while the store answers, within a few seconds; what is left waits for the next start."""
    try:
        await asyncio.wait_for(persistence.flush(force=True), timeout=10)
    except Exception as exc:  # shutting down: report, never hang
        log.warning(
            "could not store %d buffered frames on shutdown: %s",
            persistence.buffered_frames,
            exc,
        )
    if persistence.spooling:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(persistence.drain(), timeout=5)
        if persistence.spooled_frames:
            log.warning(
                "%d frames stay in the spool %s; they are stored at the next start",
                persistence.spooled_frames,
                persistence.spool.directory if persistence.spool else "",
            )
    await persistence.close()


DASHBOARD_ROUTES = (
    "/",
    "/live",
    "/live/{session}",
    "/sessions",
    "/sessions/{session}",
    "/sessions/{session}/replay",
    "/compare",
)
"""The dashboard's own URLs (frontend/src/router.ts): each answers with its index.html, so a
deep link or a reload opens that view."""


def _mount_dashboard(app: FastAPI, dist: Path | None) -> None:
    """Serve the built dashboard: ``/``, its root files and ``/assets``. Not a catch-all mount,
    so that API paths keep their own 404/405 answers."""
    if dist is None:

        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT)

        for route in DASHBOARD_ROUTES:
            app.add_api_route(route, not_built, methods=["GET", "HEAD"], include_in_schema=False)
        return
    index = dist / "index.html"

    async def dashboard() -> FileResponse:
        return FileResponse(index, headers={"cache-control": "no-cache"})

    for route in DASHBOARD_ROUTES:
        app.add_api_route(route, dashboard, methods=["GET", "HEAD"], include_in_schema=False)

    for path in dist.iterdir():
        if path.is_file() and path.name != "index.html":
            app.add_api_route(
                f"/{path.name}",
                lambda p=path: FileResponse(p),
                methods=["GET"],
                include_in_schema=False,
            )
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")


def uvicorn_config(
    app: FastAPI, host: str, port: int, *, log_level: str = "warning"
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop" if sys.platform != "win32" else "auto",  # uvloop has no Windows build
        http="httptools",
        ws=PitwireWebSocketProtocol,
        ws_per_message_deflate=False,
        log_level=log_level,
        lifespan="on",
    )


async def serve(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    on_ready: Callable[[str], Awaitable[None] | None] | None = None,
    log_level: str = "warning",
) -> None:
    """Run until cancelled or signalled. ``on_ready`` gets the base URL (port 0 resolved).

    The socket is bound here, before uvicorn starts, so that a port in use raises OSError
    (for a clear message) instead of uvicorn's logged exit.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit TCP_NODELAY: without it a response written in two
        # parts (head, body) waits for the client's delayed ACK, ~40 ms per request on a
        # kept-alive connection (the event loop does not set it on sockets handed to it).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        await _abandon(app.state.persistence)
        raise
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level))
    # A failed startup (the store cannot be opened) is raised here as what it is, for a
    # one-line message, not logged by uvicorn as a traceback.
    uvicorn_log = logging.getLogger("uvicorn.error")
    level = uvicorn_log.level
    uvicorn_log.setLevel(logging.CRITICAL)

    async def run() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn's exit on a failed startup: raise its cause instead
            error = getattr(app.state, "startup_error", None)
            if isinstance(error, Exception):
                raise error from None
            raise

    task = asyncio.create_task(run())
    try:
        while not server.started:
            if task.done():
                await task  # raises what stopped it
                return
            await asyncio.sleep(0.01)
    finally:
        uvicorn_log.setLevel(level)
        if not server.started:
            sock.close()  # startup failed (uvicorn exits): it never took the socket over
    try:
        real_host, real_port = sock.getsockname()[:2]
        if on_ready is not None:
            result = on_ready(f"http://{real_host}:{real_port}")
            if result is not None:
                await result
        await asyncio.shield(task)
    except asyncio.CancelledError:
        # Cancelled from outside: shut down gracefully (lifespan flushes persistence).
        server.should_exit = True
        await task
        raise
