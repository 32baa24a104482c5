"""Completeness: how many frames a stream should have, how many arrived, and where the gaps are.

Two kinds of gap, told apart:

- **seq**: sequence numbers missing before or between stored frames (a stream's seqs start at
  0). Exact: every missing seq is a frame the agent numbered and the store never got (an
  agent spool that overflowed, frames the server refused).
- **time**: frames that were never numbered, seen as a pause in time longer than the
  stream's rhythm allows (the agent was killed, the source stopped sampling, a game paused).
  The number missing is estimated from the stream's nominal period.

Everything here works on the chunk index (``ChunkSpan``), never on frame data: the time gaps
inside a chunk are found once, when it is written (``profile``), and kept beside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec
import numpy as np
import numpy.typing as npt

from pitwire.model.records import LapInfo

GAP_PERIODS = 3.0
"""A pause longer than this many nominal periods is a gap ..."""
GAP_SLACK_NS = 100_000_000
"""... and longer than a period plus this much [ns] (a network hiccup is not a gap)."""


class Hole(msgspec.Struct, frozen=True, array_like=True):
    """A time gap between two consecutive frames.

    t0_ns, t1_ns: times of the frame before and the frame after [ns since epoch]
    missing: frames that would have fitted in between at the nominal period
    """

    t0_ns: int
    t1_ns: int
    missing: int


class ChunkSpan(msgspec.Struct, frozen=True, array_like=True):
    """A stored chunk as the chunk index knows it (no frame data).

    t0_ns, t1_ns: earliest and latest frame [ns since epoch]
    period_ns: median interval between its frames [ns]; 0 when it has fewer than two
    holes: the time gaps inside it, by its own period
    """

    first_seq: int
    last_seq: int
    n: int
    t0_ns: int
    t1_ns: int
    period_ns: int = 0
    holes: tuple[Hole, ...] = ()


class Gap(msgspec.Struct, frozen=True, kw_only=True):
    """Frames a stream lacks between two stored frames.

    t0_ns, t1_ns: the last frame before and the first frame after the gap [ns since epoch]
    missing: frames missing (exact for ``seq``, estimated from the period for ``time``)
    first_seq, last_seq: the missing seqs (``seq`` gaps only)
    """

    kind: Literal["seq", "time"]
    t0_ns: int
    t1_ns: int
    missing: int
    first_seq: int | None = None
    last_seq: int | None = None


class LapCompleteness(msgspec.Struct, frozen=True, kw_only=True):
    lap: int
    expected: int
    received: int


class StreamCompleteness(msgspec.Struct, frozen=True, kw_only=True):
    """One stream's figures; ``period_ns`` is its nominal frame interval (0: unknown)."""

    stream_id: str
    period_ns: int
    expected: int
    received: int
    gaps: list[Gap]
    laps: list[LapCompleteness]

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 1.0


class Completeness(msgspec.Struct, frozen=True, kw_only=True):
    expected: int
    received: int
    streams: list[StreamCompleteness]

    @property
    def ratio(self) -> float:
        return self.received / self.expected if self.expected else 1.0

    def to_builtins(self) -> dict[str, object]:
        """JSON-ready: the figures plus ``ratio`` at every level."""
        return {
            "expected": self.expected,
            "received": self.received,
            "ratio": round(self.ratio, 6),
            "streams": [
                {**msgspec.to_builtins(s), "ratio": round(s.ratio, 6)} for s in self.streams
            ],
        }


def threshold_ns(period_ns: int) -> int:
    """The shortest interval that counts as a gap at ``period_ns``."""
    return int(max(GAP_PERIODS * period_ns, period_ns + GAP_SLACK_NS))


def _missing(dt_ns: int, period_ns: int) -> int:
    return max(1, round(dt_ns / period_ns) - 1) if period_ns > 0 else 1


