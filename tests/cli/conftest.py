"""Fixtures for the command tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def live_server():  # type: ignore[no-untyped-def]
    """A real server (in-memory store) on 127.0.0.1 port 0, run in a thread of its own so
    that commands can run their own event loop; yields it and a function that runs a
    coroutine on its loop."""
    import asyncio
    import threading

    from support import running_server

    loop = asyncio.new_event_loop()
    holder: dict[str, object] = {}
    ready = threading.Event()

    async def main() -> None:
        holder["stop"] = stop = asyncio.Event()
        async with running_server() as srv:
            holder["srv"] = srv
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert ready.wait(10), "the server did not start"

    def on_server_loop(coro):  # type: ignore[no-untyped-def]
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    yield holder["srv"], on_server_loop
    loop.call_soon_threadsafe(holder["stop"].set)  # type: ignore[attr-defined]
    thread.join(10)
    loop.close()
