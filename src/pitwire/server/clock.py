"""The replay clock: which instant of a session a viewer is at, for any wall time.

Pure: every method takes the wall time [ns] it applies at, so tests drive it without sleeping.
One clock drives every stream of a replay, so timing, flags and positions stay in step.

The session instant is ``anchor_t + (wall - anchor_wall) * speed`` while playing and
``anchor_t`` while paused, kept within [start, end]. A delayed-live clock has no fixed end:
its end is ``wall - delay``, the live edge, which it follows at 1x once it gets there.
Every seek (and step) starts a new *epoch*; frames carry their epoch so a viewer can drop the
ones sent before the seek.
"""

from __future__ import annotations


class ReplayClock:
    def __init__(
        self,
        *,
        start_ns: int,
        end_ns: int | None,
        t_ns: int,
        wall_ns: int,
        speed: float = 1.0,
        playing: bool = True,
        delay_ns: int | None = None,
    ) -> None:
        if end_ns is None and delay_ns is None:
            raise ValueError("a clock without an end follows a live edge: give delay_ns")
        self.start_ns = start_ns
        self._end_ns = end_ns
        self.delay_ns = delay_ns
        self.speed = speed
        self.playing = playing
        self.epoch = 1
        self._anchor_t = 0
        self._anchor_wall = wall_ns
        self._anchor_t = self._clamp(t_ns, wall_ns)

    def end(self, wall_ns: int) -> int:
        """The last playable instant: the session's end, or the live edge (wall - delay)."""
        if self.delay_ns is not None:
            edge = wall_ns - self.delay_ns
            return edge if self._end_ns is None else min(edge, self._end_ns)
        return wall_ns if self._end_ns is None else self._end_ns

    def extend(self, end_ns: int) -> None:
        """A live session's stored data grew: it can play further."""
        if self._end_ns is not None:
            self._end_ns = max(self._end_ns, end_ns)

    def _clamp(self, t: int, wall_ns: int) -> int:
        return max(self.start_ns, min(t, self.end(wall_ns)))

    def at(self, wall_ns: int) -> int:
        """The session instant at ``wall_ns`` [ns since epoch]."""
        if not self.playing:
            return self._clamp(self._anchor_t, wall_ns)
        t = self._anchor_t + round((wall_ns - self._anchor_wall) * self.speed)
        edge = self.end(wall_ns)
        if t >= edge and self.delay_ns is not None:
            # At the live edge: from here on it moves with the edge, at 1x.
            self._anchor_t, self._anchor_wall = edge, wall_ns
            self.speed = 1.0
            return max(self.start_ns, edge)
        return max(self.start_ns, min(t, edge))

    def at_end(self, wall_ns: int) -> bool:
        """A stored replay that has played to its end (a live one never ends)."""
        return self.delay_ns is None and self.at(wall_ns) >= self.end(wall_ns)

    def _rebase(self, wall_ns: int) -> None:
        self._anchor_t, self._anchor_wall = self.at(wall_ns), wall_ns

    def play(self, wall_ns: int) -> None:
        if self.at_end(wall_ns):  # play at the end starts over, as players do
            self._anchor_t, self._anchor_wall = self.start_ns, wall_ns
            self.epoch += 1
        else:
            self._rebase(wall_ns)
        self.playing = True

    def pause(self, wall_ns: int) -> None:
        self._rebase(wall_ns)
        self.playing = False

    def set_speed(self, speed: float, wall_ns: int) -> None:
        self._rebase(wall_ns)
        self.speed = speed

    def seek(self, t_ns: int, wall_ns: int) -> int:
        """Jump to ``t_ns`` (clamped); returns the new epoch."""
        self._anchor_t, self._anchor_wall = self._clamp(t_ns, wall_ns), wall_ns
        self.epoch += 1
        return self.epoch

    def step(self, by_ns: int, wall_ns: int) -> int:
        """Pause and move by ``by_ns`` (either way); returns the new epoch."""
        self.pause(wall_ns)
        return self.seek(self._anchor_t + by_ns, wall_ns)
