"""Uplinks: how the agent's frames reach the server.

``WsUplink`` speaks protocol v1 over ``/ws/ingest`` through an ``AgentPeer`` (which numbers
frames and keeps them until acked, in memory or in the agent's spool), reconnecting with
backoff; after a reconnect the peer re-sends everything not yet acked, part by part while it
reports a ``backlog``. ``HttpUplink`` posts the original JSON shape to
``/ingest`` (no acks: a 200 is the receipt). Neither ever blocks the source: producers only
queue.

``check_server`` validates a server URL before anything starts. URLs are shown through
``store.safe_url``: a password in them is never printed.

What the agent logs of lost frames (``FramesDropped``) and of a server refusing a stream
another agent sends (``stream_taken``, close code 4009) is rate-limited: a long outage with
a small spool, or two agents of the same session, make a line every few seconds at most.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import socket
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from pitwire.model.frames import FrameBatch
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol.compat import compat_message
from pitwire.protocol.peer import (
    CLOSE_STREAM_TAKEN,
    STREAM_TAKEN,
    Acked,
    AgentPeer,
    Event,
    FramesDropped,
    StatusReceived,
)
from pitwire.store import safe_url

log = logging.getLogger("pitwire.agent")


class UplinkError(Exception):
    """The server URL is unusable (not a retryable network failure)."""


SCHEMES = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}


def check_server(url: str) -> None:
    """Raise ValueError, saying what is wrong, unless ``url`` is a usable server URL:
    ws://, wss://, http:// or https:// with a host (and a port 1-65535 if one is given),
    or host:port. The message shows the URL without its password."""
    text = url.strip()
    shown = safe_url(text)
    if not text:
        raise ValueError("the server URL is empty (example: ws://127.0.0.1:8000)")
    scheme, sep, _ = text.partition("://")
    if sep and scheme.lower() not in SCHEMES:
        raise ValueError(
            f"{shown!r}: the scheme {scheme!r} is not supported; "
            "use ws://, wss://, http://, https:// or host:port"
        )
    parts = urlsplit(text if sep else "ws://" + text)
    if not parts.hostname or any(c.isspace() for c in parts.netloc):
        raise ValueError(f"{shown!r} names no host (example: ws://127.0.0.1:8000)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"{shown!r}: the port must be a number from 1 to 65535")
    if port is None and not sep:
        raise ValueError(
            f"{shown!r} has no port: give host:port (e.g. {parts.hostname}:8000) or a URL"
        )


def ingest_url(url: str) -> str:
    """The ``/ws/ingest`` URL of a server given as ws(s)://, http(s):// or host:port."""
    text = url.strip() if "://" in url else "ws://" + url.strip()  # host:port means ws://
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    path = path if path.endswith("/ws/ingest") else path + "/ws/ingest"
    scheme = SCHEMES.get(parts.scheme.lower(), parts.scheme)
    return parts._replace(scheme=scheme, path=path, fragment="").geturl()


