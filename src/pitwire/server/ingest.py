"""Ingest: agents' binary WebSocket (``/ws/ingest``) and the original JSON ``POST /ingest``.

Both feed ``Ingestor.ingest``, which drops frames already seen (re-sends after a reconnect),
publishes to the hub and hands frames to persistence, in that order, without awaiting.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Annotated

import msgspec
import numpy as np
from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse

from pitwire.model.channels import STANDARD, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import ID_PATTERN, SessionId, StreamId
from pitwire.model.manifest import load_builtin
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol.peer import (
    CloseRequested,
    DataReceived,
    IngestPeer,
    StatusReceived,
    StreamsAdvertised,
)
from pitwire.server.hub import Hub
from pitwire.server.persist import Persistence
from pitwire.server.stats import ServerStats
from pitwire.store.base import Store, StoreError

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
    ) -> int:
        """Make the session and stream known to store and hub; return the stored high-water
        seq (what the agent need not send again; -1 for nothing). Frames still buffered for
        the stream are written first, so the answer is where a new agent must continue."""
        sid, st = SessionId(session), StreamId(stream)
        try:
            existing = await self.store.get_session(sid)
            info = existing.info
            if (track and info.track != track) or (source and info.source != source):
                info.track, info.source = track or info.track, source or info.source
                await self.store.put_session(info)
        except KeyError:
            await self.store.put_session(
                SessionInfo(
                    session_id=session,
                    track=track,
                    source=source,
                    started_ns=started_ns or time.time_ns(),
                )
            )
        await self.store.put_stream(
            sid,
            StreamInfo(stream_id=stream, driver=driver, car=car, channels=list(channels.values())),
        )
        self.hub.add_stream(
            session, stream, channels, driver=driver, car=car, track=track, source=source
        )
        self._known.add((session, stream))
        await self.persistence.flush_stream(session, stream)
        stored = await self.store.stored_seqs(session_id=sid, stream_id=st)
        stored = -1 if stored is None else stored
        self._seen[(session, stream)] = max(self._seen.get((session, stream), -1), stored)
        return stored

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

    def put(self, items: list[str | bytes]) -> None:
        if items:
            self.items.extend(items)
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


def router(ingestor: Ingestor, *, max_body: int = DEFAULT_MAX_BODY) -> APIRouter:
    r = APIRouter()
    seed = load_builtin("seed")
    cset = seed.channels.merged([STANDARD["lap"]])

    @r.websocket("/ws/ingest")
    async def ws_ingest(ws: WebSocket) -> None:
        offered = ws.scope.get("subprotocols", [])
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        peer = IngestPeer()
        outbox = _Outbox(ws)
        sender = asyncio.create_task(outbox.run())
        listening: list[tuple[str, str]] = []

        def on_ack(stream: str, seq: int) -> None:
            peer.ack(stream, seq)
            outbox.put(peer.outgoing())

        try:
            while True:
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
                            ingestor.ingest(
                                peer.session or "", ev.stream, ev.seq, ev.batch, recv_ns
                            )
                        case StreamsAdvertised():
                            if not listening:
                                ingestor.live[ev.session] += 1
                            for desc, cset in ev.streams.values():
                                stored = await ingestor.register(
                                    ev.session,
                                    desc.stream,
                                    cset,
                                    driver=desc.driver,
                                    car=desc.car,
                                    track=ev.track,
                                    source=ev.source,
                                    started_ns=ev.started_ns,
                                )
                                if (ev.session, desc.stream) not in listening:
                                    ingestor.listen(ev.session, desc.stream, on_ack)
                                    listening.append((ev.session, desc.stream))
                                peer.ack(desc.stream, stored)
                        case StatusReceived():
                            log.info("agent status: %s", ev.status.message)
                        case CloseRequested():
                            for item in peer.outgoing():
                                if isinstance(item, str):
                                    await ws.send_text(item)
                            await ws.close(ev.code, ev.reason)
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
            log.warning("ingest: store unavailable while registering streams: %s", exc)
            await ws.close(1011, "store unavailable, retry later")
        finally:
            sender.cancel()
            for session, stream in listening:
                ingestor.unlisten(session, stream, on_ack)
            if listening:
                ingestor.live[listening[0][0]] -= 1

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
