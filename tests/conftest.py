"""Shared fixtures (helpers live in tests/support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from support import RunningServer, running_server


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
