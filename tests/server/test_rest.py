"""Tests of the REST surface (pitwire.server.rest) on a real server: stats, health, store
outages, session detail (track, colours, laps, ETag) and frame ranges in every format."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from loopsession import (
    FASTEST,
    T0,
    counting_loop_store,
    get,
    loop_car,
    loop_store,
    loop_xy,
    window,
)
from pitwire.analysis.track import MAX_POINTS
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.protocol import SUBPROTOCOL
from pitwire.server import rest
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
    "replay",
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


class IndexReads:
    """Counts the ``chunk_index`` reads of a store (wraps the method)."""

    def __init__(self, store: MemoryStore) -> None:
        self.n = 0
        inner = store.chunk_index

        async def counted(session_id: SessionId):  # type: ignore[no-untyped-def]
            self.n += 1
            return await inner(session_id)

        store.chunk_index = counted  # type: ignore[method-assign]


async def test_session_detail_reports_completeness_per_stream_and_lap():
    """GET /api/sessions/{id} gives frames expected vs received per stream and lap, and each
    gap with its kind, time range and missing frames; GET /api/sessions the ratio."""
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
    reads = IndexReads(store)
    async with running_server(store=store) as srv:
        body = (await get(srv.url, "/api/sessions/gappy")).json()
        before = reads.n
        [listed] = (await get(srv.url, "/api/sessions")).json()
        [again] = (await get(srv.url, "/api/sessions")).json()
    # The session list carries the ratio, the cars and the time range; an unchanged session's
    # ratio is computed once.
    assert listed["completeness"] == again["completeness"] == round(200 / 310, 6)
    assert reads.n == before + 1
    assert listed["cars"] == [{"stream_id": "car", "driver": "", "car": ""}]
    assert (listed["t0_ns"], listed["t1_ns"]) == (int(first[0]), int(second[-1]))
    assert listed["duration_s"] == (int(second[-1]) - int(first[0])) / 1e9
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


# --- GET /api/sessions/{id}: track, colours, laps, ETag ---------------------------------


async def test_detail_draws_the_track_from_the_fastest_lap():
    """The session's track outline comes from the fastest complete lap (any car), at most
    MAX_POINTS points on the circuit, with the bounds of that lap's positions."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        body = (await get(srv.url, "/api/sessions/loop")).json()
    assert body["track"] == "Loop"  # the track's name, beside its geometry
    shape = body["track_geometry"]
    assert (shape["stream"], shape["lap"]) == FASTEST
    assert 20 < len(shape["x"]) == len(shape["y"]) <= MAX_POINTS
    x, y = np.array(shape["x"]), np.array(shape["y"])
    rx, ry = loop_xy(np.linspace(0, 1, 20_000))
    assert np.hypot(x[:, None] - rx, y[:, None] - ry).min(axis=1).max() < 1.0
    xmin, ymin, xmax, ymax = shape["bounds"]
    assert xmin == pytest.approx(rx.min(), abs=2) and xmax == pytest.approx(rx.max(), abs=2)
    assert ymin == pytest.approx(ry.min(), abs=2) and ymax == pytest.approx(ry.max(), abs=2)


async def test_detail_track_without_laps_uses_the_busiest_stream_and_is_null_without_xy(
    server,
):
    """Without laps the outline comes from the stream with the most frames (lap null); a
    session without x/y channels has track null."""
    store = await loop_store(laps=False)
    async with running_server(store=store) as srv:
        shape = (await get(srv.url, "/api/sessions/loop")).json()["track_geometry"]
    assert shape["lap"] is None and shape["stream"] == "car-1"  # the slowest car: most frames
    await post_frames(server.url, 5, session="noxy")
    await server.app.state.persistence.flush()
    assert (await get(server.url, "/api/sessions/noxy")).json()["track_geometry"] is None


