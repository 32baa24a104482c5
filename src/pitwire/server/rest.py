"""REST: sessions, health and server figures (the slow surface; documented at /docs and in
docs/rest.md).

``GET /api/sessions/{id}`` answers with a strong ``ETag`` (``Cache-Control: no-cache``): a
matching ``If-None-Match`` gets 304 without reading any frames. Its track outline is read
from frames once and kept in a small in-memory cache.

``GET /api/sessions/{id}/frames`` answers a time range of stored frames as JSON, CSV or
binary DATA frames (spec/protocol.md), bounded by ``MAX_SPAN_S`` of session time and
``MAX_VALUES`` values per request. Errors are JSON ``{"error": "..."}`` (the app's shape).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections import OrderedDict
from typing import Any

import msgspec
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from pitwire import __version__
from pitwire.analysis import track
from pitwire.analysis.completeness import ChunkSpan, completeness
from pitwire.model.ids import SessionId, StreamId
from pitwire.server.hub import Hub
from pitwire.server.ingest import Ingestor
from pitwire.server.persist import Persistence
from pitwire.server.ranges import (
    BIN_MEDIA_TYPE,
    MAX_SPAN_S,
    MAX_VALUES,
    FrameQuery,
    QueryError,
    bin_body,
    channel_table,
    csv_pieces,
    json_body,
    session_range,
)
from pitwire.server.replay import Replays
from pitwire.server.stats import ServerStats, rss_bytes
from pitwire.store.base import SessionSummary, Store, StoreError, UnknownSession

LIVE_WINDOW_NS = 5_000_000_000
"""A session is live while an agent is connected or data arrived this recently."""
TRACK_CACHE = 64
"""Track outlines kept in memory (least recently used dropped)."""
DETAIL_VERSION = 2
"""Part of every ETag: bumped when the shape of ``GET /api/sessions/{id}`` changes."""

PALETTE = (
    "#e6194b",  # red
    "#3cb44b",  # green
    "#ffe119",  # yellow
    "#4f8ef7",  # blue
    "#f58231",  # orange
    "#b36bff",  # violet
    "#42d4f4",  # cyan
    "#f032e6",  # magenta
    "#bfef45",  # lime
    "#fabed4",  # pink
    "#2fb8a8",  # teal
    "#dcbeff",  # lavender
    "#c9894a",  # brown
    "#fffac8",  # cream
    "#ff7b7b",  # salmon
    "#aaffc3",  # mint
    "#b8b83a",  # olive
    "#ffd8b1",  # apricot
    "#8e9bff",  # periwinkle
    "#a9a9a9",  # grey
)
"""Colours of streams without their own, by index in the session's stream list: distinct from
each other and readable on the dashboard's dark background (contrast ≥ 3:1 on #111)."""
_HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ETAG_ENC = msgspec.msgpack.Encoder()


