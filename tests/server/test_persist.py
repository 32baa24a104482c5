"""Tests of the persistence worker (pitwire.server.persist) over a MemoryStore, with a wrapper
that records writes and fails on demand."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.server.persist import Persistence
from pitwire.store.base import StoreError, StoreUnavailable
from pitwire.store.memory import MemoryStore
from support import car_batch, car_channels

S1 = SessionId("s1")


class FlakyStore(MemoryStore):
    """A MemoryStore that records chunk writes and raises ``fail`` (an exception) from
    write_chunk, or ``fail_laps`` from put_lap, while they are set."""

    def __init__(self) -> None:
        super().__init__()
        self.fail: Exception | None = None
        self.fail_laps: Exception | None = None
        self.chunks: list[tuple[str, int, FrameBatch]] = []
        self.attempts = 0

    async def write_chunk(self, *, session_id, stream_id, first_seq, batch):  # type: ignore[no-untyped-def]
        self.attempts += 1
        if self.fail is not None:
            raise self.fail
        self.chunks.append((stream_id, first_seq, batch))
        return await super().write_chunk(
            session_id=session_id, stream_id=stream_id, first_seq=first_seq, batch=batch
        )

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        if self.fail_laps is not None:
            raise self.fail_laps
        await super().put_lap(session_id, lap)


@pytest.fixture
async def store() -> FlakyStore:
    """An open FlakyStore with session s1 and streams car-1 and car-2."""
    s = FlakyStore()
    await s.open()
    await s.put_session(SessionInfo(session_id="s1"))
    for car in ("car-1", "car-2"):
        await s.put_stream(S1, StreamInfo(stream_id=car, channels=list(car_channels().values())))
    return s


async def stored(store: MemoryStore, stream: str = "car-1") -> list[int]:
    batch = await store.read_frames(session_id=S1, stream_id=StreamId(stream))
    return batch.columns["packet_id"].astype(int).tolist()


def lap_of(batch: FrameBatch) -> set[float]:
    return set(batch.columns["lap"].tolist())


async def test_chunks_hold_at_most_max_frames(store):
    """Buffered batches are written in chunks of at most max_frames frames, in seq order."""
    p = Persistence(store, max_frames=25, max_age=60)
    for i in range(7):
        p.enqueue("s1", "car-1", i * 10, car_batch(i * 10, 10))
    await p.flush()
    assert [c[2].n for c in store.chunks] == [20, 20, 20, 10]
    assert [c[1] for c in store.chunks] == [0, 20, 40, 60]
    assert await stored(store) == list(range(70))
    assert (p.stored_frames, p.buffered_frames) == (70, 0)


async def test_one_batch_larger_than_max_frames_is_split(store):
    """A single enqueued batch larger than max_frames is still written in chunks of at most
    max_frames."""
    p = Persistence(store, max_frames=10, max_age=60)
    p.enqueue("s1", "car-1", 0, car_batch(0, 35))
    await p.flush()
    assert [(c[1], c[2].n) for c in store.chunks] == [(0, 10), (10, 10), (20, 10), (30, 5)]
    assert await stored(store) == list(range(35))


async def test_flush_without_force_waits_for_max_frames_or_max_age(store):
    """flush(force=False) leaves a young, small buffer alone, writes it once max_age has
    passed, and writes a full one at once."""
    p = Persistence(store, max_frames=100, max_age=0.05)
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    await p.flush(force=False)
    assert store.chunks == []
    await asyncio.sleep(0.06)
    await p.flush(force=False)
    assert await stored(store) == list(range(10))
    p.enqueue("s1", "car-1", 10, car_batch(10, 100))
    await p.flush(force=False)
    assert p.buffered_frames == 0


async def test_run_writes_by_max_age_in_the_background(store):
    """The run() task writes a buffer that reached max_age without being asked."""
    p = Persistence(store, max_frames=1000, max_age=0.05)
    task = asyncio.create_task(p.run())
    try:
        p.enqueue("s1", "car-1", 0, car_batch(0, 5))
        for _ in range(100):
            if p.stored_frames == 5:
                break
            await asyncio.sleep(0.01)
        assert await stored(store) == list(range(5))
    finally:
        task.cancel()


async def test_a_chunk_never_spans_two_laps_and_laps_are_stored(store):
    """Chunks are cut at every lap change, a finished lap is stored with its frames and
    times, and the lap in progress is not."""
    p = Persistence(store, max_frames=1000, max_age=60)
    batch = car_batch(0, 30)
    batch.columns["lap"][:] = np.repeat([0, 1, 2], 10)
    p.enqueue("s1", "car-1", 0, batch.slice(0, 15))
    p.enqueue("s1", "car-1", 15, batch.slice(15, 30))
    await p.flush(force=False)  # lap changes are due at once
    assert [(c[1], lap_of(c[2])) for c in store.chunks] == [(0, {0.0}), (10, {1.0})]
    await p.flush()
    assert [lap_of(c[2]) for c in store.chunks] == [{0.0}, {1.0}, {2.0}]
    laps = (await store.get_session(S1)).laps
    assert [(lap.lap, lap.frames, lap.t0_ns, lap.t1_ns) for lap in laps] == [
        (0, 10, int(batch.t_ns[0]), int(batch.t_ns[9])),
        (1, 10, int(batch.t_ns[10]), int(batch.t_ns[19])),
    ]


async def test_store_unavailable_keeps_frames_and_retries_until_it_recovers(store):
    """While the store is unavailable nothing is lost: frames stay buffered, health is
    reported, and everything is stored once it recovers."""
    p = Persistence(store, max_frames=10, max_age=60)
    store.fail = StoreUnavailable("database is down")
    for i in range(3):
        p.enqueue("s1", "car-1", i * 10, car_batch(i * 10, 10))
    await p.flush()
    assert not p.healthy
    assert (p.failed_writes, p.buffered_frames, p.stored_frames) == (1, 30, 0)
    await p.flush()
    assert p.failed_writes == 2
    store.fail = None
    await p.flush()
    assert p.healthy
    assert await stored(store) == list(range(30))
    assert (p.buffered_frames, p.stored_frames, p.rejected_frames) == (0, 30, 0)


async def test_os_errors_are_treated_as_unavailable(store):
    """An OSError from the store (disk full, socket gone) is retried like StoreUnavailable."""
    p = Persistence(store, max_frames=10, max_age=60)
    store.fail = OSError(28, "No space left on device")
    p.enqueue("s1", "car-1", 0, car_batch(0, 5))
    await p.flush()
    assert (p.healthy, p.buffered_frames) == (False, 5)
    store.fail = None
    await p.flush()
    assert await stored(store) == list(range(5))


async def test_run_retries_with_backoff_after_a_failure(store):
    """The run() task keeps retrying a failed write and stores everything after recovery."""
    p = Persistence(store, max_frames=5, max_age=0.02)
    store.fail = StoreUnavailable("down")
    task = asyncio.create_task(p.run())
    try:
        p.enqueue("s1", "car-1", 0, car_batch(0, 12))
        for _ in range(100):
            if store.attempts:
                break
            await asyncio.sleep(0.01)
        assert not p.healthy
        store.fail = None
        for _ in range(300):
            if p.stored_frames == 12:
                break
            await asyncio.sleep(0.01)
        assert await stored(store) == list(range(12))
        assert p.healthy
    finally:
        task.cancel()


async def test_lap_write_failure_is_retried_without_losing_the_lap(store):
    """When storing a finished lap fails with StoreUnavailable, the retry stores that lap and
    the next lap's frame count is not doubled."""
    p = Persistence(store, max_frames=1000, max_age=60)
    p.enqueue("s1", "car-1", 0, car_batch(0, 10, lap=0))
    await p.flush()
    p.enqueue("s1", "car-1", 10, car_batch(10, 10, lap=1))
    store.fail_laps = StoreUnavailable("down")
    await p.flush()
    assert not p.healthy and p.buffered_frames == 10
    store.fail_laps = None
    await p.flush()
    p.enqueue("s1", "car-1", 20, car_batch(20, 5, lap=2))
    await p.flush()
    laps = (await store.get_session(S1)).laps
    assert [(lap.lap, lap.frames) for lap in laps] == [(0, 10), (1, 10)]
    assert await stored(store) == list(range(25))


