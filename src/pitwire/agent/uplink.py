"""Uplinks: how the agent's frames reach the server.

``WsUplink`` speaks protocol v1 over ``/ws/ingest`` through an ``AgentPeer`` (which numbers
frames and keeps them until acked), reconnecting with backoff; after a reconnect the peer
re-sends everything not yet acked. ``HttpUplink`` posts the original JSON shape to
``/ingest`` (no acks: a 200 is the receipt). Neither ever blocks the source: producers only
queue.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from pitwire.model.frames import FrameBatch
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol.compat import compat_message
from pitwire.protocol.peer import AgentPeer, StatusReceived

log = logging.getLogger("pitwire.agent")


class UplinkError(Exception):
    """The server URL is unusable (not a retryable network failure)."""


class WsUplink:
    def __init__(self, url: str, peer: AgentPeer, *, backoff_max: float = 5.0) -> None:
        url = url.strip() if "://" in url else "ws://" + url.strip()  # host:port means ws://
        base = url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        self.url = base if base.endswith("/ws/ingest") else base + "/ws/ingest"
        self.peer = peer
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self.connects = 0

    def submit(self, stream: str, batch: FrameBatch) -> None:
        """Number and queue a batch; it goes out as soon as the socket takes it."""
        self.peer.send_batch(stream, batch)
        self._wake.set()

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                async with connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=None,
                    open_timeout=5,
                    max_size=16 * 1024 * 1024,
                ) as ws:
                    delay = 0.2
                    self.connects += 1
                    if self.connects > 1:
                        log.info(
                            "uplink reconnected; re-sending %d unacked frames",
                            self.peer.unacked_frames,
                        )
                    self.peer.connection_made()
                    self.connected.set()
                    await self._pump(ws)
            except InvalidURI as exc:
                raise UplinkError(f"bad server URL {self.url!r}: {exc}") from None
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                self.connected.clear()
                self.peer.connection_lost()
                log.warning(
                    "uplink to %s unavailable (%s); retrying in %.1f s",
                    self.url,
                    exc or type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay * (1 + random.random() / 4))
                delay = min(delay * 2, self.backoff_max)

    async def _pump(self, ws: ClientConnection) -> None:
        closed = asyncio.Event()

        async def reader() -> None:
            try:
                async for msg in ws:
                    self.peer.receive_text(msg)
                    for ev in self.peer.events():
                        if isinstance(ev, StatusReceived):
                            log.warning("server: %s (%s)", ev.status.message, ev.status.code)
                    self._wake.set()
            finally:
                closed.set()
                self._wake.set()

        task = asyncio.create_task(reader())
        try:
            while True:
                for item in self.peer.outgoing():
                    await ws.send(item)
                if closed.is_set():
                    await task  # re-raises ConnectionClosed
                    raise ConnectionClosed(None, None)
                self._wake.clear()
                await self._wake.wait()
        finally:
            task.cancel()


class HttpUplink:
    """POST batches to ``/ingest`` in the original JSON shape; retries until accepted."""

    def __init__(
        self, url: str, session: str, *, max_pending: int = 100_000, backoff_max: float = 5.0
    ) -> None:
        url = url.strip() if "://" in url else "http://" + url.strip()
        self.base = url.replace("ws://", "http://").replace("wss://", "https://").rstrip("/")
        self.session = session
        self.max_pending = max_pending
        self.backoff_max = backoff_max
        self._queue: deque[tuple[str, FrameBatch]] = deque()
        self._wake = asyncio.Event()
        self.dropped = 0
        self.sent_frames = 0
        self.connected = asyncio.Event()
        self._encoder = msgspec.json.Encoder()

    def submit(self, stream: str, batch: FrameBatch) -> None:
        self._queue.append((stream, batch))
        while len(self._queue) > self.max_pending:
            self.dropped += self._queue.popleft()[1].n
        self._wake.set()

    async def run(self) -> None:
        delay = 0.2
        async with httpx.AsyncClient(base_url=self.base, timeout=10) as client:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._queue:
                    stream, batch = self._queue[0]
                    msg = compat_message(self.session, 0, batch)
                    try:
                        resp = await client.post(
                            "/ingest",
                            params={
                                "session_id": self.session,
                                "lap": str(msg["lap"]),
                                "stream": stream,
                            },
                            content=self._encoder.encode(msg["data"]),
                            headers={"content-type": "application/json"},
                        )
                    except httpx.HTTPError as exc:
                        self.connected.clear()
                        log.warning("POST /ingest failed (%s); retrying in %.1f s", exc, delay)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.backoff_max)
                        continue
                    if resp.status_code >= 500:
                        log.warning(
                            "server answered %d; retrying in %.1f s", resp.status_code, delay
                        )
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, self.backoff_max)
                        continue
                    self._queue.popleft()
                    delay = 0.2
                    if resp.status_code != 200:
                        log.error("server rejected a batch of %s: %s", stream, resp.text)
                        continue
                    self.connected.set()
                    self.sent_frames += batch.n