def profile(t_ns: npt.NDArray[np.int64]) -> tuple[int, tuple[Hole, ...]]:
    """(median frame interval [ns], time gaps) of one chunk's frame times, in frame order."""
    if len(t_ns) < 2:
        return 0, ()
    dt = np.diff(t_ns)
    positive = dt[dt > 0]  # repeated or out-of-order times say nothing of the rhythm
    if not positive.size:
        return 0, ()
    period = int(np.median(positive))
    big = np.flatnonzero(dt > threshold_ns(period))
    holes = tuple(
        Hole(int(t_ns[i]), int(t_ns[i + 1]), _missing(int(dt[i]), period)) for i in big.tolist()
    )
    return period, holes


def nominal_period(spans: Iterable[ChunkSpan]) -> int:
    """The stream's frame interval: the median of its chunks' periods, weighted by frames."""
    pairs = sorted((s.period_ns, s.n) for s in spans if s.period_ns > 0)
    if not pairs:
        return 0
    half, seen = sum(n for _, n in pairs) / 2, 0
    for period, n in pairs:
        seen += n
        if seen >= half:
            return period
    return pairs[-1][0]  # pragma: no cover - the loop always returns


def stream_completeness(
    stream_id: str, spans: Sequence[ChunkSpan], laps: Sequence[LapInfo] = ()
) -> StreamCompleteness:
    """Figures of one stream from its chunk index (``spans`` in seq order) and its laps."""
    period = nominal_period(spans)
    gaps: list[Gap] = []
    received = sum(s.n for s in spans)
    if spans and spans[0].first_seq > 0:
        # Seqs start at 0: the first ones never arrived (an agent's spool dropped its oldest
        # frames before it reached the server). Their times are unknown: placed at the start.
        first = spans[0]
        gaps.append(
            Gap(
                kind="seq",
                t0_ns=first.t0_ns,
                t1_ns=first.t0_ns,
                missing=first.first_seq,
                first_seq=0,
                last_seq=first.first_seq - 1,
            )
        )
    for i, span in enumerate(spans):
        if i:
            before = spans[i - 1]
            dt = span.t0_ns - before.t1_ns
            lost = span.first_seq - before.last_seq - 1
            timed = _missing(dt, period) if period and dt > threshold_ns(period) else 0
            if lost > 0:
                gaps.append(
                    Gap(
                        kind="seq",
                        t0_ns=before.t1_ns,
                        t1_ns=span.t0_ns,
                        missing=max(lost, timed),
                        first_seq=before.last_seq + 1,
                        last_seq=span.first_seq - 1,
                    )
                )
            elif timed:
                gaps.append(Gap(kind="time", t0_ns=before.t1_ns, t1_ns=span.t0_ns, missing=timed))
        for hole in span.holes:
            # Re-judged at the stream's period: a chunk of a few frames has a poor median.
            dt = hole.t1_ns - hole.t0_ns
            if period and dt <= threshold_ns(period):
                continue
            missing = _missing(dt, period) if period else hole.missing
            gaps.append(Gap(kind="time", t0_ns=hole.t0_ns, t1_ns=hole.t1_ns, missing=missing))
    expected = received + sum(g.missing for g in gaps)
    per_lap = [
        LapCompleteness(
            lap=lap.lap,
            received=lap.frames,
            expected=lap.frames + sum(g.missing for g in gaps if lap.t0_ns <= g.t0_ns <= lap.t1_ns),
        )
        for lap in laps
        if lap.stream_id == stream_id
    ]
    return StreamCompleteness(
        stream_id=stream_id,
        period_ns=period,
        expected=expected,
        received=received,
        gaps=gaps,
        laps=per_lap,
    )


def completeness(index: dict[str, list[ChunkSpan]], laps: Sequence[LapInfo] = ()) -> Completeness:
    """Figures of a session from its chunk index (stream → spans in seq order) and laps."""
    streams = [stream_completeness(sid, spans, laps) for sid, spans in sorted(index.items())]
    return Completeness(
        expected=sum(s.expected for s in streams),
        received=sum(s.received for s in streams),
        streams=streams,
    )
