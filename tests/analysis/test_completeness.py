"""Tests of completeness figures from the chunk index (pitwire.analysis.completeness)."""

from __future__ import annotations

import numpy as np

from pitwire.analysis.completeness import (
    ChunkSpan,
    Hole,
    completeness,
    nominal_period,
    profile,
    stream_completeness,
    threshold_ns,
)
from pitwire.model.records import LapInfo

DT = 16_666_667  # 60 Hz [ns]
T0 = 1_700_000_000_000_000_000


def times(n: int, start: int = T0) -> np.ndarray:
    return start + DT * np.arange(n, dtype=np.int64)


def span(first: int, t: np.ndarray) -> ChunkSpan:
    period, holes = profile(t)
    return ChunkSpan(first, first + len(t) - 1, len(t), int(t.min()), int(t.max()), period, holes)


def test_profile_of_a_steady_chunk_has_its_period_and_no_holes():
    """A chunk at a steady rate has that rate's period and no holes."""
    assert profile(times(100)) == (DT, ())


def test_profile_finds_a_pause_and_counts_the_frames_it_lacks():
    """A pause of half a second at 60 Hz is one hole of 29 missing frames."""
    t = times(100)
    t[40:] += 500_000_000
    period, holes = profile(t)
    assert period == DT
    assert holes == (Hole(int(t[39]), int(t[40]), round((500_000_000 + DT) / DT) - 1),)


def test_jitter_below_the_threshold_is_not_a_gap():
    """Network jitter (a frame 80 ms late at 60 Hz) is not reported as a gap."""
    t = times(100)
    t[50:] += 80_000_000
    assert profile(t)[1] == ()
    assert threshold_ns(DT) == DT + 100_000_000
    assert threshold_ns(250_000_000) == 750_000_000  # 4 Hz: three periods


def test_profile_of_one_frame_or_repeated_times_knows_no_period():
    """One frame, or frames all at one instant, give period 0 and no holes."""
    assert profile(times(1)) == (0, ())
    assert profile(np.full(5, T0, np.int64)) == (0, ())


def test_nominal_period_is_the_frame_weighted_median():
    """The stream's period follows the chunks holding most frames, not the count of chunks."""
    spans = [
        ChunkSpan(0, 999, 1000, 0, 1, period_ns=DT),
        ChunkSpan(1000, 1001, 2, 0, 1, period_ns=5 * DT),
        ChunkSpan(1002, 1003, 2, 0, 1, period_ns=5 * DT),
    ]
    assert nominal_period(spans) == DT
    assert nominal_period([ChunkSpan(0, 0, 1, 0, 0)]) == 0


def test_a_stream_without_gaps_is_complete():
    """Contiguous seqs at a steady rate: expected equals received, per stream and lap."""
    a, b = times(100), times(100, T0 + 100 * DT)
    lap = LapInfo(stream_id="car", lap=1, t0_ns=int(a[0]), t1_ns=int(b[-1]), frames=200)
    s = stream_completeness("car", [span(0, a), span(100, b)], [lap])
    assert (s.expected, s.received, s.gaps, s.ratio) == (200, 200, [], 1.0)
    assert [(x.lap, x.expected, x.received) for x in s.laps] == [(1, 200, 200)]


def test_missing_seqs_are_an_exact_seq_gap():
    """Seqs missing between chunks are a seq gap with exactly those seqs."""
    a, b = times(100), times(100, T0 + 150 * DT)
    s = stream_completeness("car", [span(0, a), span(150, b)])
    (gap,) = s.gaps
    assert (gap.kind, gap.first_seq, gap.last_seq, gap.missing) == ("seq", 100, 149, 50)
    assert (gap.t0_ns, gap.t1_ns) == (int(a[-1]), int(b[0]))
    assert (s.expected, s.received) == (250, 200)


def test_a_pause_between_contiguous_chunks_is_a_time_gap():
    """Contiguous seqs with two seconds between them (an agent restarted) are a time gap."""
    a, b = times(100), times(100, T0 + 100 * DT + 2_000_000_000)
    s = stream_completeness("car", [span(0, a), span(100, b)])
    (gap,) = s.gaps
    assert gap.kind == "time" and gap.first_seq is None
    assert gap.missing == round((2_000_000_000 + DT) / DT) - 1


def test_holes_are_judged_at_the_stream_period():
    """A hole found by a tiny chunk's own poor median is dropped when the stream's rhythm
    says it is no gap."""
    tiny = np.array([T0, T0 + 3 * DT, T0 + 4 * DT], np.int64)  # own median 2 DT
    odd = ChunkSpan(0, 2, 3, T0, T0 + 4 * DT, DT // 2, (Hole(T0, T0 + 3 * DT, 5),))
    steady = span(3, times(1000, int(tiny[-1]) + DT))
    s = stream_completeness("car", [odd, steady])
    assert s.period_ns == DT and s.gaps == []


def test_gaps_count_in_the_lap_where_they_start():
    """A lap's expected frames include the gaps that start inside it."""
    a, b = times(100), times(100, T0 + 150 * DT)
    laps = [
        LapInfo(stream_id="car", lap=1, t0_ns=int(a[0]), t1_ns=int(a[-1]), frames=100),
        LapInfo(stream_id="car", lap=2, t0_ns=int(b[0]), t1_ns=int(b[-1]), frames=100),
        LapInfo(stream_id="other", lap=1, t0_ns=int(a[0]), t1_ns=int(b[-1]), frames=5),
    ]
    s = stream_completeness("car", [span(0, a), span(150, b)], laps)
    assert [(x.lap, x.expected, x.received) for x in s.laps] == [(1, 150, 100), (2, 100, 100)]


def test_session_figures_sum_the_streams():
    """A session's expected and received frames are its streams' sums, streams by name."""
    c = completeness(
        {"b": [span(0, times(10))], "a": [span(0, times(10)), span(20, times(10, T0 + 20 * DT))]}
    )
    assert [s.stream_id for s in c.streams] == ["a", "b"]
    assert (c.expected, c.received) == (40, 30)
    out = c.to_builtins()
    assert out["ratio"] == 0.75 and out["streams"][0]["ratio"] == round(20 / 30, 6)


def test_seqs_missing_before_the_first_stored_frame_are_a_seq_gap():
    """A stream whose first stored seq is not 0 lacks the frames before it (an agent spool
    that dropped its oldest frames before reaching the server)."""
    s = stream_completeness("car", [span(500, times(100))])
    (gap,) = s.gaps
    assert (gap.kind, gap.first_seq, gap.last_seq, gap.missing) == ("seq", 0, 499, 500)
    assert gap.t0_ns == gap.t1_ns == T0
    assert (s.expected, s.received) == (600, 100)
