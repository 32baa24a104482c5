"""Ingest: agents' binary WebSocket (``/ws/ingest``) and the original JSON ``POST /ingest``.

Both feed ``Ingestor.ingest``, which drops frames already seen (re-sends after a reconnect),
publishes to the hub and hands frames to persistence, in that order, without awaiting: live
fan-out never waits for the store, and goes on while it is down (persistence spools).

Backpressure: while more than ``Persistence.max_buffered`` frames wait in memory (neither the
store nor the spool takes them), agents' sockets are not read (TCP pushes back; agents keep
their frames) and ``POST /ingest`` answers 503. An agent's connection is closed with 1011
("retry later") when none of its streams can be registered, or when it sends frames of a
stream that is not registered yet (a synced agent re-sending after a connect while the store
cannot say where the stream stands): the frames are neither placed nor dropped, and the
agent re-sends them after it reconnects.

One agent connection at a time feeds a stream (session, stream): a connection advertising a
stream that another live connection holds (two agents started with the same ``--session``
and the same stream names) gets ``status`` ``stream_taken`` and is closed with 4009
(``CLOSE_STREAM_TAKEN``); it registers nothing. The holder keeps the stream until its
connection ends, however it ends; the agent whose connection was refused may retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Annotated

import msgspec
import numpy as np
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from pitwire.model.channels import STANDARD, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import ID_PATTERN
from pitwire.model.manifest import load_builtin
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol.messages import Status, StreamDesc
from pitwire.protocol.peer import (
    CLOSE_STREAM_TAKEN,
    STREAM_TAKEN,
    CloseRequested,
    DataReceived,
    IngestPeer,
    StatusReceived,
    StreamsAdvertised,
)
from pitwire.server.hub import Hub
from pitwire.server.persist import Persistence, declare_in_store
from pitwire.server.stats import ServerStats
from pitwire.server.wsdirect import DirectWriter
from pitwire.store.base import Store, StoreError, StoreUnavailable

log = logging.getLogger("pitwire.ingest")

SESSION_ID = ID_PATTERN
DEFAULT_MAX_BODY = 4 * 1024 * 1024
"""Largest accepted ``POST /ingest`` body [bytes]; larger gets 413."""


class Ingestor:
    """Live state of ingest: per-stream high-water marks and ack listeners."""

    def __init__(self, *, store: Store, hub: Hub, persistence: Persistence, stats: ServerStats):
        self.store = store
        self.hub = hub
        self.persistence = persistence
        self.stats = stats
        self._seen: dict[tuple[str, str], int] = {}
        self._known: set[tuple[str, str]] = set()
        self._listeners: dict[tuple[str, str], set[Callable[[str, int], None]]] = defaultdict(set)
        self._holders: dict[tuple[str, str], object] = {}  # the connection feeding a stream
        self.live: dict[str, int] = defaultdict(int)  # session -> connected agents
        persistence.on_stored = self._stored

    async def register(
        self,
        session: str,
        stream: str,
        channels: ChannelSet,
        *,
        driver: str = "",
        car: str = "",
        track: str = "",
        source: str = "",
        started_ns: int = 0,
        again: bool = False,
    ) -> int:
        """Make the session and stream known to store and hub; return the seq a new agent
        continues after, which is also an ack of everything up to it (-1 for nothing).

        The answer is the highest seq of the stream stored anywhere (in the store, in the
        spool, or received by this process), so a gap in what is stored stays a gap (the
        frames an agent dropped) instead of being filled by later frames. Frames still
        buffered for the stream are made durable first, so that the answer is not an ack of
        frames that are not; when neither the store nor the spool takes them, the answer is
        what is durable (an agent that sent them re-sends them).

        again: the stream was registered on this connection before (a re-advertise: a driver
        learned): its agent already has its resume answer, so the answer is only an ack of
        what is durable, and nothing is flushed.

        While the store is unavailable, a stream this process knows (registered before, or
        found in the spool) is answered with what is durable of it, stored or spooled, and
        goes on live; a stream it does not know raises StoreUnavailable (the agent retries),
        since only the store could say what it already holds."""
        key = (session, stream)
        session_info = SessionInfo(
            session_id=session,
            track=track,
            source=source,
            started_ns=started_ns or time.time_ns(),
        )
        stream_info = StreamInfo(
            stream_id=stream, driver=driver, car=car, channels=list(channels.values())
        )
        stored: int | None = None
        try:
            if not self.persistence.store_open:
                raise StoreUnavailable("the store is not open yet")
            summary = await declare_in_store(self.store, session_info, stream_info)
            stored = summary.last_seq if summary is not None else None
        except (StoreUnavailable, OSError) as exc:
            self._known_or_raise(session, stream, exc)
        self.persistence.declare(session_info, stream_info)
        self.hub.add_stream(
            session, stream, channels, driver=driver, car=car, track=track, source=source
        )
        self._known.add(key)
        durable = self.persistence.durable_seq(session, stream)
        if again and durable is not None:
            return durable
        seen = self._seen.get(key, -1)
        if self.persistence.buffered_of(session, stream):
            try:
                await self.persistence.flush_stream(session, stream)
            except StoreError as exc:
                log.warning(
                    "%s/%s: %d frames up to seq %d are neither stored nor spooled (%s); "
                    "answering what is durable",
                    session,
                    stream,
                    self.persistence.buffered_of(session, stream),
                    seen,
                    exc,
                )
                seen = -1
            durable = self.persistence.durable_seq(session, stream)
        answer = max(-1 if stored is None else stored, -1 if durable is None else durable, seen)
        self.persistence.note_durable(session, stream, answer)
        self._seen[key] = max(self._seen.get(key, -1), answer)
        return answer

    def _known_or_raise(self, session: str, stream: str, exc: Exception) -> None:
        """The store failed during register: go on if this process knows what is durable of
        the stream, else raise StoreUnavailable."""
        if self.persistence.durable_seq(session, stream) is None:
            raise StoreUnavailable(f"cannot register {session}/{stream}: {exc}") from exc
        log.warning(
            "store unavailable (%s); %s/%s goes on live, its frames are spooled",
            exc,
            session,
            stream,
        )

    def claim(self, session: str, streams: Iterable[str], *, holder: object) -> str | None:
        """Let ``holder`` (one agent connection) feed ``streams`` of ``session``. A stream is
        fed by one holder at a time: when another holds one of them, nothing is claimed and
        that stream is returned; else None."""
        keys = [(session, stream) for stream in streams]
        for key in keys:
            if self._holders.get(key, holder) is not holder:
                return key[1]
        for key in keys:
            self._holders[key] = holder
        return None

    def release(self, holder: object) -> None:
        """``holder``'s connection ended: the streams it held are free for another."""
        for key in [key for key, h in self._holders.items() if h is holder]:
            del self._holders[key]

    def knows(self, session: str, stream: str) -> bool:
        return (session, stream) in self._known

    def next_seq(self, session: str, stream: str) -> int:
        return self._seen.get((session, stream), -1) + 1

    def ingest(self, session: str, stream: str, seq: int, batch: FrameBatch, recv_ns: int) -> int:
        """Publish and persist frames seq .. seq+n-1; returns how many were new."""
        key = (session, stream)
        seen = self._seen.get(key, -1)
        if seq + batch.n - 1 <= seen:
            return 0
        if seq <= seen:
            batch = batch.slice(seen + 1 - seq, batch.n)
            seq = seen + 1
        self._seen[key] = seq + batch.n - 1
        self.stats.ingest_frames += batch.n
        self.hub.publish(session, stream, seq, batch, recv_ns)
        self.persistence.enqueue(session, stream, seq, batch)
        return batch.n

    def listen(self, session: str, stream: str, fn: Callable[[str, int], None]) -> None:
        self._listeners[(session, stream)].add(fn)

    def unlisten(self, session: str, stream: str, fn: Callable[[str, int], None]) -> None:
        self._listeners[(session, stream)].discard(fn)

    def _stored(self, session: str, stream: str, seq: int) -> None:
        for fn in self._listeners.get((session, stream), ()):
            fn(stream, seq)


