"""The Store contract: every implementation (the ``store`` fixture) must pass all of these."""

from __future__ import annotations

import asyncio
import math
import random

import msgspec
import numpy as np
import pytest

from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store.base import Store, StoreError, UnknownSession
from pwrgen import same_at_resolution

S = SessionId("2024-monza-race")
CAR = StreamId("car-3")


def stream_info(frames, stream_id: str = CAR, **kw) -> StreamInfo:
    return StreamInfo(stream_id=stream_id, channels=list(frames.channels.values()), **kw)


async def setup_stream(store: Store, frames, *streams: str) -> None:
    await store.put_session(SessionInfo(session_id=S, track="monza", started_ns=frames.T0))
    for stream_id in streams or (CAR,):
        await store.put_stream(S, stream_info(frames, stream_id))


async def write(store: Store, first_seq: int, batch: FrameBatch, stream_id: str = CAR) -> int:
    return await store.write_chunk(
        session_id=S, stream_id=StreamId(stream_id), first_seq=first_seq, batch=batch
    )


async def read(store: Store, stream_id: str = CAR, **kw) -> FrameBatch:
    return await store.read_frames(session_id=S, stream_id=StreamId(stream_id), **kw)


async def high(store: Store, stream_id: str = CAR) -> int | None:
    return await store.stored_seqs(session_id=S, stream_id=StreamId(stream_id))


def test_implements_the_protocol(store: Store) -> None:
    """Every implementation is a runtime-checkable Store."""
    assert isinstance(store, Store)


async def test_use_before_open_is_a_store_error(store_factory) -> None:
    """Calling a store that was never opened raises StoreError, not an obscure crash."""
    fresh = store_factory()
    with pytest.raises(StoreError, match="open"):
        await fresh.list_sessions()


async def test_empty_store_has_no_sessions(store: Store) -> None:
    """A new store lists no sessions."""
    assert await store.list_sessions() == []


async def test_sessions_listed_newest_first(store: Store) -> None:
    """list_sessions orders by started_ns, newest first."""
    for name, started in [("b", 2), ("c", 3), ("a", 1)]:
        await store.put_session(SessionInfo(session_id=name, started_ns=started))
    assert [s.info.session_id for s in await store.list_sessions()] == ["c", "b", "a"]


async def test_put_session_updates_track_and_source(store: Store) -> None:
    """A second put_session updates track and source and keeps the original start time."""
    await store.put_session(SessionInfo(session_id=S, track="spa", source="sim", started_ns=5))
    await store.put_session(SessionInfo(session_id=S, track="monza", source="f1", started_ns=9))
    got = await store.get_session(S)
    assert got.info == SessionInfo(session_id=S, track="monza", source="f1", started_ns=5)
    assert (got.streams, got.laps, got.frames) == ([], [], 0)


async def test_unknown_session_raises(store: Store) -> None:
    """get_session of a missing session raises UnknownSession (a StoreError and KeyError)."""
    with pytest.raises(UnknownSession, match="nope") as info:
        await store.get_session(SessionId("nope"))
    assert isinstance(info.value, StoreError)
    assert isinstance(info.value, KeyError)


async def test_put_stream_needs_the_session(store: Store, frames) -> None:
    """put_stream into a missing session raises UnknownSession."""
    with pytest.raises(UnknownSession):
        await store.put_stream(SessionId("nope"), stream_info(frames))


async def test_stream_info_round_trips(store: Store, frames) -> None:
    """Driver, car and every channel field (infinite bounds, None resolution, °C) survive."""
    await store.put_session(SessionInfo(session_id=S))
    info = stream_info(frames, driver="Leclerc", car="SF-24")
    await store.put_stream(S, info)
    (summary,) = (await store.get_session(S)).streams
    assert summary.info == info
    assert summary.info.channels[3].lo == -math.inf
    assert (summary.frames, summary.first_seq, summary.last_seq) == (0, None, None)


async def test_put_stream_updates_info(store: Store, frames) -> None:
    """A second put_stream replaces the stream's driver, car and channels."""
    await setup_stream(store, frames)
    extra = Channel(name="fuel", unit="L")
    await store.put_stream(
        S, StreamInfo(stream_id=CAR, driver="X", channels=[*frames.channels.values(), extra])
    )
    (summary,) = (await store.get_session(S)).streams
    assert summary.info.driver == "X"
    assert summary.info.channels[-1] == extra