async def test_store_error_rejects_frames_instead_of_retrying_forever(store):
    """A store refusing frames for good (plain StoreError) gets them dropped and counted;
    later frames are stored normally."""
    p = Persistence(store, max_frames=10, max_age=60)
    store.fail = StoreError("frames do not match the stream's channels")
    p.enqueue("s1", "car-1", 0, car_batch(0, 15))
    await p.flush()
    assert (p.rejected_frames, p.buffered_frames, p.stored_frames) == (15, 0, 0)
    assert store.attempts == 2
    store.fail = None
    p.enqueue("s1", "car-1", 15, car_batch(15, 5))
    await p.flush()
    assert await stored(store) == list(range(15, 20))


async def test_on_stored_gets_the_last_durable_seq(store):
    """on_stored is called after each chunk with the session, stream and its last seq."""
    calls: list[tuple[str, str, int]] = []
    p = Persistence(store, max_frames=10, max_age=60, on_stored=lambda *a: calls.append(a))
    p.enqueue("s1", "car-1", 100, car_batch(0, 15))
    p.enqueue("s1", "car-2", 0, car_batch(0, 3))
    await p.flush()
    assert calls == [("s1", "car-1", 109), ("s1", "car-1", 114), ("s1", "car-2", 2)]


async def test_on_stored_is_not_called_for_failed_writes(store):
    """No on_stored call while writes fail."""
    calls: list[tuple[str, str, int]] = []
    p = Persistence(store, max_frames=10, max_age=60, on_stored=lambda *a: calls.append(a))
    store.fail = StoreUnavailable("down")
    p.enqueue("s1", "car-1", 0, car_batch(0, 5))
    await p.flush()
    assert calls == []


async def test_flush_stream_writes_only_that_stream(store):
    """flush_stream writes everything buffered for one stream now and leaves others."""
    p = Persistence(store, max_frames=1000, max_age=60)
    p.enqueue("s1", "car-1", 0, car_batch(0, 5))
    p.enqueue("s1", "car-2", 0, car_batch(0, 7))
    await p.flush_stream("s1", "car-1")
    assert await stored(store, "car-1") == list(range(5))
    assert p.buffered_frames == 7
    await p.flush_stream("s1", "car-9")  # nothing buffered: nothing to do


async def test_flush_stream_raises_when_the_store_is_unavailable(store):
    """flush_stream raises StoreError when the store cannot take the frames; they stay
    buffered."""
    p = Persistence(store, max_frames=1000, max_age=60)
    p.enqueue("s1", "car-1", 0, car_batch(0, 5))
    store.fail = StoreUnavailable("down")
    with pytest.raises(StoreError, match="s1/car-1"):
        await p.flush_stream("s1", "car-1")
    assert p.buffered_frames == 5


async def test_empty_batches_are_ignored(store):
    """Enqueuing an empty batch buffers and writes nothing."""
    p = Persistence(store)
    p.enqueue("s1", "car-1", 0, car_batch(0, 0))
    await p.flush()
    assert p.buffered_frames == 0 and store.chunks == []
