"""Tests of the in-memory frame keeper (pitwire.protocol.keeper)."""

from __future__ import annotations

from pitwire.protocol import frames
from pitwire.protocol.keeper import MemoryKeeper
from support import car_batch


def test_memory_keeper_pending_is_what_is_above_the_floor():
    """MemoryKeeper.pending lists the kept frames of the asked streams above their floors."""
    keeper = MemoryKeeper()
    for seq in (9, 19, 29):
        keeper.keep("a", seq, b"a%d" % seq, 10)
    keeper.keep("b", 4, b"b4", 5)
    assert list(keeper.pending({"a": 9})) == [("a", 19, b"a19"), ("a", 29, b"a29")]
    assert list(keeper.pending({"b": -1})) == [("b", 4, b"b4")]
    keeper.release("a", 19)
    assert (keeper.frames, list(keeper.pending({"a": -1}))) == (15, [("a", 29, b"a29")])


def test_memory_keeper_pending_read_meanwhile_skips_what_was_dropped_and_sees_new_frames():
    """``pending`` is read lazily: frames the bound drops while it is read are not yielded
    (nor held on to), frames kept meanwhile are."""
    keeper = MemoryKeeper(max_frames=50)
    for seq in range(9, 50, 10):
        keeper.keep("a", seq, b"a%d" % seq, 10)
    reading = iter(keeper.pending({"a": -1}))
    assert next(reading)[1] == 9
    for seq in range(59, 90, 10):  # drops 9..39 (the oldest) as it goes
        keeper.keep("a", seq, b"a%d" % seq, 10)
    assert (keeper.dropped, keeper.frames) == (40, 50)
    assert [last for _, last, _ in reading] == [49, 59, 69, 79, 89]


def test_memory_keeper_move_renumbers_the_frames_from_a_seq():
    """``move`` shifts the kept frames whose last seq is from ``lo`` on, seqs in the frames
    included; older ones stay."""
    keeper = MemoryKeeper()
    for seq in (0, 10, 20):
        batch = car_batch(seq, 10)
        cols = [(i, c) for i, c in enumerate(batch.columns.values())]
        keeper.keep(
            "a", seq + 9, frames.serialize(group=1, seq=seq, t_ns=batch.t_ns, columns=cols), 10
        )
    keeper.move("a", 10, 100)
    got = [(last, frames.parse(data).seq) for _, last, data in keeper.pending({"a": -1})]
    assert got == [(9, 0), (119, 110), (129, 120)]