async def test_write_then_read_is_exact_at_resolution(store: Store, frames) -> None:
    """Frames read back are those written: bit for bit where a channel declares no
    resolution, within half a step where it does (NaNs, f4 and f8 included)."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 500)
    assert await write(store, 0, batch) == 500
    out = await read(store)
    assert list(out.columns) == list(frames.channels)
    assert same_at_resolution(out, batch, frames.channels.values())
    for name in ("rpm", "tyre_temp_fl", "steer"):  # no resolution: exact
        assert out.columns[name].tobytes() == batch.columns[name].tobytes()


async def test_values_on_a_step_come_back_bit_for_bit(store: Store, frames) -> None:
    """A value already on its channel's step (speed 123.45 at 0.01) is read back exactly."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 200)
    batch.columns["speed"][:] = np.round(np.linspace(0, 300, 200), 2).astype(np.float32)
    await write(store, 0, batch)
    assert (await read(store)).columns["speed"].tobytes() == batch.columns["speed"].tobytes()


async def test_columns_in_any_order_are_accepted(store: Store, frames) -> None:
    """A batch with the stream's channels in another order is stored in the stream's order."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 10)
    reordered = FrameBatch(batch.t_ns, dict(reversed(batch.columns.items())))
    await write(store, 0, reordered)
    assert list((await read(store)).columns) == list(frames.channels)


async def test_mismatched_columns_are_refused(store: Store, frames) -> None:
    """A batch missing a channel, or with the wrong dtype, raises StoreError and stores nothing."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 10)
    with pytest.raises(StoreError, match="rpm"):
        await write(store, 0, batch.select(["speed", "tyre_temp_fl", "steer"]))
    wrong = dict(batch.columns, speed=batch.columns["speed"].astype(np.float64))
    with pytest.raises(StoreError, match="speed"):
        await write(store, 0, FrameBatch(batch.t_ns, wrong))
    assert await high(store) is None


async def test_negative_seq_is_refused(store: Store, frames) -> None:
    """Seqs start at 0: a negative first_seq raises StoreError."""
    await setup_stream(store, frames)
    with pytest.raises(StoreError, match="out of range"):
        await write(store, -1, frames.batch(0, 3))


async def test_read_time_range_is_inclusive(store: Store, frames) -> None:
    """read_frames keeps frames with t0_ns <= t <= t1_ns, across chunk boundaries."""
    await setup_stream(store, frames)
    for first in range(0, 1000, 100):
        await write(store, first, frames.batch(first, 100))
    out = await read(store, t0_ns=frames.t(150), t1_ns=frames.t(420))
    assert np.array_equal(out.t_ns, frames.batch(150, 271).t_ns)
    assert np.array_equal(out.columns["rpm"], frames.batch(150, 271).columns["rpm"], True)
    assert (await read(store, t0_ns=frames.t(990))).n == 10
    assert (await read(store, t1_ns=frames.t(0))).n == 1
    assert (await read(store, t0_ns=frames.t(2000))).n == 0
    assert (await read(store, t0_ns=frames.t(5), t1_ns=frames.t(4))).n == 0


async def test_empty_stream_reads_empty_batch(store: Store, frames) -> None:
    """A stream with nothing stored reads as an empty batch with its channels and dtypes."""
    await setup_stream(store, frames)
    out = await read(store)
    assert out.n == 0
    assert {n: c.dtype for n, c in out.columns.items()} == {
        n: np.dtype(c.dtype) for n, c in frames.channels.items()
    }


async def test_same_chunk_twice_is_stored_once(store: Store, frames) -> None:
    """Writing the same seqs again stores nothing and returns 0."""
    await setup_stream(store, frames)
    assert await write(store, 0, frames.batch(0, 100)) == 100
    assert await write(store, 0, frames.batch(0, 100)) == 0
    assert (await read(store)).n == 100
    assert (await store.get_session(S)).frames == 100


