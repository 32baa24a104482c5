"""Tests of the replay source: a recorded session through the live path (pitwire.sources.replay)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from pitwire import sessionfile
from pitwire.agent.run import Agent
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId
from pitwire.model.records import SessionInfo
from pitwire.sources.base import SessionChange, SourceError, StreamUpdate
from pitwire.sources.record import simulate
from pitwire.sources.replay import Interleaver, ReplaySource
from pitwire.sources.sim import SimField

START = 1_700_000_000_000_000_000


async def play(source: ReplaySource) -> list:  # type: ignore[type-arg]
    return [item async for item in source]


def batches(items: list) -> list[tuple[str, FrameBatch]]:  # type: ignore[type-arg]
    return [i for i in items if isinstance(i, tuple)]


def by_stream(items: list) -> dict[str, FrameBatch]:  # type: ignore[type-arg]
    parts: dict[str, list[FrameBatch]] = {}
    for stream, batch in batches(items):
        parts.setdefault(stream, []).append(batch)
    return {s: FrameBatch.concat(p) for s, p in parts.items()}


def frame_batch(t_ns: list[int] | np.ndarray) -> FrameBatch:
    t = np.asarray(t_ns, np.int64)
    return FrameBatch(t, {"v": np.arange(len(t), dtype=np.float32)})


async def test_replay_announces_the_session_then_plays_every_frame_exactly_once(tmp_path):
    """A session change (track), a stream update per stream, then each stream's frames in
    order, equal to what the file holds, none repeated or lost."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=4, seconds=3.0, session="race-1")
    items = await play(ReplaySource(path, speed=0))
    assert isinstance(items[0], SessionChange)
    assert (items[0].key, items[0].track) == ("race-1", "sim-ring")
    updates = items[1:5]
    assert all(isinstance(u, StreamUpdate) for u in updates)
    with sessionfile.open(path) as reader:
        assert [u.info for u in updates] == reader.streams
        played = by_stream(items)
        assert sorted(played) == [s.stream_id for s in reader.streams]
        for s in reader.streams:
            assert played[s.stream_id].equals(reader.frames(s.stream_id)), s.stream_id
    assert sum(b.n for _, b in batches(items)) == 4 * 180


async def test_replay_interleaves_streams_in_time_order(tmp_path):
    """Batches of all streams alternate in time: no batch starts before a window that has
    already been played ended, even when the file holds one stream's frames late."""
    path = tmp_path / "skewed.pwr"
    field = SimField(cars=3, seed=2, start_ns=START)
    info = SessionInfo(session_id="skewed", track="sim-ring", source="sim")
    late: list[FrameBatch] = []
    with sessionfile.create(path, info, streams=field.streams, flush_interval=3600) as w:
        for tick in range(300):  # 5 s; car-3 written in 1 s lumps, the others every tick
            for stream, batch in field.step():
                if stream == "car-3":
                    late.append(batch)
                else:
                    w.write(stream, batch)
            if (tick + 1) % 60 == 0:
                w.write("car-3", FrameBatch.concat(late))
                late.clear()
            w.flush()
    items = batches(await play(ReplaySource(path, speed=1000)))
    played_until = 0
    window_end = 0
    streams_seen: list[str] = []
    for stream, batch in items:
        assert batch.t1_ns - batch.t0_ns < 100_000_000  # about 0.1 s of data per batch
        if batch.t0_ns >= window_end:  # a new window
            played_until = window_end
            window_end = batch.t0_ns + 100_000_000
        assert batch.t0_ns >= played_until, (stream, batch.t0_ns)
        streams_seen.append(stream)
    # every stream appears in (nearly) every window, car-3 included
    assert streams_seen[:9] == ["car-1", "car-2", "car-3"] * 3
    assert sum(b.n for _, b in items) == 900


