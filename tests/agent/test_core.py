"""Tests of the agent's sans-I/O core (pitwire.agent.core): dedup, lap cuts and batching."""

from __future__ import annotations

import numpy as np

from pitwire.agent.core import AgentCore
from pitwire.model.frames import FrameBatch
from support import car_batch

MS = 1_000_000  # [ns]


def with_packets(batch: FrameBatch, packet_ids: list[int]) -> FrameBatch:
    columns = dict(batch.columns)
    columns["packet_id"] = np.array(packet_ids, np.float64)
    return FrameBatch(batch.t_ns, columns)


def packets(ready: list[tuple[str, FrameBatch]]) -> list[list[int]]:
    return [b.columns["packet_id"].astype(int).tolist() for _, b in ready]


def test_consecutive_duplicate_packets_are_dropped_and_counted():
    """Frames repeating the previous frame's packet id are dropped and counted."""
    core = AgentCore()
    ready = core.feed("car-1", with_packets(car_batch(0, 7), [1, 1, 2, 3, 3, 3, 4]), 0)
    assert packets(ready) == [[1, 2, 3, 4]]
    assert core.duplicates == 3
    assert core.frames_in == 7


def test_duplicates_across_batch_boundaries_are_dropped():
    """A batch starting with the previous batch's last packet id loses that frame; a batch of
    nothing but that id produces nothing."""
    core = AgentCore()
    core.feed("car-1", with_packets(car_batch(0, 3), [1, 2, 5]), 0)
    ready = core.feed("car-1", with_packets(car_batch(3, 3), [5, 6, 7]), 0)
    assert packets(ready) == [[6, 7]]
    assert core.feed("car-1", with_packets(car_batch(6, 2), [7, 7]), 0) == []
    assert core.duplicates == 3


def test_duplicates_are_tracked_per_stream():
    """The same packet id on two streams is not a duplicate."""
    core = AgentCore()
    core.feed("car-1", with_packets(car_batch(0, 2), [1, 2]), 0)
    ready = core.feed("car-2", with_packets(car_batch(0, 2), [2, 3]), 0)
    assert packets(ready) == [[2, 3]]
    assert core.duplicates == 0


def test_packet_id_reset_is_not_dropped():
    """A game restart resetting packet ids (even to values seen before) keeps every frame."""
    core = AgentCore()
    core.feed("car-1", with_packets(car_batch(0, 3), [100, 101, 102]), 0)
    ready = core.feed("car-1", with_packets(car_batch(3, 4), [0, 1, 100, 101]), 0)
    assert packets(ready) == [[0, 1, 100, 101]]
    assert core.duplicates == 0


def test_batches_without_packet_ids_are_passed_whole():
    """Without a packet_id channel nothing is deduplicated."""
    core = AgentCore()
    batch = FrameBatch(np.array([1, 2, 3], np.int64), {"speed": np.ones(3, np.float32)})
    [(stream, out)] = core.feed("car-1", batch, 0)
    assert stream == "car-1" and out.equals(batch)


def test_lap_change_flushes_what_came_before():
    """A new lap sends the frames of the previous lap at once, even inside the batch window,
    and keeps the new lap's frames pending."""
    core = AgentCore(batch_ns=1000 * MS)
    assert core.feed("car-1", car_batch(0, 5, lap=0), 0) == []
    split = car_batch(5, 6, lap=0)
    split.columns["lap"][3:] = 1
    ready = core.feed("car-1", split, 10 * MS)
    assert len(ready) == 1
    (_, sent) = ready[0]
    assert sent.columns["packet_id"].tolist() == list(range(8))
    assert set(sent.columns["lap"].tolist()) == {0.0}
    assert core.lap("car-1") == 1
    [(_, rest)] = core.flush()
    assert rest.columns["packet_id"].tolist() == [8, 9, 10]


def test_a_lap_change_at_a_batch_boundary_flushes_the_previous_lap():
    """A batch whose first frame starts a new lap flushes the previous lap's pending frames."""
    core = AgentCore(batch_ns=1000 * MS)
    core.feed("car-1", car_batch(0, 3, lap=2), 0)
    ready = core.feed("car-1", car_batch(3, 2, lap=3), 1)
    assert [set(b.columns["lap"].tolist()) for _, b in ready] == [{2.0}]
    assert packets(core.flush()) == [[3, 4]]


def test_every_lap_in_one_batch_goes_out_separately():
    """With batch_ns 0, a batch spanning three laps becomes three batches, one per lap."""
    core = AgentCore()
    batch = car_batch(0, 6)
    batch.columns["lap"][:] = [0, 0, 1, 1, 1, 2]
    ready = core.feed("car-1", batch, 0)
    assert [b.columns["lap"].tolist() for _, b in ready] == [[0, 0], [1, 1, 1], [2]]


def test_batch_ns_gathers_frames_until_the_window_passes():
    """With batch_ns, frames are held until the first pending frame has waited batch_ns, then
    sent as one batch."""
    core = AgentCore(batch_ns=100 * MS)
    assert core.feed("car-1", car_batch(0, 2), 0) == []
    assert core.feed("car-1", car_batch(2, 2), 50 * MS) == []
    ready = core.feed("car-1", car_batch(4, 2), 100 * MS)
    assert packets(ready) == [[0, 1, 2, 3, 4, 5]]
    assert core.flush() == []


def test_flush_now_returns_only_batches_that_waited_long_enough():
    """flush(now) returns streams whose pending frames waited batch_ns; flush() returns all."""
    core = AgentCore(batch_ns=100 * MS)
    core.feed("car-1", car_batch(0, 2), 0)
    core.feed("car-2", car_batch(0, 3), 60 * MS)
    assert core.flush(99 * MS) == []
    assert [s for s, _ in core.flush(100 * MS)] == ["car-1"]
    assert core.flush(150 * MS) == []
    [(stream, batch)] = core.flush()
    assert (stream, batch.n) == ("car-2", 3)


def test_lap_is_none_for_unknown_streams():
    """lap() is None for a stream never fed, and follows the lap channel after."""
    core = AgentCore()
    assert core.lap("car-1") is None
    core.feed("car-1", car_batch(0, 2, lap=4), 0)
    assert core.lap("car-1") == 4