def router(
    *,
    store: Store,
    hub: Hub,
    ingestor: Ingestor,
    persistence: Persistence,
    stats: ServerStats,
    replays: Replays,
) -> APIRouter:
    r = APIRouter()
    outlines = TrackCache(store)
    ratios = CompletenessCache(store)

    def is_live(session_id: str) -> bool:
        live = hub.sessions.get(session_id)
        recent = live is not None and time.time_ns() - live.last_data_ns < LIVE_WINDOW_NS
        return ingestor.live.get(session_id, 0) > 0 or recent

    @r.get("/api/sessions", summary="All sessions, newest first")
    async def list_sessions() -> JSONResponse:
        try:
            sessions = await store.list_sessions()
            live = {s.info.session_id for s in sessions if is_live(s.info.session_id)}
            found = await ratios.all(sessions, live)
        except StoreError as exc:
            return _unavailable(exc)
        return JSONResponse(
            [
                session_brief(s, live=s.info.session_id in live, completeness=ratio)
                for s, ratio in zip(sessions, found, strict=True)
            ]
        )

    @r.get(
        "/api/sessions/{session_id}",
        summary="One session: channels, streams (cars) with their colours, laps, time range, "
        "frame counts, track outline and completeness (frames expected vs received per stream "
        "and lap, gaps with their times). ETag: answers 304 to a matching If-None-Match",
        responses={304: {"description": "Not modified"}, 404: {"description": "No such session"}},
    )
    async def get_session(session_id: str, request: Request) -> Response:
        try:
            s = await store.get_session(SessionId(session_id))
            index = await store.chunk_index(SessionId(session_id))
            live = is_live(session_id)
            tag = detail_etag(s, index, live=live)
            headers = {"ETag": tag, "Cache-Control": "no-cache"}
            if etag_matches(request.headers.get("if-none-match"), tag):
                return Response(status_code=304, headers=headers)
            outline = await outlines.get(s, index)
        except UnknownSession:
            return JSONResponse({"error": f"no session {session_id!r}"}, status_code=404)
        except StoreError as exc:
            return _unavailable(exc)
        return JSONResponse(session_detail(s, index, live=live, geometry=outline), headers=headers)

    @r.get(
        "/api/sessions/{session_id}/frames",
        summary=f"Stored frames of a time range as JSON, CSV or binary DATA frames; at most "
        f"{MAX_SPAN_S:g} s of session time and {MAX_VALUES:,} values per request "
        "(docs/rest.md)",
        responses={
            400: {"description": "A bad parameter, or a range over a limit"},
            404: {"description": "No such session"},
        },
    )
    async def get_frames(
        session_id: str,
        from_: float = Query(
            0.0, alias="from", description="Start [s from the session's first frame], included"
        ),
        to: float | None = Query(
            None,
            description=f"End [s from the session's first frame], excluded; default from + "
            f"{MAX_SPAN_S:g} or just past the session's last frame, whichever is first",
        ),
        streams: str | None = Query(None, description="Stream ids, comma separated; default all"),
        channels: str | None = Query(
            None, description="Channel names, comma separated; default every channel"
        ),
        format: str = Query("json", description="json, csv or bin"),
    ) -> Response:
        try:
            s = await store.get_session(SessionId(session_id))
            index = await store.chunk_index(SessionId(session_id))
            q = FrameQuery.parse(
                s, index, start=from_, end=to, streams=streams, channels=channels, fmt=format
            )
            if q.read_ns is None:  # nothing stored there: no read
                batches = q.nothing()
            else:
                batches = await store.read_window(
                    session_id=SessionId(session_id),
                    t0_ns=q.read_ns[0],
                    t1_ns=q.read_ns[1],
                    streams=q.streams,
                )
            selected = q.select(batches)
        except QueryError as exc:
            return exc.response()
        except UnknownSession:
            return JSONResponse({"error": f"no session {session_id!r}"}, status_code=404)
        except StoreError as exc:
            return _unavailable(exc)
        headers = {
            "X-Pitwire-T0-Ns": str(q.t0_ns),
            "X-Pitwire-Streams": ",".join(q.streams),
        }
        if q.fmt == "csv":
            name = f"{session_id}_{q.from_s:g}-{q.to_s:g}.csv"
            headers["Content-Disposition"] = f"attachment; filename={name}"
            return StreamingResponse(
                csv_pieces(q, selected), media_type="text/csv; charset=utf-8", headers=headers
            )
        if q.fmt == "bin":
            headers["X-Pitwire-Channels"] = ",".join(q.table)
            body = await asyncio.to_thread(bin_body, q, selected)
            return Response(body, media_type=BIN_MEDIA_TYPE, headers=headers)
        body = await asyncio.to_thread(json_body, session_id, q, selected)
        return Response(body, media_type="application/json", headers=headers)

    @r.get("/healthz", summary="Liveness and store health")
    async def healthz() -> JSONResponse:
        ok = persistence.healthy
        return JSONResponse(
            {
                "status": "ok" if ok else "degraded",
                "store": "ok" if ok else "failing writes",
                "healthy": ok,
                "spooled_frames": persistence.spooled_frames,
                "version": __version__,
            },
            status_code=200,
        )

    @r.get("/api/stats", summary="Server figures: latency, fan-out, ingest, memory")
    async def server_stats() -> JSONResponse:
        return JSONResponse(
            {
                "server_latency": stats.latency.summary(),
                "sends": stats.sends,
                "dropped": stats.dropped,
                "disconnected_slow": stats.disconnected_slow,
                "ingest_frames": stats.ingest_frames,
                "ingest_messages": stats.ingest_messages,
                **persistence.figures(),
                "viewers": sum(len(s.viewers) + len(s.json_viewers) for s in hub.sessions.values()),
                "replay": replays.stats(),
                "rss_bytes": rss_bytes(),
            }
        )

    @r.post("/api/stats/reset", summary="Reset the latency reservoir and counters (benchmarks)")
    async def reset_stats() -> JSONResponse:
        stats.latency.reset()
        stats.sends = stats.dropped = stats.ingest_frames = stats.ingest_messages = 0
        return JSONResponse({"reset": True})

    return r


