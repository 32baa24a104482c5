"""Tests of the REST surface (pitwire.server.rest) on a real server: stats, health and store
outages."""

from __future__ import annotations

import asyncio
import json

import httpx
from websockets.asyncio.client import connect

from pitwire.model.ids import SessionId
from pitwire.protocol import SUBPROTOCOL
from pitwire.store.base import StoreUnavailable
from pitwire.store.memory import MemoryStore
from support import running_server

FRAME = {
    "packetId": 1,
    "gas": 0.5,
    "brake": 0.0,
    "fuel": 40.0,
    "gear": 3,
    "rpms": 7000,
    "steerAngle": -0.1,
    "speedKmh": 150.0,
}
STATS_KEYS = {
    "server_latency",
    "sends",
    "dropped",
    "disconnected_slow",
    "ingest_frames",
    "ingest_messages",
    "stored_frames",
    "buffered_frames",
    "failed_writes",
    "healthy",
    "rejected_frames",
    "spooling",
    "spooled_frames",
    "spool_bytes",
    "spool_max_bytes",
    "spool_full",
    "spool_dir",
    "viewers",
    "rss_bytes",
}


class DownStore(MemoryStore):
    """A MemoryStore whose reads and/or chunk writes raise StoreUnavailable while flagged."""

    def __init__(self, *, reads_down: bool = False, writes_down: bool = False) -> None:
        super().__init__()
        self.reads_down = reads_down
        self.writes_down = writes_down

    async def list_sessions(self):  # type: ignore[no-untyped-def]
        if self.reads_down:
            raise StoreUnavailable("connection refused")
        return await super().list_sessions()

    async def get_session(self, session_id: SessionId):  # type: ignore[no-untyped-def]
        if self.reads_down:
            raise StoreUnavailable("connection refused")
        return await super().get_session(session_id)

    async def write_chunk(self, **kw):  # type: ignore[no-untyped-def]
        if self.writes_down:
            raise StoreUnavailable("disk offline")
        return await super().write_chunk(**kw)


async def get(url: str, path: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.get(path)


async def post_frames(url: str, n: int, session: str = "r1") -> httpx.Response:
    body = [{**FRAME, "packetId": i} for i in range(n)]
    async with httpx.AsyncClient(base_url=url) as client:
        return await client.post("/ingest", params={"session_id": session}, json=body)


async def test_stats_has_every_field(server):
    """/api/stats answers every documented figure, zero on a fresh server."""
    stats = (await get(server.url, "/api/stats")).json()
    assert set(stats) == STATS_KEYS
    assert stats["server_latency"] == {"n": 0}
    assert stats["ingest_frames"] == stats["stored_frames"] == stats["viewers"] == 0
    assert stats["rss_bytes"] > 0


async def test_stats_count_ingest_storage_and_viewers(server):
    """Ingested, stored and buffered frames and connected viewers are counted; reset zeroes
    the counters."""
    assert (await post_frames(server.url, 6)).status_code == 200
    stats = (await get(server.url, "/api/stats")).json()
    assert stats["ingest_frames"] == 6
    assert stats["stored_frames"] + stats["buffered_frames"] == 6
    await server.app.state.persistence.flush()
    async with (
        connect(f"{server.ws}/ws/r1", subprotocols=[SUBPROTOCOL], compression=None) as binary,
        connect(f"{server.ws}/ws/r1", compression=None),
    ):
        await binary.recv()
        await asyncio.sleep(0.05)
        stats = (await get(server.url, "/api/stats")).json()
    assert (stats["stored_frames"], stats["buffered_frames"], stats["viewers"]) == (6, 0, 2)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.post("/api/stats/reset")).json() == {"reset": True}
    assert (await get(server.url, "/api/stats")).json()["ingest_frames"] == 0


async def test_a_session_with_recent_data_is_live(server):
    """A session that just received data is listed as live."""
    await post_frames(server.url, 2, session="fresh")
    [listed] = (await get(server.url, "/api/sessions")).json()
    assert listed["session_id"] == "fresh" and listed["live"] is True


