"""Tests of lap detection (pitwire.analysis.laps)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.analysis.laps import LapTracker, lap_cuts
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000  # 1 s [ns]


def laps_batch(
    laps: list[int], *, t0_ns: int = T0, dt_ns: int = S, lap_time: list[float] | None = None
) -> FrameBatch:
    columns = {"lap": np.array(laps, np.float32)}
    if lap_time is not None:
        columns["lap_time"] = np.array(lap_time, np.float32)
    return FrameBatch(t0_ns + np.arange(len(laps), dtype=np.int64) * dt_ns, columns)


# --- lap_cuts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("laps", "previous", "cuts"),
    [
        (None, None, []),
        (None, 3.0, []),
        ([], 1.0, []),
        ([0, 0, 0], None, []),
        ([0, 0, 0], 0.0, []),
        ([0, 0, 0], 5.0, [0]),
        ([0, 0, 1, 1, 2], None, [2, 4]),
        ([0, 0, 1, 1, 2], 0.0, [2, 4]),
        ([1, 1, 2], 0.0, [0, 2]),
        ([3, 0, 0], 3.0, [1]),
        ([1, 2, 3], None, [1, 2]),
        ([np.nan, np.nan, 1, 1], None, [2]),  # NaN: lap not known yet, one run of its own
        ([np.nan, np.nan], np.nan, []),
        ([np.nan, 1], 1.0, [0, 1]),
        ([2, np.nan, 2], 2.0, [1, 2]),
    ],
)
def test_lap_cuts(laps, previous, cuts):
    """lap_cuts gives the indices where a new lap starts, including 0 when the batch starts a
    different lap than the frame before it."""
    arr = None if laps is None else np.array(laps, np.float32)
    assert lap_cuts(arr, previous) == cuts


# --- LapTracker ---------------------------------------------------------------------------


def test_tracker_returns_each_lap_when_the_next_starts():
    """Feeding laps 0,0,0,1,1,2 returns laps 0 and 1 with their first/last frame times and
    frame counts; lap 2 is still in progress."""
    tracker = LapTracker("car-1")
    done = tracker.feed(laps_batch([0, 0, 0, 1, 1, 2]))
    assert done == [
        LapInfo(stream_id="car-1", lap=0, t0_ns=T0, t1_ns=T0 + 2 * S, frames=3, lap_time=3.0),
        LapInfo(
            stream_id="car-1", lap=1, t0_ns=T0 + 3 * S, t1_ns=T0 + 4 * S, frames=2, lap_time=2.0
        ),
    ]
    assert tracker.lap == 2


def test_frames_of_an_unknown_lap_belong_to_no_lap():
    """NaN laps (a game that has not sent lap data yet) neither start nor end a lap."""
    tracker = LapTracker("car-1")
    done = tracker.feed(laps_batch([np.nan, np.nan, 0, 0, 1]))  # type: ignore[list-item]
    assert [(lap.lap, lap.frames, lap.t0_ns) for lap in done] == [(0, 2, T0 + 2 * S)]
    assert tracker.lap == 1


def test_lap_time_without_a_lap_time_channel_is_start_to_next_start():
    """Without lap_time, a lap lasts from its first frame to the first frame of the next."""
    tracker = LapTracker("c")
    [lap] = tracker.feed(laps_batch([4, 4, 5], dt_ns=S // 4))
    assert lap.lap == 4 and lap.lap_time == 0.5


def test_lap_time_from_the_channel_plus_the_last_frame_interval():
    """With lap_time, the official time is its last value in the lap plus the interval from
    the lap's last frame to the next lap's first."""
    tracker = LapTracker("c")
    [lap] = tracker.feed(laps_batch([1, 1, 1, 2], lap_time=[0.0, 1.0, 89.75, 0.0], dt_ns=S // 2))
    assert lap.lap_time == pytest.approx(89.75 + 0.5)
    assert lap.frames == 3


def test_current_is_none_before_any_lap_and_then_the_lap_in_progress():
    """current() is None before the first frame with a lap value, then the lap so far with its
    latest lap_time."""
    tracker = LapTracker("c")
    assert tracker.current() is None and tracker.lap is None
    tracker.feed(laps_batch([7, 7], lap_time=[0.5, 1.5]))
    assert tracker.current() == LapInfo(
        stream_id="c", lap=7, t0_ns=T0, t1_ns=T0 + S, frames=2, lap_time=1.5
    )
    tracker.feed(laps_batch([7, 8], t0_ns=T0 + 2 * S, lap_time=[2.5, 0.0]))
    current = tracker.current()
    assert current is not None
    assert (current.lap, current.frames, current.t0_ns, current.lap_time) == (
        8,
        1,
        T0 + 3 * S,
        0.0,
    )


def test_batches_without_a_lap_column_or_frames_are_ignored():
    """A batch with no lap column or no frames changes nothing."""
    tracker = LapTracker("c")
    tracker.feed(laps_batch([1, 1]))
    before = tracker.current()
    no_lap = FrameBatch(np.array([T0 + 9 * S], np.int64), {"speed": np.array([1.0], np.float32)})
    assert tracker.feed(no_lap) == []
    assert tracker.feed(laps_batch([])) == []
    assert tracker.current() == before


def test_a_lap_counter_going_back_still_ends_the_lap():
    """A lap counter that resets (a game restart) ends the lap in progress like any change."""
    tracker = LapTracker("c")
    done = tracker.feed(laps_batch([5, 5, 0, 0]))
    assert [lap.lap for lap in done] == [5]
    assert tracker.lap == 0


@st.composite
def split_laps(draw: st.DrawFn) -> tuple[list[int], list[float] | None, list[int], list[int]]:
    """Runs of lap numbers, optional lap_time values, frame intervals and split points."""
    runs = draw(st.lists(st.tuples(st.integers(0, 6), st.integers(1, 8)), min_size=1, max_size=8))
    laps = [lap for lap, k in runs for _ in range(k)]
    n = len(laps)
    with_time = draw(st.booleans())
    lap_time = (
        draw(st.lists(st.floats(0, 200, width=32), min_size=n, max_size=n)) if with_time else None
    )
    gaps = draw(st.lists(st.integers(1, 10 * S), min_size=n, max_size=n))
    splits = sorted(set(draw(st.lists(st.integers(1, max(n - 1, 1)), max_size=6))))
    return laps, lap_time, gaps, [s for s in splits if s < n]


@settings(max_examples=200, deadline=None)
@given(split_laps())
def test_laps_do_not_depend_on_how_batches_are_split(case):
    """Feeding a stream in batches split at arbitrary points gives exactly the laps and the
    current lap that one batch gives."""
    laps, lap_time, gaps, splits = case
    t = T0 + np.cumsum(np.array(gaps, np.int64))
    columns = {"lap": np.array(laps, np.float32)}
    if lap_time is not None:
        columns["lap_time"] = np.array(lap_time, np.float32)
    whole = FrameBatch(t, columns)

    one = LapTracker("c")
    expected = one.feed(whole)
    parts = LapTracker("c")
    got: list[LapInfo] = []
    for a, b in zip([0, *splits], [*splits, len(laps)], strict=True):
        got.extend(parts.feed(whole.slice(a, b)))
    assert got == expected
    assert parts.current() == one.current()
    assert sum(lap.frames for lap in expected) + one.current().frames == len(laps)


def test_a_lap_time_not_sent_yet_does_not_become_the_laps_time():
    """NaN lap_time values are skipped: the lap's time comes from the last real one."""
    tracker = LapTracker("car-1")
    done = tracker.feed(
        laps_batch([0, 0, 0, 1], lap_time=[0.0, 1.0, float("nan"), 0.0])  # type: ignore[list-item]
    )
    assert done[0].lap_time is not None and np.isfinite(done[0].lap_time)
