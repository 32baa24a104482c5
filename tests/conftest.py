"""Shared fixtures (helpers live in tests/support.py)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from support import IN_CI, RunningServer, running_server


@pytest.fixture(autouse=True)
def _state_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Spools that default to the user's state folder ($XDG_STATE_HOME) go to a temporary
    one: no test writes to the real home folder."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


@pytest.fixture
async def server() -> AsyncIterator[RunningServer]:
    """A real server on 127.0.0.1 port 0 with the in-memory store."""
    async with running_server() as srv:
        yield srv


@pytest.fixture
def web_page_server():  # type: ignore[no-untyped-def]
    """A plain web server on 127.0.0.1 port 0 that answers every GET with 200 and an HTML
    page (not a pitwire server); yields its ws:// URL."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<html><body>It works!</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"ws://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(10)


PG_BASE = os.environ.get("PITWIRE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
"""The PostgreSQL database the tests use (each test in a schema of its own)."""
_pg_down: list[str] = []  # why PG_BASE is unreachable, once known


async def pg_admin() -> asyncpg.Connection:
    """A plain connection to PG_BASE; skips the test when PostgreSQL is unreachable (and
    fails it in CI, where PostgreSQL is part of the machine)."""
    if not _pg_down:
        try:
            return await asyncpg.connect(PG_BASE, timeout=5)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            _pg_down.append(f"{type(exc).__name__}: {exc}")
    message = (
        f"PostgreSQL is unreachable at {PG_BASE} ({_pg_down[0]}); "
        "start it or set PITWIRE_TEST_POSTGRES"
    )
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
async def pg_base() -> str:
    """PG_BASE, once PostgreSQL answered there (else the test skips, or fails in CI)."""
    await (await pg_admin()).close()
    return PG_BASE


@pytest.fixture
async def pg_schema(pg_base: str) -> AsyncIterator[str]:
    """A schema name of its own for one test (created by the store), dropped afterwards."""
    name = f"pitwire_test_{uuid.uuid4().hex[:12]}"
    yield name
    admin = await pg_admin()
    try:
        await admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await admin.close()


@pytest.fixture
def pg_url(pg_base: str, pg_schema: str) -> str:
    """A postgresql:// URL of the test database in a fresh schema."""
    return f"{pg_base}?schema={pg_schema}"