async def test_overlapping_chunks_store_only_new_frames(store: Store, frames) -> None:
    """Overlapping writes store each seq once; the return value counts only new frames."""
    await setup_stream(store, frames)
    assert await write(store, 100, frames.batch(100, 100)) == 100  # 100..199
    assert await write(store, 150, frames.batch(150, 100)) == 50  # 200..249 new
    assert await write(store, 300, frames.batch(300, 50)) == 50  # 300..349
    assert await write(store, 50, frames.batch(50, 350)) == 50 + 50 + 50  # 3 gaps filled
    assert await write(store, 120, frames.batch(120, 10)) == 0  # inside
    out = await read(store)
    assert np.array_equal(out.t_ns, frames.batch(50, 350).t_ns)
    assert same_at_resolution(out, frames.batch(50, 350), frames.channels.values())


async def test_empty_batch_stores_nothing(store: Store, frames) -> None:
    """Writing an empty batch returns 0 and stores nothing."""
    await setup_stream(store, frames)
    assert await write(store, 0, frames.batch(0, 0)) == 0
    assert await high(store) is None


async def test_stored_seqs_is_the_contiguous_high_water_mark(store: Store, frames) -> None:
    """stored_seqs stops before the first gap and moves on once the gap is filled."""
    await setup_stream(store, frames)
    assert await high(store) is None
    await write(store, 0, frames.batch(0, 10))
    assert await high(store) == 9
    await write(store, 20, frames.batch(20, 10))
    assert await high(store) == 9
    await write(store, 10, frames.batch(10, 5))
    assert await high(store) == 14
    await write(store, 15, frames.batch(15, 5))
    assert await high(store) == 29


async def test_stored_seqs_counts_from_the_first_stored_seq(store: Store, frames) -> None:
    """The run starts at the lowest stored seq, which need not be 0, and may move back."""
    await setup_stream(store, frames)
    await write(store, 100, frames.batch(100, 10))
    assert await high(store) == 109
    await write(store, 0, frames.batch(0, 10))
    assert await high(store) == 9


async def test_summary_figures(store: Store, frames) -> None:
    """A stream summary counts frames and gives the stored seq and time ranges."""
    await setup_stream(store, frames)
    await write(store, 5, frames.batch(5, 10))
    await write(store, 40, frames.batch(40, 10))
    (summary,) = (await store.get_session(S)).streams
    assert (summary.frames, summary.first_seq, summary.last_seq) == (20, 5, 49)
    assert (summary.t0_ns, summary.t1_ns) == (frames.t(5), frames.t(49))
    (listed,) = await store.list_sessions()
    assert listed.frames == 20


async def test_laps_put_and_replace(store: Store, frames) -> None:
    """put_lap records a lap; putting the same lap number again replaces it."""
    await setup_stream(store, frames, "car-3", "car-16")
    lap = LapInfo(stream_id="car-3", lap=1, t0_ns=1, t1_ns=2, frames=5)
    await store.put_lap(S, LapInfo(stream_id="car-3", lap=2, t0_ns=2, t1_ns=3, frames=6))
    await store.put_lap(S, lap)
    await store.put_lap(S, LapInfo(stream_id="car-16", lap=1, t0_ns=0, t1_ns=9, frames=9))
    replaced = LapInfo(stream_id="car-3", lap=1, t0_ns=1, t1_ns=4, frames=7, lap_time=81.234)
    await store.put_lap(S, replaced)
    laps = (await store.get_session(S)).laps
    assert sorted(laps, key=lambda x: (x.stream_id, x.lap)) == laps
    assert len(laps) == 3
    assert replaced in laps
    assert lap not in laps


async def test_lap_details_and_stream_colour_round_trip(store: Store, frames) -> None:
    """Sectors, compound, stint, tyre life, pit flags and a stream's colour are stored and
    read back as given; laps without them read with the defaults."""
    await setup_stream(store, frames)
    await store.put_stream(S, stream_info(frames, "VER", driver="Max", colour="#3671c6"))
    detailed = LapInfo(
        stream_id="VER",
        lap=7,
        t0_ns=10,
        t1_ns=20,
        frames=3,
        lap_time=81.5,
        sectors=(26.25, None, 28.5),
        compound="MEDIUM",
        stint=2,
        tyre_life=5,
        pit_in=True,
        pit_out=False,
    )
    plain = LapInfo(stream_id="car-3", lap=1, t0_ns=1, t1_ns=2, frames=1)
    await store.put_lap(S, detailed)
    await store.put_lap(S, plain)
    got = await store.get_session(S)
    assert detailed in got.laps
    assert plain in got.laps
    colours = {s.info.stream_id: s.info.colour for s in got.streams}
    assert colours == {"VER": "#3671c6", CAR: ""}
    replaced = msgspec.structs.replace(detailed, sectors=(1.0, 2.0, 3.0, 4.0), compound="")
    await store.put_lap(S, replaced)
    await store.put_stream(S, stream_info(frames, "VER", colour=""))
    got = await store.get_session(S)
    assert replaced in got.laps
    assert detailed not in got.laps
    assert {s.info.stream_id: s.info.colour for s in got.streams}["VER"] == ""