class DropLog:
    """Warns of lost frames (``FramesDropped``): per stream the first at once, then at most
    one line per ``every`` [s] summing up the frames lost since; ``total()`` sums up all.

    clock: a monotonic clock [s]
    """

    def __init__(self, every: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.lost = 0
        self._last: dict[str, float] = {}  # stream -> when its last line was logged
        self._since: dict[str, FramesDropped] = {}  # stream -> what was lost since then
        self._total: dict[str, FramesDropped] = {}

    def add(self, ev: FramesDropped) -> None:
        self.lost += ev.n
        self._total[ev.stream] = _merge(self._total.get(ev.stream), ev)
        since = self._since[ev.stream] = _merge(self._since.get(ev.stream), ev)
        now = self.clock()
        if now - self._last.get(ev.stream, -math.inf) >= self.every:
            self._last[ev.stream] = now
            del self._since[ev.stream]
            log.warning(
                "dropped %d frames (%sseq %d..%d) of stream %s: %s; they will show as a gap",
                since.n,
                "provisional " if since.provisional else "",
                since.first,
                since.last,
                since.stream,
                since.reason,
            )

    def total(self, session: str) -> None:
        """Log the frames lost in all, per stream (if any were)."""
        if not self.lost:
            return
        lost = list(self._total.values())
        streams = ", ".join(f"{d.stream} {d.n} (seq {d.first}..{d.last})" for d in lost[:8])
        log.warning(
            "session %s: %d frames in all were dropped before the server acknowledged them "
            "(%s); they show as gaps: %s%s",
            session,
            self.lost,
            lost[0].reason,
            streams,
            f" and {len(lost) - 8} more streams" if len(lost) > 8 else "",
        )


def _merge(a: FramesDropped | None, b: FramesDropped) -> FramesDropped:
    """One report of both (the seqs from the first of either to the last)."""
    if a is None:
        return b
    if a.provisional != b.provisional:  # numberings that cannot be compared: the later one
        return FramesDropped(b.stream, b.first, b.last, a.n + b.n, b.reason, b.provisional)
    first, last = min(a.first, b.first), max(a.last, b.last)
    return FramesDropped(b.stream, first, last, a.n + b.n, b.reason or a.reason, b.provisional)


class TakenLog:
    """Warns, at most once per ``every`` [s], that the server refused a stream another agent
    sends (``stream_taken``); the refusals in between are logged at debug level.

    clock: a monotonic clock [s]
    """

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self.clock = clock
        self.refusals = 0
        self._last = -math.inf

    def refused(self, peer: AgentPeer, message: str, backoff_max: float) -> None:
        """The server refused ``peer``'s connection with ``message``; retries wait up to
        ``backoff_max`` [s]."""
        self.refusals += 1
        now = self.clock()
        level = logging.DEBUG
        if now - self._last >= self.every:
            self._last, level = now, logging.WARNING
        named = [
            s for s in peer.streams if re.search(rf"(?<![\w.:-]){re.escape(s)}(?![\w.:-])", message)
        ]
        what = (
            f"stream {named[0]} of session {peer.session} is"
            if len(named) == 1
            else f"streams {', '.join(named)} of session {peer.session} are"
            if named
            else f"a stream of session {peer.session} is"
        )
        log.log(
            level,
            "%s being sent by another agent: two agents with the same --session? retrying, "
            "up to %.0f s apart (the server may also still hold a dead connection of this "
            "agent); the frames are kept%s",
            what,
            backoff_max,
            "" if named else f" [server: {message}]",
        )


class WsUplink:
    """Streams ``peer``'s frames to the server at ``url`` over /ws/ingest, reconnecting after
    any failure with backoff (0.2 s doubling up to ``backoff_max`` [s]; back to 0.2 s after a
    connection that got an ack). ``run`` until cancelled; then ``finish``."""

    def __init__(self, url: str, peer: AgentPeer, *, backoff_max: float = 5.0) -> None:
        self.url = ingest_url(url)
        self.shown = safe_url(self.url)
        """The URL without its password: what messages show."""
        self.peer = peer
        self.backoff_max = backoff_max
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self.connects = 0
        self.drops = DropLog()
        self.taken = TakenLog()
        self._acked = False  # an ack arrived on the current connection
        self._taken: str | None = None  # the server's stream_taken message on it
        self._finished = False
        self._refused = False  # the last connection was refused (stream_taken)

    def submit(self, stream: str, batch: FrameBatch) -> None:
        """Number and queue a batch; it goes out as soon as the socket takes it."""
        self.peer.send_batch(stream, batch)
        self._dispatch(self.peer.events())
        self._wake.set()

    def finish(self) -> None:
        """The agent is done with this uplink: log the frames lost in all (dropped and never
        acknowledged). Once; call it when ``run`` has ended."""
        if self._finished:
            return
        self._finished = True
        self.peer.settle()
        self._dispatch(self.peer.events())
        self.drops.total(self.peer.session)

    def _dispatch(self, events: list[Event]) -> None:
        for ev in events:
            match ev:
                case FramesDropped():
                    self.drops.add(ev)
                case Acked():
                    self._acked = True
                    if self._refused:
                        self._refused = False
                        log.info("session %s: the server takes its streams now", self.peer.session)
                case StatusReceived(status=status) if status.code == STREAM_TAKEN:
                    self._taken = status.message
                case StatusReceived(status=status):
                    log.warning("server: %s (%s)", status.message, status.code)
                case _:
                    pass

    async def run(self) -> None:
        delay = 0.2
        while True:
            self._acked, self._taken = False, None
            try:
                async with connect(
                    self.url,
                    subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
                    compression=None,
                    open_timeout=5,
                    max_size=16 * 1024 * 1024,
                ) as ws:
                    self.connects += 1
                    if self.connects > 1:
                        log.log(
                            logging.DEBUG if self._refused else logging.INFO,
                            "uplink reconnected; re-sending %d unacked frames",
                            self.peer.unacked_frames,
                        )
                    self.peer.connection_made()
                    self.connected.set()
                    await self._pump(ws)
            except InvalidURI as exc:
                message = str(exc).replace(self.url, self.shown)
                raise UplinkError(f"bad server URL {self.shown!r}: {message}") from None
            except (OSError, ConnectionClosed, InvalidHandshake, TimeoutError) as exc:
                self.connected.clear()
                self.peer.connection_lost()
                self._dispatch(self.peer.events())
                if self._acked:  # the connection worked: a new failure starts over
                    delay = 0.2
                wait = delay * (1 + random.random() / 4)
                rcvd = exc.rcvd if isinstance(exc, ConnectionClosed) else None
                if self._taken is not None or (
                    rcvd is not None and rcvd.code == CLOSE_STREAM_TAKEN
                ):
                    self._refused = True
                    message = self._taken or (rcvd.reason if rcvd is not None else "")
                    self.taken.refused(self.peer, message, self.backoff_max)
                else:
                    log.warning(
                        "uplink to %s unavailable (%s); retrying in %.1f s",
                        self.shown,
                        str(exc).replace(self.url, self.shown) or type(exc).__name__,
                        wait,
                    )
                await asyncio.sleep(wait)
                delay = min(delay * 2, self.backoff_max)

    async def _pump(self, ws: ClientConnection) -> None:
        closed = asyncio.Event()

        async def reader() -> None:
            try:
                async for msg in ws:
                    self.peer.receive_text(msg)
                    self._dispatch(self.peer.events())
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
                if self.peer.backlog:  # re-sending kept frames: the next part, after acks
                    await asyncio.sleep(0)
                    continue
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
        # TCP_NODELAY: httpx writes a request's head and body separately, and with Nagle's
        # algorithm the body waits for the server's delayed ACK (~40 ms per batch).
        transport = httpx.AsyncHTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        async with httpx.AsyncClient(base_url=self.base, timeout=10, transport=transport) as client:
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
                        log.warning(
                            "POST %s/ingest failed (%s); retrying in %.1f s",
                            safe_url(self.base),
                            str(exc).replace(self.base, safe_url(self.base)),
                            delay,
                        )
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