async def test_replay_paces_at_its_speed_in_tenth_of_a_second_batches(tmp_path):
    """2 s of data at 4x take about 0.5 s, in batches of 0.1 s of data (6 frames at 60 Hz)."""
    path = tmp_path / "paced.pwr"
    simulate(path, cars=2, seconds=2.0)
    started = time.monotonic()
    items = batches(await play(ReplaySource(path, speed=4.0)))
    took = time.monotonic() - started
    assert 0.4 <= took <= 0.9, took
    assert {b.n for _, b in items} == {6}
    assert len(items) == 2 * 20


async def test_replay_at_speed_zero_does_not_wait(tmp_path):
    """Speed 0 plays a minute of data as fast as it is read, in large batches."""
    path = tmp_path / "fast.pwr"
    simulate(path, cars=2, seconds=60.0)
    started = time.monotonic()
    items = batches(await play(ReplaySource(path, speed=0)))
    assert time.monotonic() - started < 5.0
    assert max(b.n for _, b in items) >= 60
    assert sum(b.n for _, b in items) == 2 * 3600


async def test_replay_of_a_damaged_file_plays_what_is_readable_and_warns(tmp_path, caplog):
    """A file cut in the middle plays every frame before the cut and logs the damage."""
    path = tmp_path / "cut.pwr"
    simulate(path, cars=2, seconds=10.0)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with sessionfile.open(path) as reader:
        readable = {s.stream_id: reader.frames(s.stream_id) for s in reader.streams}
    assert 0 < sum(b.n for b in readable.values()) < 2 * 600
    caplog.set_level(logging.WARNING)
    source = ReplaySource(path, speed=0)
    played = by_stream(await play(source))
    for stream, frames in readable.items():
        assert played[stream].equals(frames)
    assert source.problems and source.index_rebuilt
    assert any("damaged" in r.message for r in caplog.records)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no such file"), (b"hello, not a session", "not a pitwire session file")],
)
def test_a_missing_or_foreign_file_cannot_be_replayed(tmp_path, content, needle):
    """ReplaySource of a missing file or of a file that is not a session file raises
    SourceError saying which."""
    path = tmp_path / "x.pwr"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=needle):
        ReplaySource(path)


def test_a_negative_speed_is_refused(tmp_path):
    """Speed below 0 raises SourceError before the file is read."""
    with pytest.raises(SourceError, match="speed must be >= 0"):
        ReplaySource(tmp_path / "x.pwr", speed=-1)


def test_frames_up_to_what_the_server_has_are_skipped(tmp_path):
    """after_ns drops each stream's frames up to that time and counts them as skipped."""
    path = tmp_path / "s.pwr"
    simulate(path, cars=2, seconds=2.0)
    with sessionfile.open(path) as reader:
        car1 = reader.frames("car-1")
    source = ReplaySource(path, speed=0, after_ns={"car-1": int(car1.t_ns[59])})

    import asyncio

    played = by_stream(asyncio.run(play(source)))
    assert played["car-1"].equals(car1.slice(60, car1.n))
    assert played["car-2"].n == 120
    assert source.frames_skipped == 60


def test_interleaver_merges_streams_that_come_one_after_the_other():
    """Input stream after stream (a table) comes out window by window, streams alternating,
    each stream's frames in their order and each exactly once."""
    merge = Interleaver(step_ns=10, lookahead_ns=None)
    assert merge.feed("a", frame_batch(range(0, 50))) == []
    assert merge.feed("b", frame_batch(range(5, 55))) == []
    windows = merge.finish()
    assert [w.end_ns for w in windows] == [10, 20, 30, 40, 50, 60]
    assert [s for w in windows for s, _ in w.items] == ["a", "b"] * 5 + ["b"]
    a = FrameBatch.concat([b for w in windows for s, b in w.items if s == "a"])
    assert a.t_ns.tolist() == list(range(50))