class _Outbox:
    """Serialises sends of one socket from several producers (receive loop, acks)."""

    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.items: list[str | bytes] = []
        self.wake = asyncio.Event()
        self.closing: tuple[int, str] | None = None

    def put(self, items: list[str | bytes]) -> None:
        if items:
            self.items.extend(items)
            self.wake.set()

    def close(self, code: int, reason: str) -> None:
        """Close the socket with ``code`` once what was put before is sent."""
        self.closing = (code, reason)
        self.wake.set()

    async def run(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            items, self.items = self.items, []
            for item in items:
                if isinstance(item, bytes):
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_text(item)
            if self.closing is not None and not self.items:
                await self.ws.close(*self.closing)
                return


def router(ingestor: Ingestor, *, max_body: int = DEFAULT_MAX_BODY) -> APIRouter:
    r = APIRouter()
    seed = load_builtin("seed")
    cset = seed.channels.merged([STANDARD["lap"]])

    persistence = ingestor.persistence

    @r.websocket("/ws/ingest")
    async def ws_ingest(ws: WebSocket) -> None:
        offered = ws.scope.get("subprotocols", [])
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        peer = IngestPeer()
        outbox = _Outbox(ws)
        sender = asyncio.create_task(outbox.run())
        listening: list[tuple[str, str]] = []
        counted: list[str] = []  # the session this agent counts as live in
        # Streams advertised while the store could not say where they resume: not acked (the
        # agent holds their frames back until it is), retried in the background.
        pending: dict[str, tuple[StreamsAdvertised, StreamDesc, ChannelSet]] = {}
        retry: list[asyncio.Task[None]] = []

        def on_ack(stream: str, seq: int) -> None:
            peer.ack(stream, seq)
            outbox.put(peer.outgoing())

        async def close(code: int, reason: str) -> None:
            """Send what waits (a status saying why, last), then close with ``code``."""
            outbox.put(peer.outgoing())
            outbox.close(code, reason[:120])
            await asyncio.wait({sender}, timeout=5)  # an agent that reads nothing: give up

        async def register(ev: StreamsAdvertised, desc: StreamDesc, cset: ChannelSet) -> None:
            key = (ev.session, desc.stream)
            try:
                stored = await ingestor.register(
                    ev.session,
                    desc.stream,
                    cset,
                    driver=desc.driver,
                    car=desc.car,
                    track=ev.track,
                    source=ev.source,
                    started_ns=ev.started_ns,
                    again=key in listening,
                )
            except StoreUnavailable:
                pending[desc.stream] = (ev, desc, cset)
                return
            pending.pop(desc.stream, None)
            if key not in listening:
                ingestor.listen(ev.session, desc.stream, on_ack)
                listening.append(key)
            peer.ack(desc.stream, stored)

        async def retry_pending() -> None:
            delay = 0.5
            while pending:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                for ev, desc, cset in list(pending.values()):
                    await register(ev, desc, cset)
                outbox.put(peer.outgoing())

        try:
            while True:
                if persistence.memory_full and not await _room_for(ws, persistence):
                    return
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                recv_ns = time.time_ns()
                if (data := msg.get("bytes")) is not None:
                    ingestor.stats.ingest_messages += 1
                    peer.receive_bytes(data)
                elif (text := msg.get("text")) is not None:
                    peer.receive_text(text)
                for ev in peer.events():
                    match ev:
                        case DataReceived():
                            if (peer.session or "", ev.stream) not in listening:
                                # A synced agent re-sending a stream not registered yet: its
                                # frames cannot be placed (nor dropped: later ones would be
                                # acked past them). The agent reconnects and re-sends them.
                                raise StoreUnavailable(f"{ev.stream} is not registered yet")
                            ingestor.ingest(
                                peer.session or "", ev.stream, ev.seq, ev.batch, recv_ns
                            )
                        case StreamsAdvertised():
                            names = [desc.stream for desc, _ in ev.streams.values()]
                            taken = ingestor.claim(ev.session, names, holder=peer)
                            if taken is not None:
                                peer.send(_stream_taken(session=ev.session, stream=taken))
                                await close(CLOSE_STREAM_TAKEN, f"{taken} is sent by another agent")
                                return
                            if not counted:
                                ingestor.live[ev.session] += 1
                                counted.append(ev.session)
                            for desc, cset in ev.streams.values():
                                await register(ev, desc, cset)
                            if pending and not listening:
                                raise StoreUnavailable(f"cannot register {', '.join(pending)}")
                            if pending and not any(not t.done() for t in retry):
                                log.warning(
                                    "ingest: store unavailable; new streams %s wait, the "
                                    "others go on live",
                                    ", ".join(pending),
                                )
                                retry.append(asyncio.create_task(retry_pending()))
                        case StatusReceived():
                            log.info("agent status: %s", ev.status.message)
                        case CloseRequested():
                            await close(ev.code, ev.reason)
                            return
                        case _:
                            pass
                outbox.put(peer.outgoing())
                # Let viewers' writers run between messages: a queue of agent messages would
                # otherwise be processed back to back without yielding to the event loop.
                await asyncio.sleep(0)
        except WebSocketDisconnect:
            return
        except StoreError as exc:
            log.warning("ingest: closing an agent's connection, store unavailable: %s", exc)
            await ws.close(1011, "store unavailable, retry later")
        finally:
            ingestor.release(peer)  # first: whatever ended the connection, free its streams
            if not sender.cancel() and not sender.cancelled():
                sender.exception()  # a send to a socket that closed meanwhile: nothing to say
            for task in retry:
                task.cancel()
            for session, stream in listening:
                ingestor.unlisten(session, stream, on_ack)
            for session in counted:
                ingestor.live[session] -= 1

    @r.post(
        "/ingest",
        summary="Ingest frames in the original JSON shape",
        responses={
            400: {
                "description": "Malformed JSON, wrong types, missing fields, NaN/Inf, "
                "out-of-range values, missing or invalid session_id"
            },
            413: {"description": f"Body larger than the limit ({max_body} bytes by default)"},
        },
    )
    async def http_ingest(request: Request) -> JSONResponse:
        """Body: a JSON array of frames ``{"packetId", "gas", "brake", "fuel", "gear", "rpms",
        "steerAngle", "speedKmh"}``. Query: ``session_id`` (required), ``lap`` (int, default
        0), ``stream`` (default ``car``). Nothing from a rejected request is stored."""
        recv_ns = time.time_ns()
        q = request.query_params
        session = q.get("session_id")
        if not session:
            return _bad("missing query parameter: session_id")
        if not SESSION_ID.match(session):
            return _bad(
                "session_id must be 1-64 characters of letters, digits and ._:- "
                "starting with a letter or digit"
            )
        stream = q.get("stream", "car")
        if not SESSION_ID.match(stream):
            return _bad("stream must be 1-64 characters of letters, digits and ._:-")
        try:
            lap = int(q.get("lap", "0"))
            if lap < 0:
                raise ValueError
        except ValueError:
            return _bad("lap must be a non-negative integer")
        if ingestor.persistence.memory_full:
            return JSONResponse(
                {"error": "store unavailable: too many frames wait in memory; retry later"},
                status_code=503,
            )
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            return _too_large(max_body)
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > max_body:
                return _too_large(max_body)
        try:
            rows = _seed_decoder.decode(body)
        except msgspec.ValidationError as exc:
            return _bad(f"invalid frame: {exc}")
        except msgspec.DecodeError as exc:
            hint = (
                " (NaN and Infinity are not valid JSON numbers)"
                if re.search(rb"\b(NaN|-?Infinity)\b", body)
                else ""
            )
            return _bad(f"malformed JSON: {exc}{hint}")
        if not rows:
            return _bad("the body must be a non-empty JSON array of frames")
        raw = {
            name: np.array([getattr(r, name) for r in rows], np.float64)
            for name in SeedFrame.__struct_fields__
        }
        columns = seed.apply(raw)
        columns["lap"] = np.full(len(rows), lap, np.float32)
        t = np.full(len(rows), recv_ns, np.int64)
        batch = FrameBatch(t, columns)
        try:
            if not ingestor.knows(session, stream):
                await ingestor.register(session, stream, cset, source="http")
        except StoreError as exc:
            return JSONResponse({"error": f"store unavailable: {exc}"}, status_code=503)
        seq = ingestor.next_seq(session, stream)
        ingestor.ingest(session, stream, seq, batch, recv_ns)
        return JSONResponse(
            {
                "accepted": len(rows),
                "session_id": session,
                "stream": stream,
                "first_seq": seq,
                "last_seq": seq + len(rows) - 1,
            }
        )

    return r


async def _room_for(ws: WebSocket, persistence: Persistence) -> bool:
    """Wait, without reading ``ws``, while too many frames wait in memory (neither the store
    nor the spool takes them): TCP pushes back on the agent, which keeps its frames. False
    when the connection was closed meanwhile (the server shutting down)."""
    writer = DirectWriter.of(ws.scope)
    while persistence.memory_full:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(persistence.wait_for_room(), 0.5)
        if writer is not None and not writer.open:
            return False
    return True


def _stream_taken(*, session: str, stream: str) -> Status:
    """The status refusing a connection that advertised a stream another one is sending."""
    message = (
        f"stream {stream} of session {session} is being sent by another agent (two agents "
        "with the same --session?); this connection is refused while that one is live"
    )
    log.warning("ingest: refusing an agent: %s", message)
    return Status(level="error", code=STREAM_TAKEN, message=message)


def _bad(message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=400)


def _too_large(limit: int) -> JSONResponse:
    return JSONResponse(
        {"error": f"body exceeds the limit of {limit} bytes; send smaller batches"}, status_code=413
    )


Unit = Annotated[float, msgspec.Meta(ge=0, le=1)]
NonNeg = Annotated[float, msgspec.Meta(ge=0)]


class SeedFrame(msgspec.Struct, forbid_unknown_fields=False):
    """One frame of the original JSON shape; ranges are enforced on decode."""

    packetId: Annotated[int, msgspec.Meta(ge=0)]
    gas: Unit
    brake: Unit
    fuel: Annotated[float, msgspec.Meta(ge=0, le=1000)]
    gear: Annotated[int, msgspec.Meta(ge=-1, le=12)]
    rpms: Annotated[int, msgspec.Meta(ge=0, le=30000)]
    steerAngle: Annotated[float, msgspec.Meta(ge=-20, le=20)]
    speedKmh: Annotated[float, msgspec.Meta(ge=0, le=600)]


_seed_decoder = msgspec.json.Decoder(list[SeedFrame])