async def test_put_lap_needs_session_and_stream(store: Store, frames) -> None:
    """put_lap for a missing session or stream raises UnknownSession."""
    await setup_stream(store, frames)
    lap = LapInfo(stream_id="car-99", lap=1, t0_ns=0, t1_ns=1, frames=1)
    with pytest.raises(UnknownSession, match="car-99"):
        await store.put_lap(S, lap)
    with pytest.raises(UnknownSession):
        await store.put_lap(SessionId("nope"), lap)


@pytest.mark.parametrize(("session", "stream"), [("nope", "car-3"), ("2024-monza-race", "car-99")])
async def test_missing_session_or_stream_raises(store: Store, frames, session, stream) -> None:
    """write_chunk, read_frames and stored_seqs of a missing session or stream raise."""
    await setup_stream(store, frames)
    ids = {"session_id": SessionId(session), "stream_id": StreamId(stream)}
    with pytest.raises(UnknownSession):
        await store.write_chunk(**ids, first_seq=0, batch=frames.batch(0, 3))
    with pytest.raises(UnknownSession):
        await store.read_frames(**ids)
    with pytest.raises(UnknownSession):
        await store.stored_seqs(**ids)


async def test_stored_data_is_isolated_from_callers(store: Store, frames) -> None:
    """Changing a written batch or a read result afterwards does not change what is stored."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 10)
    await write(store, 0, batch)
    batch.columns["speed"][:] = -1
    out = await read(store)
    out.columns["rpm"][:] = -1
    again = await read(store)
    assert same_at_resolution(again, frames.batch(0, 10), frames.channels.values())
    assert np.array_equal(again.columns["rpm"], frames.batch(0, 10).columns["rpm"], True)


async def test_channels_added_later_read_as_nan(store: Store, frames) -> None:
    """Frames stored before a channel was added read back with NaN in that channel."""
    await setup_stream(store, frames)
    await write(store, 0, frames.batch(0, 10))
    wider = frames.channels.merged([Channel(name="fuel", unit="L", dtype="f8")])
    await store.put_stream(S, StreamInfo(stream_id=CAR, channels=list(wider.values())))
    await write(store, 10, frames.batch(10, 10, wider))
    out = await read(store)
    assert list(out.columns) == list(wider)
    assert np.isnan(out.columns["fuel"][:10]).all()
    fuel = frames.batch(10, 10, wider).columns["fuel"]
    assert np.array_equal(out.columns["fuel"][10:], fuel, equal_nan=True)


async def test_many_chunks_of_interleaved_streams(store: Store, frames) -> None:
    """Concurrent, shuffled, partly duplicated writes to several streams store each frame once."""
    seed = random.randrange(2**32)
    print(f"seed={seed}")
    rng = random.Random(seed)
    streams = [f"car-{i}" for i in range(4)]
    await setup_stream(store, frames, *streams)
    total = 2000
    writes = []
    for stream_id in streams:
        cuts = sorted(rng.sample(range(1, total), 30))
        spans = list(zip([0, *cuts], [*cuts, total], strict=True))
        spans += rng.sample(spans, 8)  # duplicates
        spans += [(a, min(a + rng.randrange(1, 200), total)) for a, _ in rng.sample(spans, 8)]
        writes += [(stream_id, a, b) for a, b in spans]
    rng.shuffle(writes)
    counts = await asyncio.gather(
        *(write(store, a, frames.batch(a, b - a), stream_id) for stream_id, a, b in writes)
    )
    assert sum(counts) == total * len(streams)
    expected = frames.batch(0, total)
    for stream_id in streams:
        out = await read(store, stream_id)
        assert np.array_equal(out.t_ns, expected.t_ns)
        assert np.array_equal(out.columns["steer"], expected.columns["steer"], equal_nan=True)
        assert await high(store, stream_id) == total - 1
    summary = await store.get_session(S)
    assert [s.info.stream_id for s in summary.streams] == sorted(streams)
    assert summary.frames == total * len(streams)


async def test_duplicate_channel_names_are_refused(store: Store) -> None:
    """A stream whose channel list repeats a name is refused with ValueError."""
    await store.put_session(SessionInfo(session_id=S))
    info = StreamInfo(stream_id=CAR, channels=[Channel(name="a"), Channel(name="a")])
    with pytest.raises(ValueError, match="duplicate"):
        await store.put_stream(S, info)


def test_channel_set_fixture_is_sane(frames) -> None:
    """The shared test channels mix dtypes, so the contract covers f4 and f8."""
    assert isinstance(frames.channels, ChannelSet)
    assert {c.dtype for c in frames.channels.values()} == {"f4", "f8"}


async def test_chunk_index_lists_chunks_without_data(store: Store, frames) -> None:
    """The chunk index gives each stored chunk's seq and time range and its period, per stream."""
    await setup_stream(store, frames, CAR, "car-7")
    await write(store, 0, frames.batch(0, 100))
    await write(store, 100, frames.batch(100, 50))
    await write(store, 0, frames.batch(0, 10), "car-7")
    index = await store.chunk_index(S)
    assert sorted(index) == [CAR, "car-7"]
    spans = index[CAR]
    assert [(s.first_seq, s.last_seq, s.n) for s in spans] == [(0, 99, 100), (100, 149, 50)]
    assert (spans[0].t0_ns, spans[0].t1_ns) == (frames.t(0), frames.t(99))
    assert spans[1].period_ns == frames.DT
    assert spans[0].holes == () and spans[1].holes == ()