async def test_detail_gives_colours_laps_time_range_and_frames():
    """Streams keep their fields and gain a colour (their own, else a distinct palette colour
    stable across requests); laps carry every LapInfo field; the time range and frame total
    cover the whole session."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        body = (await get(srv.url, "/api/sessions/loop")).json()
        again = (await get(srv.url, "/api/sessions/loop")).json()
    streams = body["streams"]
    assert set(streams[0]) >= {"stream_id", "driver", "car", "frames", "first_seq", "t0_ns"}
    colours = [s["colour"] for s in streams]
    assert colours == [s["colour"] for s in again["streams"]]
    assert colours == ["#ff8000", rest.PALETTE[1], rest.PALETTE[2]]
    assert len(body["laps"]) == 12
    assert set(body["laps"][0]) == set(LapInfo.__struct_fields__)
    assert body["laps"][1]["compound"] == "MEDIUM" and body["laps"][1]["sectors"] == [
        20.0,
        20.5,
        None,
    ]
    stored = await window(store, 0, 1000)
    t1 = max(int(b.t_ns[-1]) for b in stored.values())
    assert body["time_range"] == {"t0_ns": T0, "t1_ns": t1, "duration_s": (t1 - T0) / 1e9}
    assert body["frames"] == sum(b.n for b in stored.values())


def test_palette_colours_are_distinct_and_readable():
    """The palette's colours are distinct (well apart in RGB) and each has a contrast of at
    least 3:1 against the dashboard's dark background (#111111)."""

    def rgb(c: str) -> np.ndarray:
        return np.array([int(c[i : i + 2], 16) for i in (1, 3, 5)], np.float64)

    def luminance(c: str) -> float:
        v = rgb(c) / 255
        lin = np.where(v <= 0.03928, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
        return float(lin @ [0.2126, 0.7152, 0.0722])

    assert len(set(rest.PALETTE)) == len(rest.PALETTE) == 20
    for c in rest.PALETTE:
        assert (luminance(c) + 0.05) / (luminance("#111111") + 0.05) >= 3.0, c
    for i, a in enumerate(rest.PALETTE):
        for b in rest.PALETTE[i + 1 :]:
            assert np.linalg.norm(rgb(a) - rgb(b)) > 40, (a, b)


async def test_detail_etag_answers_304_without_reading_frames_and_changes_with_data():
    """GET /api/sessions/{id} sends a strong ETag with Cache-Control no-cache; a matching
    If-None-Match (also weak or in a list) gets 304 with no body and no frame read; new data
    changes the ETag."""
    store = await counting_loop_store()
    async with running_server(store=store) as srv, httpx.AsyncClient(base_url=srv.url) as c:
        first = await c.get("/api/sessions/loop")
        tag = first.headers["etag"]
        assert first.status_code == 200 and tag.startswith('"') and tag.endswith('"')
        assert first.headers["cache-control"] == "no-cache"
        reads = store.reads
        assert reads >= 1  # the track outline
        for header in (tag, f"W/{tag}", f'"other", {tag}', "*"):
            r = await c.get("/api/sessions/loop", headers={"If-None-Match": header})
            assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == tag
        assert store.reads == reads
        r = await c.get("/api/sessions/loop", headers={"If-None-Match": '"other"'})
        assert r.status_code == 200 and r.headers["etag"] == tag
        assert store.reads == reads  # the outline came from the cache
        batch, _ = loop_car("car-1", 0.0)
        more = FrameBatch(batch.t_ns[-10:] + 10**9, {k: v[-10:] for k, v in batch.columns.items()})
        await store.write_chunk(
            session_id=SessionId("loop"), stream_id=StreamId("car-1"), first_seq=10**6, batch=more
        )
        changed = await c.get("/api/sessions/loop", headers={"If-None-Match": tag})
        assert changed.status_code == 200 and changed.headers["etag"] != tag
        assert changed.json()["streams"][0]["last_seq"] == 10**6 + 9


async def test_the_session_lists_completeness_is_recomputed_when_a_session_grows():
    """A stored session's ratio is read once and again only when its frames change; a live
    session's is kept for LIVE_TTL_S although it grows."""
    from support import car_batch, car_channels

    store = MemoryStore()
    await store.open()
    sid, car = SessionId("grow"), StreamId("car")
    await store.put_session(SessionInfo(session_id=sid, started_ns=0))
    await store.put_stream(sid, StreamInfo(stream_id=car, channels=list(car_channels().values())))
    await store.write_chunk(session_id=sid, stream_id=car, first_seq=0, batch=car_batch(0, 60))
    reads = IndexReads(store)
    cache = rest.CompletenessCache(store)

    async def ratio(live: bool = False) -> float | None:
        [s] = await store.list_sessions()
        return await cache.get(s, live)

    assert await ratio() == 1.0 and reads.n == 1
    assert await ratio() == 1.0 and reads.n == 1  # unchanged: kept
    # 40 seqs lost, then 60 more frames: a changed session is read again.
    await store.write_chunk(session_id=sid, stream_id=car, first_seq=100, batch=car_batch(100, 60))
    assert await ratio() == 120 / 160 and reads.n == 2
    await store.write_chunk(session_id=sid, stream_id=car, first_seq=160, batch=car_batch(160, 40))
    assert await ratio(live=True) == 120 / 160 and reads.n == 2  # live: kept for a while
    cache.LIVE_TTL_S = 0.0
    assert await ratio(live=True) == 160 / 200 and reads.n == 3
