"""Track geometry: the outline of a circuit from a car's ``x``/``y`` positions (pure numpy).

Which frames to draw from is chosen from the laps table alone (``choose``): the fastest
complete lap of any stream that has positions, else the first ``FALLBACK_S`` of the stream
with the most frames. ``outline`` then drops frames without a position and simplifies the
path (``simplify``: Ramer-Douglas-Peucker with a point budget) to at most ``MAX_POINTS``.

Positions are world coordinates ``x``, ``y`` [m] as the source reports them.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from pitwire.model.records import LapInfo

MAX_POINTS = 1000
"""Most points an outline keeps."""
TOLERANCE = 1e-4
"""Points closer than this fraction of the outline's bounding-box diagonal to the simplified
path are dropped even while the budget allows more (a 2 km circuit: 0.2 m)."""
FALLBACK_S = 120.0
"""Without a usable lap, this much of the busiest stream [s] from its first frame."""
MIN_POINTS = 10
"""An outline needs at least this many frames with a position."""
SHORT_LAP = 0.8
"""A lap faster than this fraction of the median lap is not a complete lap (cut short)."""

Floats = npt.NDArray[np.float64]


class TrackSource(msgspec.Struct, frozen=True, kw_only=True):
    """Where an outline is drawn from: ``stream``'s frames in [t0_ns, t1_ns] [ns since epoch];
    ``lap`` is the lap number, or None for the fallback window."""

    stream: str
    lap: int | None
    t0_ns: int
    t1_ns: int


class TrackOutline(msgspec.Struct, frozen=True, kw_only=True):
    """A simplified outline: ``x``, ``y`` [m] in driving order, ``bounds`` = [xmin, ymin,
    xmax, ymax] [m] of every position used (not only the kept points)."""

    x: list[float]
    y: list[float]
    bounds: list[float]
    stream: str
    lap: int | None


def complete_laps(laps: Sequence[LapInfo]) -> list[LapInfo]:
    """The laps that look complete, fastest first: a timed lap after the out lap (lap ≥ 1),
    neither into nor out of the pit lane, no faster than ``SHORT_LAP`` of the median of such
    laps (a lap cut short is not one)."""
    timed = [
        lap
        for lap in laps
        if lap.lap >= 1
        and lap.lap_time is not None
        and lap.lap_time > 0
        and lap.t1_ns > lap.t0_ns
        and not getattr(lap, "pit_in", False)
        and not getattr(lap, "pit_out", False)
    ]
    if not timed:
        return []
    median = statistics.median(lap.lap_time or 0.0 for lap in timed)
    kept = [lap for lap in timed if (lap.lap_time or 0.0) >= SHORT_LAP * median]
    return sorted(kept, key=lambda lap: (lap.lap_time, lap.stream_id, lap.lap))


def choose(
    laps: Sequence[LapInfo],
    streams: Sequence[tuple[str, int, int]],
    *,
    limit: int = 3,
) -> list[TrackSource]:
    """Candidate sources in order of preference: up to ``limit`` complete laps (fastest first)
    of streams with positions, then the fallback window of the busiest such stream.

    streams: (stream id, stored frames, first frame [ns since epoch]) of each stream that has
    ``x`` and ``y`` channels
    """
    with_xy = {stream for stream, frames, _ in streams if frames > 0}
    out = [
        TrackSource(stream=lap.stream_id, lap=lap.lap, t0_ns=lap.t0_ns, t1_ns=lap.t1_ns)
        for lap in complete_laps(laps)
        if lap.stream_id in with_xy
    ][:limit]
    busiest = max((s for s in streams if s[1] > 0), key=lambda s: (s[1], s[0]), default=None)
    if busiest is not None:
        stream, _, t0 = busiest
        out.append(TrackSource(stream=stream, lap=None, t0_ns=t0, t1_ns=t0 + int(FALLBACK_S * 1e9)))
    return out


def _deviation(x: Floats, y: Floats, i: int, j: int) -> tuple[float, int]:
    """The largest distance [m] of points i+1 .. j-1 from the segment i-j, and its index."""
    if j - i < 2:
        return 0.0, i
    px, py = x[i + 1 : j] - x[i], y[i + 1 : j] - y[i]
    dx, dy = x[j] - x[i], y[j] - y[i]
    length2 = dx * dx + dy * dy
    if length2 == 0.0:  # a closed loop's ends coincide: distance from the point
        d2 = px * px + py * py
    else:
        s = np.clip((px * dx + py * dy) / length2, 0.0, 1.0)
        ex, ey = px - s * dx, py - s * dy
        d2 = ex * ex + ey * ey
    k = int(np.argmax(d2))
    return float(np.sqrt(d2[k])), i + 1 + k


def simplify(
    x: Floats, y: Floats, *, max_points: int = MAX_POINTS, tolerance: float = 0.0
) -> npt.NDArray[np.intp]:
    """Indices of the points to keep, ascending: Ramer-Douglas-Peucker, splitting the segment
    with the farthest point first until ``max_points`` are kept or no point is farther than
    ``tolerance`` [m] from the kept path. The first and last points are always kept."""
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} points, y has {len(y)}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, not {max_points}")
    if n <= 2:
        return np.arange(n, dtype=np.intp)
    keep = [0, n - 1]
    heap: list[tuple[float, int, int, int]] = []

    def push(i: int, j: int) -> None:
        d, k = _deviation(x, y, i, j)
        if d > tolerance:
            heapq.heappush(heap, (-d, i, j, k))

    push(0, n - 1)
    while heap and len(keep) < max_points:
        _, i, j, k = heapq.heappop(heap)
        keep.append(k)
        push(i, k)
        push(k, j)
    return np.sort(np.asarray(keep, dtype=np.intp))


def outline(
    x: npt.NDArray[np.floating],
    y: npt.NDArray[np.floating],
    *,
    stream: str,
    lap: int | None,
    max_points: int = MAX_POINTS,
) -> TrackOutline | None:
    """The simplified outline of positions ``x``, ``y`` [m] (frames where either is NaN or
    infinite are dropped); None with fewer than ``MIN_POINTS`` positions."""
    xs, ys = np.asarray(x, np.float64), np.asarray(y, np.float64)
    ok = np.isfinite(xs) & np.isfinite(ys)
    xs, ys = xs[ok], ys[ok]
    if len(xs) < MIN_POINTS:
        return None
    xmin, xmax, ymin, ymax = xs.min(), xs.max(), ys.min(), ys.max()
    diagonal = float(np.hypot(xmax - xmin, ymax - ymin))
    idx = simplify(xs, ys, max_points=max_points, tolerance=TOLERANCE * diagonal)
    return TrackOutline(
        x=_short(xs[idx]),
        y=_short(ys[idx]),
        bounds=[float(xmin), float(ymin), float(xmax), float(ymax)],
        stream=stream,
        lap=lap,
    )


def _short(values: Floats) -> list[float]:
    """Positions to the millimetre [m]: a map needs no more, and the JSON stays small."""
    rounded: list[float] = np.round(values, 3).tolist()
    return rounded