def test_interleaver_plays_a_frame_later_than_its_lookahead_in_the_next_window():
    """A frame read after its window was played still comes out once, in the next window."""
    merge = Interleaver(step_ns=10, lookahead_ns=5)
    out = merge.feed("a", frame_batch([0, 10, 20, 30]))
    assert [w.end_ns for w in out] == [10, 20]
    out += merge.feed("b", frame_batch([3, 33]))
    out += merge.finish()
    b = [(w.end_ns, batch.t_ns.tolist()) for w in out for s, batch in w.items if s == "b"]
    assert b == [(30, [3]), (40, [33])]


def test_interleaver_keeps_a_streams_order_when_its_times_go_backwards():
    """Frames of one stream whose times are not sorted keep their order (their seq order)."""
    merge = Interleaver(step_ns=10, lookahead_ns=None)
    merge.feed("a", frame_batch([0, 15, 5, 25]))
    out = [b.t_ns.tolist() for w in merge.finish() for _, b in w.items]
    assert out == [[0], [15, 5], [25]]


async def test_an_agent_plays_a_replay_into_a_server_with_every_frame(tmp_path, server):
    """The agent streams a replayed file to a real server, which stores each stream's frames
    exactly once (as it would live)."""
    path = tmp_path / "live.pwr"
    simulate(path, cars=3, seconds=2.0)
    agent = Agent(ReplaySource(path, speed=0), server=server.ws, session="replayed")
    report = await agent.run()
    assert (report.frames_sent, report.unacked, report.dropped) == (360, 0, 0)
    summary = await server.store.get_session(SessionId("replayed"))
    assert {s.info.stream_id: (s.frames, s.last_seq) for s in summary.streams} == {
        f"car-{k}": (120, 119) for k in (1, 2, 3)
    }
    assert summary.info.track == "sim-ring"


def test_interleaver_joins_batches_of_a_stream_whose_channels_changed():
    """Batches of one stream with other channels (a channel added mid-session) that fall in
    one window come out as one batch over all their channels, NaN where a batch lacked one."""
    merge = Interleaver(step_ns=100, lookahead_ns=None)
    merge.feed("a", frame_batch([0, 10]))
    t = np.array([20, 30], np.int64)
    merge.feed(
        "a", FrameBatch(t, {"w": np.array([7, 8], np.float64), "v": np.array([5, 6], np.float32)})
    )
    [window] = merge.finish()
    [(stream, batch)] = window.items
    assert stream == "a" and list(batch.columns) == ["v", "w"]
    assert batch.t_ns.tolist() == [0, 10, 20, 30]
    assert batch.columns["v"].tolist() == [0, 1, 5, 6]
    assert np.array_equal(batch.columns["w"], [np.nan, np.nan, 7, 8], equal_nan=True)


async def test_replay_sends_each_batch_with_the_streams_declared_channels(tmp_path, monkeypatch):
    """Whatever channels a stream's batches carry, each is played with the channels its
    stream update announced (a missing one NaN, an undeclared one left out)."""
    path = tmp_path / "race.pwr"
    simulate(path, cars=1, seconds=1.0)
    source = ReplaySource(path, speed=0)
    reader = source._recording._reader
    declared = [c.name for c in reader.streams[0].channels]
    original = reader.batches

    def odd_batches(**kw):  # type: ignore[no-untyped-def]
        for i, (stream, batch) in enumerate(original(**kw)):
            if i % 2:  # every other batch lacks the first channel and has one of its own
                cols = {n: c for n, c in batch.columns.items() if n != declared[0]}
                batch = FrameBatch(batch.t_ns, {"extra": np.zeros(batch.n), **cols})
            yield stream, batch

    monkeypatch.setattr(reader, "batches", odd_batches)
    items = await play(source)
    [update] = [i for i in items if isinstance(i, StreamUpdate)]
    assert [c.name for c in update.info.channels] == declared
    played = batches(items)
    assert played and all(list(b.columns) == declared for _, b in played)
    assert sum(b.n for _, b in played) == 60
    first = FrameBatch.concat([b for _, b in played]).columns[declared[0]]
    assert np.isnan(first).any() and not np.isnan(first).all()
