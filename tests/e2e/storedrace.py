"""A stored simulated race for the browser tests, written straight into a store in a second
or two (the simulator run flat out, not in real time): ``cars`` cars at 60 Hz for
``seconds`` simulated seconds, with their laps, as the server's persistence would store them.

Run as a script: ``python storedrace.py sqlite:///path.db SESSION CARS SECONDS``.
"""

from __future__ import annotations

import asyncio
import sys

from pitwire.analysis.laps import LapTracker
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import SessionInfo
from pitwire.sources.sim import SimSource
from pitwire.store import open_store

START_NS = 1_790_000_000_000_000_000  # 2026-09-21, well before any live demo session
CHUNK = 1200  # frames per stored chunk (20 s at 60 Hz)


async def write_race(db: str, session: str, cars: int, seconds: float) -> None:
    """Simulate and store the race; laps are computed as the server computes them."""
    source = SimSource(cars=cars, realtime=False, duration=seconds, start_ns=START_NS)
    sid = SessionId(session)
    pending: dict[str, list[FrameBatch]] = {}
    count: dict[str, int] = {}
    written: dict[str, int] = {}
    trackers = {s.stream_id: LapTracker(s.stream_id) for s in source.info.streams}
    async with open_store(db) as store:
        await store.put_session(
            SessionInfo(session_id=sid, track=source.info.track, source="sim", started_ns=START_NS)
        )
        for info in source.info.streams:
            await store.put_stream(sid, info)

        async def flush(stream: str) -> None:
            batch = FrameBatch.concat(pending.pop(stream, []))
            count[stream] = 0
            if batch.n == 0:
                return
            first = written.get(stream, 0)
            await store.write_chunk(
                session_id=sid, stream_id=StreamId(stream), first_seq=first, batch=batch
            )
            written[stream] = first + batch.n
            for lap in trackers[stream].feed(batch):
                await store.put_lap(sid, lap)

        async for stream, batch in source:
            pending.setdefault(stream, []).append(batch)
            count[stream] = count.get(stream, 0) + batch.n
            if count[stream] >= CHUNK:
                await flush(stream)
        for stream in list(pending):
            await flush(stream)


if __name__ == "__main__":
    url, name, n_cars, duration = sys.argv[1:5]
    asyncio.run(write_race(url, name, int(n_cars), float(duration)))