async def test_healthz_is_degraded_while_writes_fail():
    """/healthz reports degraded (still 200) while the store refuses writes, and ok again
    after it recovers."""
    store = DownStore(writes_down=True)
    async with running_server(store=store, chunk_age=0.05) as srv:
        assert (await post_frames(srv.url, 3)).status_code == 200
        await srv.app.state.persistence.flush()
        health = await get(srv.url, "/healthz")
        assert health.status_code == 200
        assert health.json()["status"] == "degraded"
        assert health.json()["store"] == "failing writes"
        stats = (await get(srv.url, "/api/stats")).json()
        assert stats["failed_writes"] >= 1 and stats["buffered_frames"] == 3
        store.writes_down = False
        await srv.app.state.persistence.flush()
        assert (await get(srv.url, "/healthz")).json()["status"] == "ok"


async def test_sessions_answer_503_json_when_the_store_is_unavailable():
    """/api/sessions and /api/sessions/{id} answer 503 with a JSON error while the store is
    unavailable."""
    async with running_server(store=DownStore(reads_down=True)) as srv:
        for path in ("/api/sessions", "/api/sessions/any"):
            r = await get(srv.url, path)
            assert r.status_code == 503, path
            assert r.headers["content-type"] == "application/json"
            error = json.loads(r.text)["error"]
            assert "store unavailable" in error and "connection refused" in error


async def test_session_detail_reports_completeness_per_stream_and_lap():
    """GET /api/sessions/{id} gives frames expected vs received per stream and lap, and each
    gap with its kind, time range and missing frames."""
    import numpy as np

    from pitwire.model.frames import FrameBatch
    from pitwire.model.ids import StreamId
    from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
    from support import car_channels

    dt, t0 = 10_000_000, 1_700_000_000_000_000_000  # 100 Hz
    store = MemoryStore()
    await store.open()
    cset = car_channels()
    await store.put_session(SessionInfo(session_id="gappy", started_ns=t0))
    await store.put_stream(
        SessionId("gappy"), StreamInfo(stream_id="car", channels=list(cset.values()))
    )

    def batch(times: np.ndarray) -> FrameBatch:
        return FrameBatch(
            times.astype(np.int64),
            {n: np.zeros(len(times), c.dtype) for n, c in cset.items()},
        )

    # seqs 0-99 at 100 Hz; seqs 100-109 lost (a seq gap); seqs 110-209 with a 1 s pause
    # after seq 159 (a time gap: the source stopped, ~99 frames never numbered).
    first = t0 + dt * np.arange(100)
    second = t0 + dt * np.arange(110, 210)
    second[50:] += 1_000_000_000
    for seq, times in ((0, first), (110, second)):
        await store.write_chunk(
            session_id=SessionId("gappy"),
            stream_id=StreamId("car"),
            first_seq=seq,
            batch=batch(times),
        )
    await store.put_lap(
        SessionId("gappy"),
        LapInfo(stream_id="car", lap=1, t0_ns=int(first[0]), t1_ns=int(second[-1]), frames=200),
    )
    async with running_server(store=store) as srv:
        body = (await get(srv.url, "/api/sessions/gappy")).json()
    c = body["completeness"]
    (car,) = c["streams"]
    assert car["stream_id"] == "car" and car["period_ns"] == dt
    seq_gap, time_gap = car["gaps"]
    assert seq_gap == {
        "kind": "seq",
        "t0_ns": int(first[-1]),
        "t1_ns": int(second[0]),
        "missing": 10,
        "first_seq": 100,
        "last_seq": 109,
    }
    assert time_gap["kind"] == "time" and time_gap["missing"] == 100
    assert (time_gap["t0_ns"], time_gap["t1_ns"]) == (int(second[49]), int(second[50]))
    assert car["received"] == 200 and car["expected"] == 310
    assert car["laps"] == [{"lap": 1, "expected": 310, "received": 200}]
    assert c["received"] == 200 and c["expected"] == 310 and c["ratio"] == round(200 / 310, 6)