# --- GET /api/sessions/{id} ---------------------------------------------------------------


def session_brief(
    s: SessionSummary, *, live: bool, completeness: float | None = None
) -> dict[str, Any]:
    """A session's line in ``GET /api/sessions``: its figures, time range, cars and the
    fraction of expected frames received (None when not computed)."""
    t0, t1 = session_range(s)
    return {
        "session_id": s.info.session_id,
        "track": s.info.track,
        "source": s.info.source,
        "started_ns": s.info.started_ns,
        "live": live,
        "streams": len(s.streams),
        "frames": s.frames,
        "laps": len(s.laps),
        "t0_ns": t0,
        "t1_ns": t1,
        "duration_s": (t1 - t0) / 1e9,
        "cars": [
            {"stream_id": st.info.stream_id, "driver": st.info.driver, "car": st.info.car}
            for st in s.streams
        ],
        "completeness": None if completeness is None else round(completeness, 6),
    }


class CompletenessCache:
    """Each session's completeness ratio for the session list, from its chunk index. A stored
    session's ratio is kept while its stored frames and laps are unchanged (read once); a live
    one's, which changes with every chunk, is kept for ``LIVE_TTL_S`` so that pages polling
    the list do not re-read its whole index each time. Holds ``MAX_KEPT`` sessions, least
    recently used dropped; reads ``PARALLEL`` indexes at a time; the ratio is computed off the
    event loop."""

    MAX_KEPT = 1024
    LIVE_TTL_S = 10.0
    PARALLEL = 8

    def __init__(self, store: Store) -> None:
        self._store = store
        self._kept: OrderedDict[str, tuple[tuple[int, int, int], float, float]] = OrderedDict()
        self._reads = asyncio.Semaphore(self.PARALLEL)

    async def all(self, sessions: list[SessionSummary], live: set[str]) -> list[float | None]:
        """The ratio of each session (None for one deleted meanwhile), in order."""
        return list(
            await asyncio.gather(*(self.get(s, s.info.session_id in live) for s in sessions))
        )

    async def get(self, s: SessionSummary, live: bool = False) -> float | None:
        sid = s.info.session_id
        key = (s.frames, len(s.laps), session_range(s)[1])
        kept = self._kept.get(sid)
        now = time.monotonic()
        if kept is not None and (kept[0] == key or (live and now - kept[2] < self.LIVE_TTL_S)):
            self._kept.move_to_end(sid)
            return kept[1]
        async with self._reads:
            try:
                index = await self._store.chunk_index(SessionId(sid))
            except UnknownSession:  # deleted between the list and this read
                return None
        ratio = (await asyncio.to_thread(completeness, index, s.laps)).ratio
        self._kept[sid] = (key, ratio, now)
        self._kept.move_to_end(sid)
        while len(self._kept) > self.MAX_KEPT:
            self._kept.popitem(last=False)
        return ratio


def stream_colours(s: SessionSummary) -> list[str]:
    """Each stream's colour: its own when set ('#rrggbb'), else the palette's by its index in
    the session's stream list."""
    out = []
    for i, st in enumerate(s.streams):
        own = getattr(st.info, "colour", "") or ""
        out.append(own.lower() if _HEX_COLOUR.match(own) else PALETTE[i % len(PALETTE)])
    return out


