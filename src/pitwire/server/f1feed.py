"""The F1 replay feed: a converted F1 session served as if live over plain WebSocket JSON.

The original design's simple interface: any WebSocket client connecting to the feed gets, at
``hz``, one JSON text message per tick with every driver's state at the shared clock's
session time (docs/f1.md has the message). One clock for everyone, started with the server;
a client joining late sees the same moment as the others.

Pure core: ``FeedData`` (the session as arrays) and ``FeedData.sample`` (the state at one
time: continuous channels interpolated between the stream's frames, discrete ones held; NaN
→ null) know no sockets or clocks. ``F1Feed`` is the I/O: one ticker encodes each tick once
and hands it to every client's one-message slot; each client's sender sends the newest
message when its socket can take it, so a slow client loses ticks instead of delaying
anyone. At the end of the session every client gets ``{"end": true}`` and a close with code
1000 (clients connecting afterwards too); ``stop`` closes every client with 1001.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo

log = logging.getLogger("pitwire.server.f1feed")

CONTINUOUS = ("speed", "rpm", "throttle", "x", "y", "z")
"""Channels interpolated between frames at the tick time."""
DISCRETE = ("gear", "brake", "drs", "lap")
"""Channels held from the last frame at or before the tick time (sent as integers)."""
TRACK_STREAM = "track"
END_MESSAGE = '{"end":true}'
HOLD_NS = 1_000_000_000
"""How long after its last frame a driver's values are still shown [ns]."""

_encoder = msgspec.json.Encoder()


class _Driver:
    __slots__ = ("colour", "columns", "name", "number", "stream_id", "t_ns", "team")

    def __init__(self, info: StreamInfo, batch: FrameBatch) -> None:
        self.stream_id = info.stream_id
        self.name = info.driver
        self.team = info.car
        self.colour = info.colour
        self.t_ns = batch.t_ns.astype(np.int64)
        self.columns = {
            name: np.asarray(batch.columns[name], dtype=np.float64)
            for name in (*CONTINUOUS, *DISCRETE)
            if name in batch.columns
        }
        numbers = batch.columns.get("car_number")
        found = numbers[np.isfinite(numbers)] if numbers is not None else np.empty(0)
        self.number = str(int(found[0])) if len(found) else ""


class FeedData:
    """A session ready to sample: drivers' frames, the track status changes, the time range.

    started_ns: session time 0 [ns since epoch]; t_first_ns, t_last_ns: first and last frame
    of any driver [ns since epoch]
    """

    def __init__(self, info: SessionInfo, streams: Sequence[tuple[StreamInfo, FrameBatch]]):
        self.info = info
        self.started_ns = info.started_ns
        self.drivers = [
            _Driver(s, b) for s, b in streams if s.stream_id != TRACK_STREAM and b.n > 0
        ]
        if not self.drivers:
            raise ValueError(f"session {info.session_id!r} has no driver frames to replay")
        track = next((b for s, b in streams if s.stream_id == TRACK_STREAM), None)
        self.track_t = np.empty(0, np.int64) if track is None else track.t_ns.astype(np.int64)
        self.track_codes = (
            np.empty(0) if track is None else np.asarray(track.columns["track_status"], float)
        )
        self.t_first_ns = min(int(d.t_ns[0]) for d in self.drivers)
        self.t_last_ns = max(int(d.t_ns[-1]) for d in self.drivers)
        laps = [np.nanmax(d.columns["lap"]) for d in self.drivers if _any_finite(d, "lap")]
        self.total_laps = int(max(laps)) if laps else 0

    @property
    def start_s(self) -> float:
        """Session time of the first frame [s]."""
        return (self.t_first_ns - self.started_ns) / 1e9

    @property
    def end_s(self) -> float:
        """Session time of the last frame [s]."""
        return (self.t_last_ns - self.started_ns) / 1e9

    def sample(self, session_s: float) -> dict[str, Any]:
        """The feed message at session time ``session_s`` [s] (a JSON-ready dict)."""
        t_ns = self.started_ns + round(session_s * 1e9)
        drivers: dict[str, dict[str, Any]] = {}
        leader = -1
        for d in self.drivers:
            values = _sample_driver(d, t_ns)
            if values["lap"] is not None:
                leader = max(leader, values["lap"])
            drivers[d.stream_id] = {
                "number": d.number,
                "name": d.name,
                "team": d.team,
                "colour": d.colour,
                **values,
            }
        i = int(np.searchsorted(self.track_t, t_ns, side="right")) - 1
        status = (
            str(int(self.track_codes[i])) if i >= 0 and math.isfinite(self.track_codes[i]) else None
        )
        lap = None if leader < 0 else min(leader + 1, max(self.total_laps, 1))
        return {
            "t": round(session_s, 3),
            "time": _iso(t_ns),
            "lap": lap,
            "track_status": status,
            "drivers": drivers,
        }


def _any_finite(d: _Driver, name: str) -> bool:
    col = d.columns.get(name)
    return col is not None and bool(np.isfinite(col).any())


