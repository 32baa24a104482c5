"""Store figures on a 300k-frame, 20-car stored session (20 cars x 250 s at 60 Hz).

The session is written as the server's persistence writes it (1000-frame chunks, one lap per
chunk at most, laps stored), then, on an open store:

- **open**: what opening a session in the dashboard or ``GET /api/sessions/{id}`` costs:
  ``get_session`` + ``chunk_index`` (summary, laps and the chunk index), p50/p99 of 200.
- **seek**: the frames of one car in a 1 s window at a random instant (``read_frames``), and
  of all 20 cars (``read_window``, one snapshot), p50/p99 of 200 random instants.
- **bytes per sample**: the stored chunk blobs / (frames x channels).

``python bench/store.py [sqlite] [postgres]``: both by default; PostgreSQL at
``PITWIRE_BENCH_PG`` (default ``postgresql://postgres@127.0.0.1:5432/test``), in a schema of its own
that is dropped afterwards.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from common import emit, machine, percentiles

from pitwire.analysis.laps import LapTracker, lap_cuts
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import SessionInfo
from pitwire.sources.sim import SimField
from pitwire.store import open_store
from pitwire.store.base import Store

CARS, RATE, SECONDS, CHUNK = 20, 60.0, 250, 1000
RUNS, SEED = 200, 7
SESSION = SessionId("bench-300k")
PG = "postgresql://postgres@127.0.0.1:5432/test"


def session_frames() -> tuple[SimField, dict[str, FrameBatch]]:
    field = SimField(CARS, seed=SEED, rate_hz=RATE, start_ns=1_700_000_000_000_000_000)
    per_car: dict[str, list[FrameBatch]] = {}
    for _ in range(int(SECONDS * RATE)):
        for stream, batch in field.step():
            per_car.setdefault(stream, []).append(batch)
    return field, {s: FrameBatch.concat(b) for s, b in per_car.items()}


def chunks(batch: FrameBatch) -> list[tuple[int, FrameBatch]]:
    """(first seq, chunk) as persistence cuts them: at most CHUNK frames, never two laps."""
    cuts = [0, *lap_cuts(batch.columns.get("lap"), None), batch.n]
    out = []
    for a, b in itertools.pairwise(cuts):
        for start in range(a, b, CHUNK):
            out.append((start, batch.slice(start, min(b, start + CHUNK))))
    return out


async def fill(store: Store, field: SimField, frames: dict[str, FrameBatch]) -> None:
    t0 = min(int(b.t_ns[0]) for b in frames.values())
    await store.put_session(SessionInfo(session_id=SESSION, track="sim-ring", started_ns=t0))
    for info in field.streams:
        await store.put_stream(SESSION, info)
    for stream, batch in frames.items():
        laps = LapTracker(stream)
        for first, piece in chunks(batch):
            await store.write_chunk(
                session_id=SESSION, stream_id=StreamId(stream), first_seq=first, batch=piece
            )
            for lap in laps.feed(piece):
                await store.put_lap(SESSION, lap)


async def measure(name: str, url: str, field: SimField, frames: dict[str, FrameBatch]) -> None:
    total = sum(b.n for b in frames.values())
    samples = total * len(next(iter(frames.values())).columns)
    store = open_store(url)
    await store.open()
    try:
        start = time.perf_counter()
        await fill(store, field, frames)
        write_s = time.perf_counter() - start
        index = await store.chunk_index(SESSION)
        opens = []
        for _ in range(RUNS):
            start = time.perf_counter()
            await store.get_session(SESSION)
            await store.chunk_index(SESSION)
            opens.append((time.perf_counter() - start) * 1e3)
        t_lo = min(s[0].t0_ns for s in index.values())
        t_hi = max(s[-1].t1_ns for s in index.values()) - 1_000_000_000
        rng = random.Random(SEED)
        streams = sorted(frames)
        one, every = [], []
        for _ in range(RUNS):
            t = rng.randrange(t_lo, t_hi)
            stream = StreamId(rng.choice(streams))
            start = time.perf_counter()
            got = await store.read_frames(
                session_id=SESSION, stream_id=stream, t0_ns=t, t1_ns=t + 1_000_000_000
            )
            one.append((time.perf_counter() - start) * 1e3)
            assert got.n >= RATE - 1, got.n
            start = time.perf_counter()
            window = await store.read_window(session_id=SESSION, t0_ns=t, t1_ns=t + 1_000_000_000)
            every.append((time.perf_counter() - start) * 1e3)
            assert len(window) == CARS
        blob_bytes = await stored_bytes(store, url)
    finally:
        await store.close()
    where = {"store": name, "frames": total, "cars": CARS, "machine": machine()}
    o50, o99 = percentiles(opens)
    emit("store_open_ms_p50", o50, "ms", **where)
    emit("store_open_ms_p99", o99, "ms", target="<= 30", **where)
    s50, s99 = percentiles(one)
    emit("store_seek_one_car_ms_p50", s50, "ms", window_s=1, **where)
    emit("store_seek_one_car_ms_p99", s99, "ms", target="<= 5", window_s=1, **where)
    a50, a99 = percentiles(every)
    emit("store_seek_all_cars_ms_p50", a50, "ms", window_s=1, **where)
    emit("store_seek_all_cars_ms_p99", a99, "ms", window_s=1, **where)
    emit("store_write_frames_per_s", total / write_s, "frames/s", chunk=CHUNK, **where)
    if blob_bytes:
        emit("store_bytes_per_sample", blob_bytes / samples, "B/sample", **where)


async def stored_bytes(store: Store, url: str) -> int:
    """Total size of the chunk blobs (0 when the store cannot tell)."""
    if url.startswith("sqlite"):
        import sqlite3

        path = url.split("///", 1)[1]
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT SUM(length(blob)) FROM chunks").fetchone()[0])
    schema = getattr(store, "schema", None)
    pool = getattr(store, "_pool", None)
    if pool is not None and schema:
        query = f'SELECT SUM(octet_length(blob)) FROM "{schema}".chunks'
        return int(await pool.fetchval(query))
    return 0


async def main(which: list[str]) -> None:
    field, frames = session_frames()
    if "sqlite" in which:
        with tempfile.TemporaryDirectory() as tmp:
            await measure("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", field, frames)
    if "postgres" in which:
        import os

        import asyncpg  # type: ignore[import-untyped]

        base = os.environ.get("PITWIRE_BENCH_PG", PG)
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        try:
            await measure("postgres", f"{base}?schema={schema}", field, frames)
        finally:
            conn = await asyncpg.connect(base)
            await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            await conn.close()


if __name__ == "__main__":
    np.seterr(all="ignore")
    asyncio.run(main(sys.argv[1:] or ["sqlite", "postgres"]))
