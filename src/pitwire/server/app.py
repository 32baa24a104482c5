"""The app factory: wires store, hub, persistence, ingest, live viewers, REST and the
dashboard into one FastAPI app, and runs it on uvicorn (uvloop, httptools, no deflate)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from pitwire import __version__
from pitwire.server import ingest, live, rest
from pitwire.server.hub import Hub
from pitwire.server.persist import Persistence
from pitwire.server.stats import ServerStats
from pitwire.server.wsdirect import PitwireWebSocketProtocol
from pitwire.store import open_store
from pitwire.store.base import Store

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
    on_shutdown: Callable[[], None] | None = None,
) -> FastAPI:
    """Build the server app. ``store`` is a Store or a URL (``sqlite:///data/pitwire.db``)."""
    the_store = open_store(store) if isinstance(store, str) else store
    stats = ServerStats()
    loop_holder: dict[str, asyncio.AbstractEventLoop] = {}

    def call_later(delay: float, fn: Callable[[], None]) -> object:
        return loop_holder["loop"].call_later(delay, fn)

    hub = Hub(call_later)
    persistence = Persistence(the_store, max_frames=chunk_frames, max_age=chunk_age)
    ingestor = ingest.Ingestor(store=the_store, hub=hub, persistence=persistence, stats=stats)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        loop_holder["loop"] = asyncio.get_running_loop()
        await the_store.open()
        worker = asyncio.create_task(persistence.run())
        try:
            yield
        finally:
            if on_shutdown is not None:
                on_shutdown()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            try:
                await asyncio.wait_for(persistence.flush(force=True), timeout=10)
            except Exception as exc:  # shutting down: report, never hang
                log.warning(
                    "could not store %d buffered frames on shutdown: %s",
                    persistence.buffered_frames,
                    exc,
                )
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

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, exc.status_code, headers=exc.headers)

    app.include_router(ingest.router(ingestor, max_body=max_body))
    app.include_router(
        rest.router(
            store=the_store, hub=hub, ingestor=ingestor, persistence=persistence, stats=stats
        )
    )
    app.include_router(live.router(hub=hub, store=the_store, stats=stats, lag_limit=lag_limit))

    _mount_dashboard(app, dashboard_dir())
    return app


def _mount_dashboard(app: FastAPI, dist: Path | None) -> None:
    """Serve the built dashboard: ``/``, its root files and ``/assets``. Not a catch-all mount,
    so that API paths keep their own 404/405 answers."""
    if dist is None:

        @app.get("/", include_in_schema=False)
        async def not_built() -> HTMLResponse:
            return HTMLResponse(NOT_BUILT)

        return
    index = dist / "index.html"

    @app.get("/", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(index, headers={"cache-control": "no-cache"})

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
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    server = uvicorn.Server(uvicorn_config(app, host, port, log_level=log_level))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            await task  # raises what stopped it
            return
        await asyncio.sleep(0.01)
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
