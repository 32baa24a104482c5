"""REST: sessions, health and server figures (the slow surface; documented at /docs)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from pitwire import __version__
from pitwire.analysis.completeness import ChunkSpan, completeness
from pitwire.model.ids import SessionId
from pitwire.server.hub import Hub
from pitwire.server.ingest import Ingestor
from pitwire.server.persist import Persistence
from pitwire.server.stats import ServerStats, rss_bytes
from pitwire.store.base import SessionSummary, Store, StoreError, UnknownSession

LIVE_WINDOW_NS = 5_000_000_000
"""A session is live while an agent is connected or data arrived this recently."""


def router(
    *, store: Store, hub: Hub, ingestor: Ingestor, persistence: Persistence, stats: ServerStats
) -> APIRouter:
    r = APIRouter()

    def is_live(session_id: str) -> bool:
        live = hub.sessions.get(session_id)
        recent = live is not None and time.time_ns() - live.last_data_ns < LIVE_WINDOW_NS
        return ingestor.live.get(session_id, 0) > 0 or recent

    @r.get("/api/sessions", summary="All sessions, newest first")
    async def list_sessions() -> JSONResponse:
        try:
            sessions = await store.list_sessions()
        except StoreError as exc:
            return _unavailable(exc)
        return JSONResponse([session_brief(s, live=is_live(s.info.session_id)) for s in sessions])

    @r.get(
        "/api/sessions/{session_id}",
        summary="One session: channels, streams (cars), laps, time range, frame counts and "
        "completeness (frames expected vs received per stream and lap, gaps with their times)",
        responses={404: {"description": "No such session"}},
    )
    async def get_session(session_id: str) -> JSONResponse:
        try:
            s = await store.get_session(SessionId(session_id))
            index = await store.chunk_index(SessionId(session_id))
        except UnknownSession:
            return JSONResponse({"error": f"no session {session_id!r}"}, status_code=404)
        except StoreError as exc:
            return _unavailable(exc)
        return JSONResponse(session_detail(s, index, live=is_live(session_id)))

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
                "rss_bytes": rss_bytes(),
            }
        )

    @r.post("/api/stats/reset", summary="Reset the latency reservoir and counters (benchmarks)")
    async def reset_stats() -> JSONResponse:
        stats.latency.reset()
        stats.sends = stats.dropped = stats.ingest_frames = stats.ingest_messages = 0
        return JSONResponse({"reset": True})

    return r


def session_brief(s: SessionSummary, *, live: bool) -> dict[str, Any]:
    """A session's line in ``GET /api/sessions``."""
    return {
        "session_id": s.info.session_id,
        "track": s.info.track,
        "source": s.info.source,
        "started_ns": s.info.started_ns,
        "live": live,
        "streams": len(s.streams),
        "frames": s.frames,
        "laps": len(s.laps),
    }


def session_detail(
    s: SessionSummary, index: dict[str, list[ChunkSpan]], *, live: bool
) -> dict[str, Any]:
    """``GET /api/sessions/{id}``: the brief, channels, streams, laps, time range and
    completeness (from the chunk index)."""
    channels: dict[str, dict[str, Any]] = {}
    for st in s.streams:
        for ch in st.info.channels:
            channels.setdefault(
                ch.name,
                {
                    "name": ch.name,
                    "unit": ch.unit,
                    "dtype": ch.dtype,
                    "resolution": ch.resolution,
                    "description": ch.description,
                },
            )
    stored = [st for st in s.streams if st.frames]
    return {
        **session_brief(s, live=live),
        "channels": list(channels.values()),
        "streams": [
            {
                "stream_id": st.info.stream_id,
                "driver": st.info.driver,
                "car": st.info.car,
                "frames": st.frames,
                "first_seq": st.first_seq,
                "last_seq": st.last_seq,
                "t0_ns": st.t0_ns,
                "t1_ns": st.t1_ns,
            }
            for st in s.streams
        ],
        "laps": [
            {
                "stream_id": lap.stream_id,
                "lap": lap.lap,
                "t0_ns": lap.t0_ns,
                "t1_ns": lap.t1_ns,
                "frames": lap.frames,
                "lap_time": lap.lap_time,
            }
            for lap in s.laps
        ],
        "time_range": {
            "t0_ns": min((st.t0_ns for st in stored), default=0),
            "t1_ns": max((st.t1_ns for st in stored), default=0),
        },
        "frames": s.frames,
        "completeness": completeness(index, s.laps).to_builtins(),
    }


def _unavailable(exc: Exception) -> JSONResponse:
    return JSONResponse({"error": f"store unavailable: {exc}; retry later"}, status_code=503)
