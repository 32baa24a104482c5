"""Where replays read from: stored sessions in cached blocks, live sessions' tails."""

from __future__ import annotations

import asyncio

import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId
from pitwire.server.timeline import BlockCache, LiveTail, StoredTimeline
from pitwire.store.memory import MemoryStore
from racesession import PERIOD, SECOND, T0, expected_packet, store_session
from support import car_batch


async def stored(cars: int = 2, frames: int = 3600) -> tuple[MemoryStore, object]:
    store = MemoryStore()
    await store.open()
    await store_session(store, cars=cars, frames=frames)
    return store, await store.get_session(SessionId("race"))


async def test_rows_are_each_streams_last_frame_at_or_before_the_instant():
    """row() gives the state at t, also at a block's first instant (from its lookback), and
    None before a stream's first frame."""
    store, summary = await stored()
    tl = StoredTimeline(store, summary, BlockCache(), block_frames=1000)  # type: ignore[arg-type]
    assert tl.start_ns == T0
    assert tl.block_ns < 20 * SECOND
    for t in (T0 + 3 * SECOND, T0 + tl.block_ns, T0 + tl.block_ns + 1, T0 + 59 * SECOND):
        assert not tl.ready(t) or tl.row("car-1", ["packet_id"], t) is not None
        await tl.load(t)
        assert tl.ready(t)
        for car in range(2):
            row = tl.row(f"car-{car + 1}", ["packet_id", "speed", "nope"], t)
            assert row is not None
            assert row[0] == expected_packet(t, car)
            assert np.isnan(row[2])
    await tl.load(T0)
    assert tl.row("car-2", ["packet_id"], T0) is None  # car 2 starts a microsecond later


async def test_the_block_cache_stays_within_its_budget_and_shares_loads():
    """Loading every block of a session through a small cache keeps it under budget
    (evicting the oldest), and two viewers asking for one block read it once."""
    store, summary = await stored(frames=7200)
    big = StoredTimeline(store, summary, BlockCache(), block_frames=1000)  # type: ignore[arg-type]
    await big.load(T0)
    one_block = big.cache.bytes
    cache = BlockCache(budget=int(one_block * 2.5))
    tl = StoredTimeline(store, summary, cache, block_frames=1000)  # type: ignore[arg-type]
    blocks = (tl.end_ns() - tl.start_ns) // tl.block_ns + 1
    assert blocks >= 4
    for k in range(blocks):
        await tl.load(tl.start_ns + k * tl.block_ns)
        assert cache.bytes <= cache.budget
    assert cache.evictions >= blocks - 2
    misses = cache.misses
    await asyncio.gather(tl.load(T0), tl.load(T0 + 1))
    assert cache.misses == misses + 1


async def test_prefetch_reads_ahead_in_the_background():
    """prefetch() starts reading the blocks ahead of the clock and returns at once."""
    store, summary = await stored(frames=7200)
    tl = StoredTimeline(store, summary, BlockCache(), block_frames=1000)  # type: ignore[arg-type]
    tl.prefetch(T0, 3 * tl.block_ns)
    assert not tl.ready(T0)
    await asyncio.sleep(0.1)
    assert all(tl.ready(T0 + k * tl.block_ns) for k in range(4))


def batch(start: int, n: int, t0: int) -> FrameBatch:
    i = np.arange(start, start + n)
    return FrameBatch(t0 + i * PERIOD, {"packet_id": i.astype(np.float64)})


def test_a_live_tail_keeps_only_its_window_and_answers_from_it():
    """Fed batches, a tail answers the state at any kept instant, drops what is older than
    its window, and ignores frames it already has."""
    tail = LiveTail("live", keep_ns=2 * SECOND)
    for k in range(0, 600, 6):  # 10 s of 60 Hz in 100 ms batches
        tail.feed("car-1", batch(k, 6, T0))
    tail.feed("car-1", batch(590, 10, T0))  # 590..595 again, then 596..599
    assert tail.end_ns() == T0 + 599 * PERIOD
    assert tail.start_ns >= T0 + 599 * PERIOD - 2 * SECOND - 6 * PERIOD
    t = T0 + 500 * PERIOD + 1
    assert tail.row("car-1", ["packet_id"], t)[0] == 500  # type: ignore[index]
    assert tail.row("car-1", ["packet_id"], T0 + 100 * PERIOD) is None
    assert tail.row("car-9", ["packet_id"], t) is None


def test_a_live_tail_is_primed_with_older_frames_before_the_fed_ones():
    """Older frames (the store's, the hub's recent ones) go before what was fed, without
    repeating frames the tail has."""
    tail = LiveTail("live", keep_ns=60 * SECOND)
    tail.feed("car-1", batch(100, 10, T0))
    tail.prime("car-1", batch(0, 105, T0))
    assert tail.start_ns == T0
    assert tail.row("car-1", ["packet_id"], T0 + 50 * PERIOD)[0] == 50  # type: ignore[index]
    assert tail.row("car-1", ["packet_id"], T0 + 104 * PERIOD)[0] == 104  # type: ignore[index]


async def test_a_stream_silent_for_long_keeps_its_last_state_in_every_block():
    """A stream that changes rarely (flags) has its last frame before a block in the block,
    found through the chunk index, so its state is known at every instant."""
    from pitwire.model.channels import Channel
    from pitwire.model.records import StreamInfo

    store, summary = await stored(frames=7200)
    flags = StreamInfo(stream_id="track", channels=[Channel(name="track_status")])
    await store.put_stream(SessionId("race"), flags)
    changes = FrameBatch(
        np.array([T0 + 5 * SECOND, T0 + 70 * SECOND], np.int64),
        {"track_status": np.array([1.0, 4.0], np.float32)},
    )
    await store.write_chunk(
        session_id=SessionId("race"),
        stream_id="track",
        first_seq=0,
        batch=changes,  # type: ignore[arg-type]
    )
    summary = await store.get_session(SessionId("race"))
    tl = StoredTimeline(store, summary, BlockCache(), block_frames=1000)
    for t, want in ((T0 + 4 * SECOND, None), (T0 + 50 * SECOND, 1.0), (T0 + 119 * SECOND, 4.0)):
        await tl.load(t)
        row = tl.row("track", ["track_status"], t)
        assert (None if row is None else row[0]) == want, t


async def test_a_grown_session_shares_the_whole_blocks_already_read():
    """A timeline of a session that has grown since (still recorded) reads again only the
    block that was partial and the new ones."""
    store, summary = await stored(cars=1, frames=3000)
    cache = BlockCache()
    first = StoredTimeline(store, summary, cache, block_frames=600)  # type: ignore[arg-type]
    for k in range((first.end_ns() - T0) // first.block_ns + 1):
        await first.load(T0 + k * first.block_ns)
    read = cache.misses
    more = car_batch(3600, 600, t0_ns=T0)
    await store.write_chunk(
        session_id=SessionId("race"),
        stream_id="car-1",  # type: ignore[arg-type]
        first_seq=3600,
        batch=more,
    )
    grown = await store.get_session(SessionId("race"))
    second = StoredTimeline(store, grown, cache, block_ns=first.block_ns)  # type: ignore[arg-type]
    for k in range((second.end_ns() - T0) // second.block_ns + 1):
        await second.load(T0 + k * second.block_ns)
    whole_before = (first.end_ns() - T0) // first.block_ns
    blocks_after = (second.end_ns() - T0) // second.block_ns + 1
    assert cache.misses - read == blocks_after - whole_before
    t = second.end_ns()
    assert second.row("car-1", ["packet_id"], t)[0] == 4199  # type: ignore[index]