def session_detail(
    s: SessionSummary,
    index: dict[str, list[ChunkSpan]],
    *,
    live: bool,
    geometry: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``GET /api/sessions/{id}``: the brief, channels, streams with colours, laps (every
    field of LapInfo), time range, track_geometry (the outline from ``TrackCache``; None when
    not computed or the session has no positions) and completeness (from the chunk index)."""
    t0, t1 = session_range(s)
    summary = completeness(index, s.laps)
    return {
        **session_brief(s, live=live, completeness=summary.ratio),
        "channels": list(channel_table(s).values()),
        "streams": [
            {
                "stream_id": st.info.stream_id,
                "driver": st.info.driver,
                "car": st.info.car,
                "colour": colour,
                "frames": st.frames,
                "first_seq": st.first_seq,
                "last_seq": st.last_seq,
                "t0_ns": st.t0_ns,
                "t1_ns": st.t1_ns,
            }
            for st, colour in zip(s.streams, stream_colours(s), strict=True)
        ],
        "laps": [msgspec.to_builtins(lap) for lap in s.laps],
        "time_range": {"t0_ns": t0, "t1_ns": t1, "duration_s": (t1 - t0) / 1e9},
        "frames": s.frames,
        "track_geometry": geometry,
        "completeness": summary.to_builtins(),
    }


def detail_etag(s: SessionSummary, index: dict[str, list[ChunkSpan]], *, live: bool) -> str:
    """A strong validator of everything ``GET /api/sessions/{id}`` depends on: session and
    stream info, stored-frame figures, laps, the chunk index and the live flag."""
    digest = hashlib.blake2b(
        _ETAG_ENC.encode((DETAIL_VERSION, s, index, live)), digest_size=16
    ).hexdigest()
    return f'"{digest}"'


def etag_matches(header: str | None, etag: str) -> bool:
    """True when an ``If-None-Match`` header names ``etag`` (or is ``*``); weak comparison, as
    RFC 9110 prescribes for If-None-Match."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


class TrackCache:
    """Track outlines by what they are drawn from (session, stream, lap, time window and the
    frames stored in it), so that a live session's growing ETag does not re-read a lap."""

    def __init__(self, store: Store, size: int = TRACK_CACHE) -> None:
        self.store = store
        self.size = size
        self._cache: OrderedDict[tuple[object, ...], track.TrackOutline | None] = OrderedDict()

    async def get(
        self, s: SessionSummary, index: dict[str, list[ChunkSpan]]
    ) -> dict[str, Any] | None:
        """The session's outline; None when no stream has usable x/y positions."""
        with_xy = [
            (st.info.stream_id, st.frames, st.t0_ns)
            for st in s.streams
            if {"x", "y"} <= {c.name for c in st.info.channels}
        ]
        for source in track.choose(s.laps, with_xy):
            stored = sum(
                span.n
                for span in index.get(source.stream, ())
                if span.t1_ns >= source.t0_ns and span.t0_ns <= source.t1_ns
            )
            key = (s.info.session_id, source.stream, source.lap, source.t0_ns, source.t1_ns, stored)
            if key in self._cache:
                self._cache.move_to_end(key)
                found = self._cache[key]
            else:
                batch = await self.store.read_frames(
                    session_id=SessionId(s.info.session_id),
                    stream_id=StreamId(source.stream),
                    t0_ns=source.t0_ns,
                    t1_ns=source.t1_ns,
                )
                found = track.outline(
                    batch.columns["x"], batch.columns["y"], stream=source.stream, lap=source.lap
                )
                self._cache[key] = found
                while len(self._cache) > self.size:
                    self._cache.popitem(last=False)
            if found is not None:
                return msgspec.to_builtins(found)  # type: ignore[no-any-return]
        return None


def _unavailable(exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"store unavailable: {exc}; retry later"}, status_code=503)
