"""Tests of track geometry (pitwire.analysis.track): lap choice, simplification, outline."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pitwire.analysis.track import (
    FALLBACK_S,
    MAX_POINTS,
    MIN_POINTS,
    TrackSource,
    choose,
    complete_laps,
    outline,
    simplify,
)
from pitwire.model.records import LapInfo

T0 = 1_700_000_000_000_000_000
S = 1_000_000_000


def loop(n: int) -> tuple[np.ndarray, np.ndarray]:
    """A closed circuit of ``n`` points (first == last), about 1.2 x 0.7 km."""
    th = np.linspace(0.0, 2 * np.pi, n)
    return 520 * np.cos(th) + 90 * np.cos(3 * th), 310 * np.sin(th) + 40 * np.sin(2 * th)


def distance_to_path(px: np.ndarray, py: np.ndarray, x: np.ndarray, y: np.ndarray) -> float:
    """The largest distance [m] of points (px, py) from the polyline (x, y)."""
    ax, ay, bx, by = x[:-1], y[:-1], x[1:], y[1:]
    dx, dy = bx - ax, by - ay
    length2 = np.maximum(dx * dx + dy * dy, 1e-12)
    s = np.clip(((px[:, None] - ax) * dx + (py[:, None] - ay) * dy) / length2, 0, 1)
    ex, ey = px[:, None] - (ax + s * dx), py[:, None] - (ay + s * dy)
    return float(np.sqrt(ex * ex + ey * ey).min(axis=1).max())


def lap(
    stream: str, number: int, lap_time: float | None, start_s: float = 0.0, **extra: object
) -> LapInfo:
    t0 = T0 + int(start_s * S)
    return LapInfo(
        stream_id=stream,
        lap=number,
        t0_ns=t0,
        t1_ns=t0 + int((lap_time or 60.0) * S),
        frames=1000,
        lap_time=lap_time,
        **extra,  # type: ignore[arg-type]
    )


# --- simplify -------------------------------------------------------------------------------


def test_simplify_keeps_the_ends_and_the_budget():
    """Simplification keeps the first and last points, ascending, and at most max_points."""
    x, y = loop(20_000)
    idx = simplify(x, y, max_points=300)
    assert len(idx) == 300
    assert idx[0] == 0 and idx[-1] == len(x) - 1
    assert np.all(np.diff(idx) > 0)


def test_simplify_collapses_a_straight_line_to_its_ends():
    """Points on a straight line are all within any tolerance of the segment of its ends."""
    x = np.linspace(0.0, 1000.0, 500)
    idx = simplify(x, 2 * x + 1, tolerance=1e-6)
    assert idx.tolist() == [0, 499]


def test_simplify_stays_within_its_tolerance_when_the_budget_allows():
    """With budget to spare, every dropped point lies within the tolerance of the kept path."""
    x, y = loop(5000)
    idx = simplify(x, y, max_points=5000, tolerance=0.5)
    assert len(idx) < 1000
    assert distance_to_path(x, y, x[idx], y[idx]) <= 0.5 + 1e-9


def test_simplify_of_a_closed_loop_splits_at_the_farthest_point():
    """A loop whose ends coincide is split at the point farthest from them, not dropped."""
    x, y = loop(1001)
    idx = simplify(x, y, max_points=3)
    far = int(np.argmax(np.hypot(x - x[0], y - y[0])))
    assert idx.tolist() == [0, far, 1000]


@pytest.mark.parametrize(
    ("x", "y", "max_points", "message"),
    [
        ([0.0, 1.0], [0.0], 10, "x has 2 points, y has 1"),
        ([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], 1, "max_points must be at least 2"),
    ],
)
def test_simplify_rejects_bad_input(x, y, max_points, message):
    """Mismatched x/y lengths and a budget below two points raise ValueError naming them."""
    with pytest.raises(ValueError, match=message):
        simplify(np.array(x), np.array(y), max_points=max_points)


@settings(max_examples=50, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(-50, 50), st.floats(-50, 50)), min_size=0, max_size=3000),
    budget=st.integers(2, 400),
)
def test_simplify_of_any_path_keeps_ends_and_budget(steps, budget):
    """Any path (a random walk) keeps its ends, ascending indices and the point budget."""
    xy = np.cumsum(np.array(steps, np.float64).reshape(-1, 2), axis=0)
    idx = simplify(xy[:, 0], xy[:, 1], max_points=budget)
    n = len(xy)
    assert len(idx) <= max(budget, min(n, 2))
    assert len(set(idx.tolist())) == len(idx) and np.all(np.diff(idx) > 0)
    if n:
        assert idx[0] == 0 and idx[-1] == n - 1


# --- outline --------------------------------------------------------------------------------


def test_outline_of_a_dense_lap_is_bounded_and_faithful():
    """A 60 Hz lap becomes at most MAX_POINTS points within a metre of the real path, with the
    bounds of every position."""
    x, y = loop(6000)
    shape = outline(x.astype(np.float32), y.astype(np.float32), stream="car-1", lap=3)
    assert shape is not None
    assert 50 < len(shape.x) == len(shape.y) <= MAX_POINTS
    assert (shape.stream, shape.lap) == ("car-1", 3)
    xs, ys = x.astype(np.float32).astype(np.float64), y.astype(np.float32).astype(np.float64)
    assert shape.bounds == [xs.min(), ys.min(), xs.max(), ys.max()]
    assert distance_to_path(x, y, np.array(shape.x), np.array(shape.y)) < 1.0


def test_outline_drops_frames_without_a_position():
    """Frames whose x or y is NaN or infinite are left out of the outline and its bounds."""
    x, y = loop(400)
    x[10:20] = np.nan
    y[30] = np.inf
    shape = outline(x, y, stream="s", lap=None)
    assert shape is not None
    assert np.isfinite(shape.x).all() and np.isfinite(shape.y).all()
    assert shape.bounds[2] == pytest.approx(np.nanmax(x[np.isfinite(y)]))


def test_outline_needs_enough_positions():
    """Fewer than MIN_POINTS positions (after dropping NaN) give no outline."""
    x, y = loop(MIN_POINTS + 5)
    x[:6] = np.nan
    assert outline(x, y, stream="s", lap=1) is None
    assert outline(np.array([]), np.array([]), stream="s", lap=1) is None


# --- choosing the lap -----------------------------------------------------------------------


def test_complete_laps_are_timed_laps_after_the_out_lap_fastest_first():
    """The out lap (0), untimed laps, pit laps and laps far faster than the median (cut short)
    are not complete; the rest come fastest first."""
    laps = [
        lap("a", 0, 30.0),
        lap("c", 4, 59.0, pit_in=True),
        lap("c", 5, 58.0, pit_out=True),
        lap("a", 1, 62.0),
        lap("a", 2, 61.0),
        lap("b", 1, None),
        lap("b", 2, 60.5),
        lap("b", 3, 20.0),
    ]
    assert [(x.stream_id, x.lap) for x in complete_laps(laps)] == [("b", 2), ("a", 2), ("a", 1)]


def test_choose_prefers_the_fastest_lap_of_a_stream_with_positions():
    """The fastest complete lap of a stream with x/y comes first, the fallback window of the
    busiest stream last; streams without positions are never chosen."""
    laps = [lap("nopos", 1, 50.0), lap("a", 1, 62.0, 10), lap("b", 1, 61.0, 20)]
    streams = [("a", 5000, T0), ("b", 7000, T0 + S)]
    sources = choose(laps, streams)
    assert sources[0] == TrackSource(stream="b", lap=1, t0_ns=T0 + 20 * S, t1_ns=T0 + 81 * S)
    assert [(s.stream, s.lap) for s in sources] == [("b", 1), ("a", 1), ("b", None)]
    assert sources[-1].t1_ns - sources[-1].t0_ns == int(FALLBACK_S * S)


def test_choose_without_laps_falls_back_to_the_busiest_stream():
    """Without laps the source is the first FALLBACK_S of the stream with the most frames;
    streams with nothing stored give nothing."""
    assert choose([], [("a", 10, T0), ("b", 30, T0 + 5)]) == [
        TrackSource(stream="b", lap=None, t0_ns=T0 + 5, t1_ns=T0 + 5 + int(FALLBACK_S * S))
    ]
    assert choose([lap("a", 1, 60.0)], [("a", 0, 0)]) == []