async def test_chunk_index_keeps_time_gaps_inside_a_chunk(store: Store, frames) -> None:
    """A pause inside a written chunk is kept as a hole with the frames it lacks."""
    await setup_stream(store, frames)
    batch = frames.batch(0, 60)
    batch.t_ns[30:] += 2 * 1_000_000_000  # two seconds without frames after frame 29
    await write(store, 0, batch)
    (span,) = (await store.chunk_index(S))[CAR]
    assert span.period_ns == frames.DT
    (hole,) = span.holes
    assert (hole.t0_ns, hole.t1_ns) == (int(batch.t_ns[29]), int(batch.t_ns[30]))
    assert hole.missing == round((2e9 + frames.DT) / frames.DT) - 1


async def test_chunk_index_of_a_session_without_frames_is_empty(store: Store, frames) -> None:
    """A session whose streams stored nothing has an empty index; an unknown one raises."""
    await setup_stream(store, frames)
    assert await store.chunk_index(S) == {}
    with pytest.raises(UnknownSession):
        await store.chunk_index(SessionId("nope"))


async def test_read_window_gives_every_stream_its_frames_in_the_range(store: Store, frames) -> None:
    """read_window returns, for every stream, the frames in [t0, t1] (an empty batch with
    its channels for a stream without any there)."""
    await setup_stream(store, frames, CAR, "car-7", "car-9")
    await write(store, 0, frames.batch(0, 300))
    await write(store, 0, frames.batch(0, 100), "car-7")
    await write(store, 100, frames.batch(100, 100), "car-7")
    out = await store.read_window(session_id=S, t0_ns=frames.t(90), t1_ns=frames.t(120))
    assert sorted(out) == [CAR, "car-7", "car-9"]
    for stream in (CAR, "car-7"):
        assert same_at_resolution(out[stream], frames.batch(90, 31), frames.channels.values())
    assert out["car-9"].n == 0 and list(out["car-9"].columns) == list(frames.channels)


async def test_read_window_of_named_streams(store: Store, frames) -> None:
    """read_window with ``streams`` returns just those; an unknown stream or session raises."""
    await setup_stream(store, frames, CAR, "car-7")
    await write(store, 0, frames.batch(0, 10), "car-7")
    out = await store.read_window(
        session_id=S, t0_ns=frames.t(0), t1_ns=frames.t(5), streams=[StreamId("car-7")]
    )
    assert list(out) == ["car-7"] and out["car-7"].n == 6
    with pytest.raises(UnknownSession):
        await store.read_window(session_id=S, t0_ns=0, t1_ns=1, streams=[StreamId("car-1")])
    with pytest.raises(UnknownSession):
        await store.read_window(session_id=SessionId("nope"), t0_ns=0, t1_ns=1)