def _sample_driver(d: _Driver, t_ns: int) -> dict[str, Any]:
    t = d.t_ns
    n = len(t)
    j = int(np.searchsorted(t, t_ns, side="right"))  # t[j-1] <= t_ns < t[j]
    out: dict[str, Any] = {}
    live = j > 0 and (j < n or t_ns - int(t[-1]) <= HOLD_NS)
    for name in CONTINUOUS:
        col = d.columns.get(name)
        value = math.nan
        if col is not None and live:
            if j < n and j > 0:
                t0, t1 = int(t[j - 1]), int(t[j])
                w = (t_ns - t0) / (t1 - t0)
                value = float(col[j - 1] + (col[j] - col[j - 1]) * w)
            else:
                value = float(col[j - 1])
        out[name] = round(value, 3) if math.isfinite(value) else None
    for name in DISCRETE:
        col = d.columns.get(name)
        held = float(col[j - 1]) if col is not None and live else math.nan
        out[name] = int(held) if math.isfinite(held) else None
    return out


def _iso(t_ns: int) -> str:
    stamp = dt.datetime.fromtimestamp(t_ns / 1e9, tz=dt.UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def encode(message: dict[str, Any]) -> str:
    """The JSON text of a feed message."""
    return _encoder.encode(message).decode()


class FeedClock:
    """Session time as if live: ``start_s`` when started, advancing ``speed`` times real
    time (``now``: a monotonic clock [s])."""

    def __init__(
        self, start_s: float, speed: float = 1.0, now: Callable[[], float] = time.monotonic
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.start_s = start_s
        self.speed = speed
        self._now = now
        self._wall0 = now()

    def session_s(self) -> float:
        return self.start_s + (self._now() - self._wall0) * self.speed


class _Client:
    __slots__ = ("conn", "dropped", "pending", "ready")

    def __init__(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.pending: str | None = None
        self.ready = asyncio.Event()
        self.dropped = 0

    def offer(self, text: str) -> None:
        if self.pending is not None:
            self.dropped += 1  # latest wins: the unsent tick is replaced
        self.pending = text
        self.ready.set()


class F1Feed:
    """The feed server: ``await feed.start()``, ``feed.port``, ``await feed.stop()``
    (or ``async with``). The clock starts with ``start``."""

    def __init__(
        self,
        data: FeedData,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        hz: float = 50.0,
        speed: float = 1.0,
        start_s: float | None = None,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        if not hz > 0:
            raise ValueError("hz must be > 0")
        self.data = data
        self.host = host
        self.port = port
        self.hz = hz
        self.speed = speed
        self.start_s = data.start_s if start_s is None else start_s
        self._now = now
        self.clock: FeedClock | None = None
        self.ended = asyncio.Event()
        self._clients: set[_Client] = set()
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._stopping = False

    async def __aenter__(self) -> F1Feed:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (port 0 picks a free one: see ``port``) and start the clock."""
        self._server = await serve(
            self._handle, self.host, self.port, compression=None, close_timeout=1
        )
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self.clock = FeedClock(self.start_s, self.speed, self._now)
        self._ticker = asyncio.create_task(self._tick())

    async def stop(self) -> None:
        """Close every client with 1001 (going away) and stop listening."""
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        self._stopping = True
        for client in list(self._clients):
            client.ready.set()  # its sender closes it with 1001
        if self._server is not None:
            self._server.close(close_connections=True)  # 1001 to any other connection
            await self._server.wait_closed()
            self._server = None

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        clock = self.clock
        if clock is None:
            raise RuntimeError("the feed was not started")
        period = 1.0 / self.hz
        deadline = loop.time()
        while True:
            session_s = clock.session_s()
            if session_s > self.data.end_s:
                self.ended.set()
                for client in list(self._clients):
                    client.offer(END_MESSAGE)
                return
            text = encode(self.data.sample(session_s))
            for client in list(self._clients):
                client.offer(text)
            deadline += period
            now = loop.time()
            if deadline < now - period:  # fell behind (a stalled loop): skip, do not burst
                deadline = now
            await asyncio.sleep(max(deadline - now, 0.0))

    async def _handle(self, conn: ServerConnection) -> None:
        if self._stopping:
            await conn.close(1001, "server shutting down")
            return
        client = _Client(conn)
        if self.ended.is_set():
            client.offer(END_MESSAGE)
        self._clients.add(client)
        try:
            while True:
                await client.ready.wait()
                client.ready.clear()
                if self._stopping:
                    await conn.close(1001, "server shutting down")
                    return
                text, client.pending = client.pending, None
                if text is None:
                    continue
                await conn.send(text)
                if text == END_MESSAGE:
                    await conn.close(1000, "session ended")
                    return
        except ConnectionClosed:
            return
        finally:
            self._clients.discard(client)
            if client.dropped:
                log.info("client %s missed %d ticks (slow)", conn.remote_address, client.dropped)
