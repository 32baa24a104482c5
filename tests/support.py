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


def _fixtures() -> Path:
    if os.environ.get("PITWIRE_FIXTURES"):
        return Path(os.environ["PITWIRE_FIXTURES"])
    root = Path(__file__).resolve().parents[1]
    for folder in root.parents:  # ../shared/fixtures from the repo root, or further up
        if (folder / "shared" / "fixtures").is_dir():
            return folder / "shared" / "fixtures"
    return root.parent / "shared" / "fixtures"


FIXTURES = _fixtures()
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


class TextDecoder:
    """A decoder of test datagrams ``b"<stream> <speed m/s> <gear> [<packet>]"``.

    ``b"new <key>"`` starts a session, ``b"driver <stream> <name>"`` names a driver;
    anything else raises DecodeError. ``greeting`` returns ``hello`` datagrams if given.
    """

    name = "text"

    def __init__(self, hello: bytes | None = None) -> None:
        from pitwire.model.manifest import Manifest

        self.hello = hello
        self.manifest = Manifest.loads(
            """
            [source]
            name = "text"
            [[field]]
            raw = "speed_ms"
            channel = "speed"
            scale = 3.6
            [[field]]
            raw = "gear"
            channel = "gear"
            [[field]]
            raw = "packet"
            channel = "packet_id"
            unit = ""
            dtype = "f8"
            """,
            origin="text.toml",
        )

    def feed(self, data: bytes, recv_ns: int, tag: str = ""):  # type: ignore[no-untyped-def]
        from pitwire.sources.base import DecodeError, Sample, SessionStarted, StreamSeen

        parts = data.decode(errors="replace").split()
        if len(parts) >= 2 and parts[0] == "new":
            return [SessionStarted(parts[1], track="Test Ring")]
        if len(parts) == 3 and parts[0] == "driver":
            return [StreamSeen(parts[1], driver=parts[2])]
        try:
            values = {"speed_ms": float(parts[1]), "gear": float(parts[2])}
            if len(parts) > 3:
                values["packet"] = float(parts[3])
        except (IndexError, ValueError):
            raise DecodeError(f"not a test datagram: {data[:20]!r}") from None
        return [Sample(parts[0], recv_ns, values)]

    def greeting(self) -> list[bytes]:
        return [self.hello] if self.hello else []


class UdpPeer(asyncio.DatagramProtocol):
    """A real UDP socket on 127.0.0.1 that records what it receives."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes, tuple[str, int]]] = []
        self.arrived = asyncio.Event()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    @classmethod
    async def open(cls, port: int = 0) -> UdpPeer:
        peer = cls()
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: peer, local_addr=("127.0.0.1", port)
        )
        peer.transport = transport
        peer.port = transport.get_extra_info("sockname")[1]
        return peer

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.got.append((data, addr))
        self.arrived.set()

    def send(self, data: bytes, port: int) -> None:
        assert self.transport is not None
        self.transport.sendto(data, ("127.0.0.1", port))

    async def wait_for(self, n: int, seconds: float = 5.0) -> None:
        async with asyncio.timeout(seconds):
            while len(self.got) < n:
                self.arrived.clear()
                await self.arrived.wait()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def free_udp_port() -> int:
    """A UDP port that was free a moment ago on 127.0.0.1."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sim_file(path, cars: int = 3, seconds: float = 2.0, session: str = "cli-sim"):  # type: ignore[no-untyped-def]
    """A simulated session file at ``path``: ``cars`` cars for ``seconds``."""
    from pitwire.sources.record import simulate

    simulate(path, cars=cars, seconds=seconds, session=session)
    return path


def nan_lap_file(path, lap_time: float):  # type: ignore[no-untyped-def]
    """A sim file whose car-1 has a lap 1 timed ``lap_time`` and a lap 2 timed 1:02.5."""
    from pitwire.model.records import LapInfo
    from pitwire.sources.record import simulate

    writer = simulate(path, cars=2, seconds=3.0, session="laps", close=False)
    t0 = 1_700_000_000_000_000_000
    writer.add_lap(
        LapInfo(stream_id="car-1", lap=1, t0_ns=t0 + 500_000_000, t1_ns=t0 + 1_500_000_000,
                frames=60, lap_time=lap_time)
    )  # fmt: skip
    writer.add_lap(
        LapInfo(stream_id="car-1", lap=2, t0_ns=t0 + 1_500_000_000, t1_ns=t0 + 2_500_000_000,
                frames=60, lap_time=62.5)
    )  # fmt: skip
    writer.close()
    return path


class TcpProxy:
    """A TCP proxy on 127.0.0.1 (port 0) forwarding every connection to ``host:port``, for
    outage tests against a real server: ``cut()`` aborts every proxied connection and stops
    listening (new connections are refused), ``restore()`` listens on the same port again.

    ``async with TcpProxy("127.0.0.1", 5432) as proxy:`` then connect to ``proxy.port``.
    ``upstream_bytes`` counts what clients sent (to cut in the middle of a transfer).
    """

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.port = 0
        self.upstream_bytes = 0
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._progress = asyncio.Event()

    async def __aenter__(self) -> TcpProxy:
        await self.restore()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cut()

    @property
    def listening(self) -> bool:
        return self._server is not None

    async def wait_upstream(self, nbytes: int) -> None:
        """Return once clients have sent at least ``nbytes`` in all (``upstream_bytes``)."""
        while self.upstream_bytes < nbytes:
            self._progress.clear()
            await self._progress.wait()

    async def restore(self) -> None:
        """Listen (again, on the same port) and forward new connections."""
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Abort every proxied connection (both sides) and refuse new ones."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        links = list(self._links)
        for task in links:
            task.cancel()
        await asyncio.gather(*links, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer, upstream=True)),
            asyncio.create_task(self._pump(up_reader, writer, upstream=False)),
        ]
        self._links.update(pumps)
        for task in pumps:
            task.add_done_callback(self._links.discard)

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream:
                    self.upstream_bytes += len(data)
                    self._progress.set()
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            self._writers.discard(writer)
            writer.transport.abort()


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (nothing listens on it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
