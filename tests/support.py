"""Test support: a real pitwire server on 127.0.0.1 port 0, and scripted sources and data."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI

from pitwire.server.app import create_app, serve
from pitwire.store.base import Store
from pitwire.store.memory import MemoryStore

FIXTURES = Path(
    os.environ.get("PITWIRE_FIXTURES")
    or Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
)
"""Real third-party captures, read in place (``../shared/fixtures`` from the repo root)."""
IN_CI = os.environ.get("CI") == "true"


def fixture(relative: str) -> Path:
    """The fixture file ``relative`` to FIXTURES; missing, it skips the test (fails in CI)."""
    path = FIXTURES / relative
    if not path.is_file():
        message = f"fixture {path} is missing (set PITWIRE_FIXTURES to the fixtures folder)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return path


@dataclass
class RunningServer:
    url: str
    app: FastAPI
    store: Store

    @property
    def ws(self) -> str:
        return "ws" + self.url[4:]


@contextlib.asynccontextmanager
async def running_server(
    store: Store | None = None, **options: object
) -> AsyncIterator[RunningServer]:
    """Start the app on 127.0.0.1:0; stop it (flushing persistence) on exit."""
    the_store = store if store is not None else MemoryStore()
    app = create_app(the_store, **options)  # type: ignore[arg-type]
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, "127.0.0.1", 0, on_ready=ready.set_result))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        await task
    try:
        yield RunningServer(ready.result(), app, the_store)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def car_channels():  # type: ignore[no-untyped-def]
    """A small car schema: speed, rpm, gear, lap and packet_id."""
    from pitwire.model.channels import STANDARD, Channel, ChannelSet

    return ChannelSet(
        [
            *STANDARD.select(["speed", "rpm", "gear", "lap"]).values(),
            Channel(name="packet_id", dtype="f8", lo=0),
        ]
    )


def car_batch(start: int, n: int, *, lap: int = 0, t0_ns: int = 1_700_000_000_000_000_000):  # type: ignore[no-untyped-def]
    """Frames start .. start+n-1 of a made-up car at 60 Hz (values derived from the index)."""
    import numpy as np

    from pitwire.model.frames import FrameBatch

    i = np.arange(start, start + n)
    return FrameBatch(
        t0_ns + i * 16_666_667,
        {
            "speed": (100 + (i % 1000) * 0.25).astype(np.float32),
            "rpm": (5000 + (i % 3000)).astype(np.float32),
            "gear": (1 + i % 6).astype(np.float32),
            "lap": np.full(n, lap, np.float32),
            "packet_id": i.astype(np.float64),
        },
    )


class ScriptedSource:
    """A Source that yields given (stream, batch) items, optionally ``interval`` s apart."""

    def __init__(self, items, *, cars: int = 1, interval: float = 0.0):  # type: ignore[no-untyped-def]
        from pitwire.model.records import StreamInfo
        from pitwire.sources.base import SourceInfo

        self.items = items
        self.interval = interval
        self.info = SourceInfo(
            source="scripted",
            track="test-track",
            streams=[
                StreamInfo(
                    stream_id=f"car-{k + 1}",
                    driver=f"Driver {k + 1}",
                    channels=list(car_channels().values()),
                )
                for k in range(cars)
            ],
        )

    async def _gen(self):  # type: ignore[no-untyped-def]
        for item in self.items:
            yield item
            await asyncio.sleep(self.interval)

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self._gen()
