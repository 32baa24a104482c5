"""Tests of the persistence worker (pitwire.server.persist) over a MemoryStore, with a wrapper
that records writes and fails on demand."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import numpy as np
import pytest

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.server.persist import Persistence
from pitwire.server.spool import Spool, Spooled
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


async def test_a_gap_in_seqs_ends_a_chunk_and_frames_keep_their_seqs(store):
    """Frames after a gap in a stream's seqs (an agent dropped some) start a new chunk, due at
    once like a lap change, so every frame is stored under its own seq and acks follow."""
    acks: list[int] = []
    p = Persistence(store, max_frames=1000, max_age=60, on_stored=lambda *a: acks.append(a[2]))
    p.enqueue("s1", "car-1", 0, car_batch(0, 100))
    p.enqueue("s1", "car-1", 150, car_batch(150, 150))
    await p.flush(force=False)
    assert [(c[1], c[2].n) for c in store.chunks] == [(0, 100)]
    await p.flush()
    assert [(c[1], c[2].n) for c in store.chunks] == [(0, 100), (150, 150)]
    assert await stored(store) == [*range(100), *range(150, 300)]
    spans = (await store.chunk_index(S1))["car-1"]
    assert [(s.first_seq, s.last_seq) for s in spans] == [(0, 99), (150, 299)]
    assert acks == [99, 299]


async def test_a_live_write_the_store_already_holds_is_logged(store, caplog):
    """A chunk written for the first time whose frames the store already holds is stored and
    acked as before, with a warning naming the stream and seqs; a retry is not warned of."""
    await store.write_chunk(
        session_id=S1, stream_id=StreamId("car-1"), first_seq=0, batch=car_batch(0, 10)
    )
    acks: list[int] = []
    p = Persistence(store, max_frames=1000, max_age=60, on_stored=lambda *a: acks.append(a[2]))
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    with caplog.at_level(logging.WARNING, "pitwire.persist"):
        await p.flush()
    assert "already held 10 of 10 frames of s1/car-1 (seq 0-9)" in caplog.text
    assert acks == [9] and await stored(store) == list(range(10))
    caplog.clear()
    p.enqueue("s1", "car-1", 10, car_batch(10, 10, lap=1))
    store.fail_laps = StoreUnavailable("down")  # the chunk is written, its lap is not
    await p.flush()
    store.fail_laps = None
    with caplog.at_level(logging.WARNING, "pitwire.persist"):
        await p.flush()
    assert "already held" not in caplog.text and acks == [9, 19]


async def test_wait_for_room_waits_while_more_than_max_buffered_frames_are_in_memory(store):
    """wait_for_room returns at once under the bound, and past it once the store took
    frames."""
    p = Persistence(store, max_frames=1000, max_age=60, max_buffered=10)
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    await asyncio.wait_for(p.wait_for_room(), 1)
    p.enqueue("s1", "car-1", 10, car_batch(10, 5))
    assert p.memory_full
    waiter = asyncio.create_task(p.wait_for_room())
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await p.flush()
    await asyncio.wait_for(waiter, 1)
    assert p.buffered_frames == 0 and not p.memory_full


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


# --- the spool: outages -------------------------------------------------------------------


class OutageStore(FlakyStore):
    """A FlakyStore that raises StoreUnavailable from every call while ``down`` (reads too,
    except read_frames, which tests use to look)."""

    @property
    def down(self) -> bool:
        return self.fail is not None

    @down.setter
    def down(self, value: bool) -> None:
        self.fail = self.fail_laps = StoreUnavailable("connection refused") if value else None

    async def put_session(self, info):  # type: ignore[no-untyped-def]
        if self.fail is not None:
            raise self.fail
        await super().put_session(info)

    async def put_stream(self, session_id, info):  # type: ignore[no-untyped-def]
        if self.fail is not None:
            raise self.fail
        await super().put_stream(session_id, info)

    async def get_session(self, session_id):  # type: ignore[no-untyped-def]
        if self.fail is not None:
            raise self.fail
        return await super().get_session(session_id)

    def written(self, stream: str = "car-1") -> list[int]:
        """Every seq a successful write_chunk was asked to store, in call order."""
        return [
            s for st, first, b in self.chunks if st == stream for s in range(first, first + b.n)
        ]


@pytest.fixture
async def outage() -> OutageStore:
    """An open OutageStore with session s1 and streams car-1 and car-2."""
    s = OutageStore()
    await s.open()
    await s.put_session(SessionInfo(session_id="s1"))
    for car in ("car-1", "car-2"):
        await s.put_stream(S1, StreamInfo(stream_id=car, channels=list(car_channels().values())))
    return s


def files(path) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(p.name for p in path.iterdir())


async def test_an_outage_spools_acks_and_stores_everything_once_on_recovery(outage, tmp_path):
    """While the store is down chunks go to the spool and are acked once fsynced; when it is
    back the drain stores each frame once with its laps, deletes the segments, and new
    chunks go straight to the store."""
    acks: list[tuple[str, str, int]] = []
    p = Persistence(
        outage,
        max_frames=10,
        max_age=60,
        on_stored=lambda *a: acks.append(a),
        spool=Spool(tmp_path),
    )
    await p.open()
    p.enqueue("s1", "car-1", 0, car_batch(0, 15, lap=0))
    await p.flush()  # stored: 0-9 and 10-14
    outage.down = True
    p.enqueue("s1", "car-1", 15, car_batch(15, 20, lap=1))
    p.enqueue("s1", "car-2", 0, car_batch(0, 4, lap=0))
    await p.flush()
    assert p.spooling and not p.healthy
    assert (p.buffered_frames, p.spooled_frames, p.stored_frames) == (0, 24, 15)
    assert acks == [
        ("s1", "car-1", 9),
        ("s1", "car-1", 14),
        ("s1", "car-1", 34),
        ("s1", "car-2", 3),
    ]
    assert not await p.drain()  # still down: nothing moves
    outage.down = False
    assert await p.drain()
    assert not p.spooling and p.healthy and p.spooled_frames == 0
    assert files(tmp_path) == ["lock"]
    assert outage.written() == list(range(35)) and outage.written("car-2") == list(range(4))
    assert await stored(outage) == list(range(35))
    p.enqueue("s1", "car-1", 35, car_batch(35, 5, lap=2))
    await p.flush()
    assert outage.written()[-5:] == list(range(35, 40))
    laps = (await outage.get_session(S1)).laps
    assert [(lap.stream_id, lap.lap, lap.frames) for lap in laps] == [
        ("car-1", 0, 15),
        ("car-1", 1, 20),
    ]
    assert len(acks) == 5 and acks[-1] == ("s1", "car-1", 39)
    await p.close()


async def test_a_run_task_through_an_outage_stores_what_was_sent_once_in_order(outage, tmp_path):
    """With the run() task and frames arriving all along, a store outage loses, repeats and
    reorders nothing; acks only grow and never pass what is stored or spooled."""
    p = Persistence(outage, max_frames=25, max_age=0.02, spool=Spool(tmp_path))
    acked: dict[str, int] = {}

    def on_stored(session: str, stream: str, seq: int) -> None:
        spooled = p.spool.high_waters().get((session, stream), -1) if p.spool else -1
        written = outage.written(stream)
        assert seq > acked.get(stream, -1)
        assert seq <= max(spooled, max(written, default=-1))
        acked[stream] = seq

    p.on_stored = on_stored
    await p.open()
    task = asyncio.create_task(p.run())
    sent = 0
    try:
        for i in range(60):
            outage.down = 15 <= i < 40
            lap = i // 20
            for car in ("car-1", "car-2"):
                p.enqueue("s1", car, sent, car_batch(sent, 7, lap=lap))
            sent += 7
            await asyncio.sleep(0.01)
        for _ in range(500):
            if acked.get("car-2") == sent - 1 and not p.spooling and p.buffered_frames == 0:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert p.spooled_total > 0 and p.failed_writes > 0
    for car in ("car-1", "car-2"):
        assert outage.written(car) == list(range(sent))
        assert await stored(outage, car) == list(range(sent))
        assert acked[car] == sent - 1
    laps = (await outage.get_session(S1)).laps
    assert [(lap.stream_id, lap.lap, lap.frames) for lap in laps] == [
        (car, lap, 140) for car in ("car-1", "car-2") for lap in (0, 1)
    ]
    await p.close()


async def test_a_restarted_server_drains_what_a_killed_one_spooled(tmp_path):
    """A spool left by a server killed during an outage is drained by the next one into a
    store that never heard of the session: the session and stream are created from the
    spooled declaration, what was acked is stored, and the durable high-water is known
    before the drain."""
    down = OutageStore()
    await down.open()
    down.down = True
    p = Persistence(down, max_frames=10, max_age=60, spool=Spool(tmp_path))
    await p.open()
    channels = list(car_channels().values())
    p.declare(
        SessionInfo(session_id="s1", track="spa", started_ns=7),
        StreamInfo(stream_id="car-1", driver="D", channels=channels),
    )
    batch = car_batch(0, 30)
    batch.columns["lap"][:] = np.repeat([3, 4], 15)
    p.enqueue("s1", "car-1", 0, batch)
    await p.flush()
    p.enqueue("s1", "car-1", 30, car_batch(30, 5, lap=4))  # in memory when "killed"
    await p.close()  # "killed": no flush, the lock goes with the process
    store = FlakyStore()
    await store.open()
    again = Persistence(store, max_frames=10, max_age=60, spool=Spool(tmp_path))
    await again.open()
    assert again.spooling and again.spooled_frames == 30
    assert again.durable_seq("s1", "car-1") == 29
    assert await again.drain()
    summary = await store.get_session(S1)
    assert (summary.info.track, summary.info.started_ns) == ("spa", 7)
    assert [(s.info.stream_id, s.info.driver) for s in summary.streams] == [("car-1", "D")]
    assert await stored(store) == list(range(30))
    assert [(lap.lap, lap.frames) for lap in summary.laps] == [(3, 15)]
    assert files(tmp_path) == ["lock"]
    await again.close()


async def test_a_full_spool_keeps_frames_in_memory_unacknowledged(outage, tmp_path):
    """Past the spool's bound, chunks stay in memory and are not acked; once the store is
    back the spool drains and they are stored."""
    acks: list[int] = []
    p = Persistence(
        outage,
        max_frames=10,
        max_age=60,
        on_stored=lambda *a: acks.append(a[2]),
        spool=Spool(tmp_path, max_bytes=150),
    )
    await p.open()
    outage.down = True
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    await p.flush()
    assert acks == [9] and p.spool is not None and p.spool.full
    p.enqueue("s1", "car-1", 10, car_batch(10, 10))
    await p.flush()
    assert acks == [9] and p.buffered_frames == 10
    assert p.figures()["spool_full"]
    outage.down = False
    assert await p.drain()
    await p.flush()
    assert outage.written() == list(range(20)) and acks == [9, 19]
    await p.close()


async def test_a_gap_in_seqs_ends_a_spooled_chunk_and_the_drain_keeps_the_seqs(outage, tmp_path):
    """While spooling, frames after a gap in a stream's seqs go to their own spool record,
    and the drain stores each frame under its own seq."""
    acks: list[int] = []
    spool = Spool(tmp_path)
    p = Persistence(
        outage, max_frames=1000, max_age=60, on_stored=lambda *a: acks.append(a[2]), spool=spool
    )
    await p.open()
    outage.down = True
    p.enqueue("s1", "car-1", 0, car_batch(0, 100))
    p.enqueue("s1", "car-1", 150, car_batch(150, 150))
    await p.flush()
    assert acks == [299] and p.spooled_frames == 250  # one spool group, one ack
    records = [(e.first_seq, e.batch.n) for _, e in spool.read(10) if isinstance(e, Spooled)]
    assert records == [(0, 100), (150, 150)]
    outage.down = False
    assert await p.drain()
    assert outage.written() == [*range(100), *range(150, 300)]
    assert await stored(outage) == [*range(100), *range(150, 300)]
    await p.close()


async def test_flush_stream_spools_when_the_store_is_down(outage, tmp_path):
    """flush_stream makes a stream's frames durable in the spool when the store is down, and
    the durable high-water follows."""
    p = Persistence(outage, max_frames=1000, max_age=60, spool=Spool(tmp_path))
    await p.open()
    outage.down = True
    p.enqueue("s1", "car-1", 0, car_batch(0, 5))
    await p.flush_stream("s1", "car-1")
    assert (p.buffered_frames, p.spooled_frames, p.durable_seq("s1", "car-1")) == (0, 5, 4)
    await p.close()


async def test_a_failing_spool_disk_keeps_frames_in_memory(outage, tmp_path):
    """When the spool cannot be written (its folder is gone), chunks stay in memory,
    unacknowledged, and reach the store once it is back."""
    acks: list[int] = []
    spool = Spool(tmp_path / "spool")
    p = Persistence(
        outage, max_frames=10, max_age=60, on_stored=lambda *a: acks.append(a[2]), spool=spool
    )
    await p.open()
    (tmp_path / "spool" / "lock").unlink()
    (tmp_path / "spool").rmdir()
    outage.down = True
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    await p.flush()
    assert (acks, p.buffered_frames, p.spooling) == ([], 10, False)
    outage.down = False
    await p.flush()
    assert acks == [9] and outage.written() == list(range(10))
    await p.close()


async def test_a_stream_gone_quiet_is_written_before_max_age(store, monkeypatch):
    """A stream that received nothing for IDLE_S has its buffered frames written without
    waiting out max_age, while one still receiving waits for max_age."""
    from pitwire.server import persist

    monkeypatch.setattr(persist, "IDLE_S", 0.05)
    p = Persistence(store, max_frames=1000, max_age=60)
    p.enqueue("s1", "car-1", 0, car_batch(0, 10))
    p.enqueue("s1", "car-2", 0, car_batch(0, 10))
    await asyncio.sleep(0.03)
    p.enqueue("s1", "car-2", 10, car_batch(10, 10))  # car-2 still receiving
    await asyncio.sleep(0.03)
    await p.flush(force=False)
    assert p.buffered_frames == 20  # car-1 went quiet and was written; car-2 was not
    assert await stored(store) == list(range(10))


class BatchingStore(FlakyStore):
    """A FlakyStore that also writes several streams' chunks in one call (as PostgreSQL's
    write_chunks does), recording each call, and raises ``fail_together`` from it."""

    def __init__(self) -> None:
        super().__init__()
        self.together: list[list[tuple[str, int, int]]] = []
        self.fail_together: Exception | None = None

    async def write_chunks(self, session_id, items):  # type: ignore[no-untyped-def]
        if self.fail_together is not None:
            raise self.fail_together
        self.together.append([(s, seq, b.n) for s, seq, b in items])
        return [
            await MemoryStore.write_chunk(
                self, session_id=session_id, stream_id=s, first_seq=seq, batch=b
            )
            for s, seq, b in items
        ]


@pytest.fixture
async def batching() -> BatchingStore:
    """An open BatchingStore with session s1 and streams car-1 .. car-3."""
    s = BatchingStore()
    await s.open()
    await s.put_session(SessionInfo(session_id="s1"))
    for car in ("car-1", "car-2", "car-3"):
        await s.put_stream(S1, StreamInfo(stream_id=car, channels=list(car_channels().values())))
    return s


async def test_a_store_that_writes_streams_together_gets_one_call_per_round(batching):
    """With write_chunks, the due chunks of every stream of a session go in one call per
    round (first chunks, then second ones), each stream is acked, and laps are stored."""
    acks: list[tuple[str, str, int]] = []
    p = Persistence(batching, max_frames=30, max_age=60, on_stored=lambda *a: acks.append(a))
    for car in ("car-1", "car-2", "car-3"):
        p.enqueue("s1", car, 0, car_batch(0, 20, lap=1))
        p.enqueue("s1", car, 20, car_batch(20, 40, lap=2))
    await p.flush()
    assert batching.together == [
        [("car-1", 0, 20), ("car-2", 0, 20), ("car-3", 0, 20)],
        [("car-1", 20, 30), ("car-2", 20, 30), ("car-3", 20, 30)],
        [("car-1", 50, 10), ("car-2", 50, 10), ("car-3", 50, 10)],
    ]
    assert batching.chunks == []  # nothing went one by one
    for car in ("car-1", "car-2", "car-3"):
        assert await stored(batching, car) == list(range(60))
        assert ("s1", car, 59) in acks
    summary = await batching.get_session(S1)
    assert {(lap.stream_id, lap.lap) for lap in summary.laps} >= {("car-1", 1), ("car-3", 1)}
    assert (p.stored_frames, p.buffered_frames) == (180, 0)


@pytest.mark.parametrize("error", [StoreUnavailable("down"), StoreError("refused")])
async def test_when_writing_together_fails_chunks_go_one_by_one(batching, error):
    """A write_chunks that fails (unavailable or refused) leaves every chunk to the
    one-chunk path, which stores them all."""
    batching.fail_together = error
    p = Persistence(batching, max_frames=100, max_age=60)
    for car in ("car-1", "car-2"):
        p.enqueue("s1", car, 0, car_batch(0, 10))
    await p.flush()
    assert sorted((c[0], c[1]) for c in batching.chunks) == [("car-1", 0), ("car-2", 0)]
    assert await stored(batching, "car-2") == list(range(10))
