"""Lap detection from the ``lap`` channel.

``LapTracker`` is fed a stream's batches in order and returns each lap when the next one
starts. The official lap time is the ``lap_time`` channel's last value in the lap when the
source provides it, else the time between the lap's first and last frame.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo


def lap_cuts(laps: np.ndarray | None, previous: float | None) -> list[int]:
    """Indices where a new lap starts in ``laps`` (the lap column of a batch), given the lap of
    the frame before it (``previous``, None when unknown)."""
    if laps is None or len(laps) == 0:
        return []
    # NaN (lap not known yet) is a value of its own: NaN to NaN is no change.
    unknown = np.isnan(laps)
    changed = (laps[1:] != laps[:-1]) & ~(unknown[1:] & unknown[:-1])
    cuts: list[int] = (np.flatnonzero(changed) + 1).tolist()
    if previous is not None and laps[0] != previous and not (unknown[0] and previous != previous):
        cuts.insert(0, 0)
    return cuts


class LapTracker:
    """Follows one stream's lap counter; ``feed`` returns the laps completed by a batch."""

    __slots__ = ("_frames", "_lap", "_last_lap_time", "_stream_id", "_t0", "_t1")

    def __init__(self, stream_id: str) -> None:
        self._stream_id = stream_id
        self._lap: int | None = None
        self._t0 = 0
        self._t1 = 0
        self._frames = 0
        self._last_lap_time: float | None = None

    @property
    def lap(self) -> int | None:
        """The lap in progress (None before the first frame with a lap value)."""
        return self._lap

    def current(self) -> LapInfo | None:
        """The lap in progress so far."""
        if self._lap is None:
            return None
        return LapInfo(
            stream_id=self._stream_id,
            lap=self._lap,
            t0_ns=self._t0,
            t1_ns=self._t1,
            frames=self._frames,
            lap_time=self._last_lap_time,
        )

    def _finish(self, lap: int, t_next: int) -> LapInfo:
        # The lap ends where the next one starts: add the last frame's interval.
        tail = (t_next - self._t1) / 1e9
        if self._last_lap_time is not None:
            lap_time = self._last_lap_time + tail
        else:
            lap_time = (t_next - self._t0) / 1e9
        info = LapInfo(
            stream_id=self._stream_id,
            lap=lap,
            t0_ns=self._t0,
            t1_ns=self._t1,
            frames=self._frames,
            lap_time=round(lap_time, 6),
        )
        self._lap = None
        return info

    def feed(self, batch: FrameBatch) -> list[LapInfo]:
        laps = batch.columns.get("lap")
        if laps is None or batch.n == 0:
            return []
        times = batch.columns.get("lap_time")
        done: list[LapInfo] = []
        starts = [0, *[c for c in lap_cuts(laps, self._lap) if c > 0], batch.n]
        for a, b in pairwise(starts):
            if np.isnan(laps[a]):
                continue  # frames whose lap is not known (yet) belong to no lap
            lap = int(laps[a])
            if self._lap is not None and lap != self._lap:
                done.append(self._finish(self._lap, int(batch.t_ns[a])))
            if self._lap is None:
                self._lap, self._t0, self._frames, self._last_lap_time = (
                    lap,
                    int(batch.t_ns[a]),
                    0,
                    None,
                )
            self._t1 = int(batch.t_ns[b - 1])
            self._frames += b - a
            if times is not None and np.isfinite(times[b - 1]):  # NaN: not sent yet
                self._last_lap_time = float(times[b - 1])
        return done
