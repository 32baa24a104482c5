"""A replay viewer's player: one clock, the tick loop, controls, conflation (server/replay.py
opens players; spec/protocol.md §Replay).

Each tick (``fps`` a second) the player samples every stream at the clock's instant and
offers one STATE frame in the viewer's single replay slot. While the previous frame is still
unwritten (a slow viewer) the tick is skipped, not queued: the next frame carries everything
that changed since the last one written. A seek starts a new epoch, withdraws the unwritten
frame of the old one, sends ``clock`` and then a keyframe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo
from pitwire.protocol import messages
from pitwire.protocol.messages import Clock, Control, GroupDesc, Replay, Status, Subscribed
from pitwire.protocol.peer import CLOSE_TOO_SLOW
from pitwire.protocol.state import StateEncoder
from pitwire.server.clock import ReplayClock
from pitwire.server.hub import Hub, LiveSession, Payload
from pitwire.server.timeline import SECOND, LiveTail, Timeline
from pitwire.store.base import StoreError

if TYPE_CHECKING:
    from pitwire.server.live import WsViewer

log = logging.getLogger("pitwire.replay")

CLOCK_EVERY_NS = SECOND  # a clock message this often while playing
LAGGING_AFTER = 5  # ticks skipped in a row before the viewer is told it is lagging
MATRIX_FRAMES = 4096  # a batch a track samples twice is copied to one array if this small


class ReplayError(Exception):
    """A replay that cannot be opened or a control that cannot be done; the message says
    why and goes to the viewer as a status error."""


@dataclass(eq=False, slots=True)
class Track:
    """One replayed stream: its group in this replay and the channels it carries."""

    stream: str
    sid: int
    gid: int
    names: list[str]
    ids: list[int]
    # The last batch sampled and its columns as one (frames x channels) array: a tick
    # then reads a car's state with one index.
    batch: FrameBatch | None = None
    matrix: npt.NDArray[np.float64] | None = None

    def sample(self, batch: FrameBatch | None, t_ns: int) -> npt.NDArray[np.float64] | None:
        if batch is None:
            return None
        i = int(np.searchsorted(batch.t_ns, t_ns, "right")) - 1
        if i < 0:
            return None
        if batch is not self.batch or batch.n > MATRIX_FRAMES:
            # A seek, the next block, or too big to copy: read the row directly.
            self.batch, self.matrix = batch, None
            cols = batch.columns
            return np.array([cols[n][i] if n in cols else np.nan for n in self.names], np.float64)
        matrix = self.matrix
        if matrix is None:  # sampled again: playing through it
            missing = np.full(batch.n, np.nan)
            columns = [batch.columns.get(n, missing) for n in self.names]
            matrix = self.matrix = np.column_stack(columns).astype(np.float64)
        row: npt.NDArray[np.float64] = matrix[i]
        return row


@dataclass(slots=True)
class ReplayFigures:
    players: int = 0
    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    conflated: int = 0
    stalls: int = 0


class Player:
    def __init__(
        self,
        *,
        viewer: WsViewer,
        request: Replay,
        live: LiveSession,
        timeline: Timeline,
        clock: ReplayClock,
        laps: list[LapInfo],
        hub: Hub,
        figures: ReplayFigures,
    ) -> None:
        self.viewer = viewer
        self.rid = request.id
        self.request = request
        self.live = live
        self.timeline = timeline
        self.clock = clock
        self.laps = laps
        self.hub = hub
        self.figures = figures
        self.fps = request.fps
        self.slot = (request.id, 0)
        self.tracks: list[Track] = []
        self.encoder = StateEncoder({})
        self._keyframe_due = True
        self._wake = asyncio.Event()
        self._skipped = 0
        self._behind_since = 0.0
        self._owed = False  # a state the viewer must still get though the clock stands
        self._store_failing = False
        self.task: asyncio.Task[None] | None = None
        self.conflated = 0

    # --- streams --------------------------------------------------------------------------

    def add_tracks(self, until_ns: int | None = None) -> list[GroupDesc]:
        """Join every stream of the session the request selects that is not joined yet
        (delayed-live: once the clock, ``until_ns``, has reached its first frame)."""
        wanted, cids = self.request.streams, self.request.channels
        have = {t.stream for t in self.tracks}
        tail = self.timeline if isinstance(self.timeline, LiveTail) else None
        added = []
        for st in self.live.streams.values():
            if st.name in have or (wanted is not None and st.sid not in wanted):
                continue
            if tail is not None and until_ns is not None:
                first = tail.first_ns(st.name)
                if first is None or first > until_ns:
                    continue
            names = [n for n in st.channels if cids is None or self.live.channel_ids[n] in cids]
            if not names:
                continue  # it carries none of the channels asked for
            track = Track(
                st.name,
                st.sid,
                self.hub.new_group_id(),
                names,
                [self.live.channel_ids[n] for n in names],
            )
            self.tracks.append(track)
            self.encoder.add_group(track.gid, [st.channels[n].resolution for n in names])
            added.append(GroupDesc(group=track.gid, stream=track.sid, channels=track.ids))
        return added

    # --- controls -------------------------------------------------------------------------

    def clock_message(self, *, ended: bool = False) -> str:
        wall = time.time_ns()
        c = self.clock
        return messages.encode(
            Clock(
                id=self.rid,
                epoch=c.epoch,
                t=c.at(wall),
                playing=c.playing,
                speed=c.speed,
                start=c.start_ns,
                end=c.end(wall),
                fps=self.fps,
                delay=None if c.delay_ns is None else c.delay_ns / SECOND,
                ended=ended,
            )
        )

    def control(self, msg: Control) -> None:
        """Apply a control now; raises ReplayError when it cannot be done."""
        wall = time.time_ns()
        clock = self.clock
        epoch = clock.epoch
        match msg.action:
            case "play":
                clock.play(wall)
            case "pause":
                clock.pause(wall)
                self._owed = True
            case "speed":
                clock.set_speed(float(msg.speed or 1.0), wall)
            case "seek":
                clock.seek(msg.t if msg.t is not None else self._lap_start(msg), wall)
            case "step":
                by = msg.by if msg.by is not None else 1.0 / self.fps
                clock.step(round(by * SECOND), wall)
            case "live":
                if clock.delay_ns is None:
                    raise ReplayError("'live' is for delayed-live replays")
                clock.seek(wall - clock.delay_ns, wall)
                clock.play(wall)
        if clock.epoch != epoch:
            self._keyframe_due = True
            self.viewer.retract(self.slot)
        self.viewer.control(self.clock_message())
        self._wake.set()

    def _lap_start(self, msg: Control) -> int:
        names = {t.sid: t.stream for t in self.tracks}
        if msg.stream is not None and msg.stream not in names:
            raise ReplayError(f"stream {msg.stream} is not in this replay")
        want = None if msg.stream is None else names[msg.stream]
        number = msg.lap or 0
        mine = [lap for lap in self.laps if want is None or lap.stream_id == want]
        starts = [lap.t0_ns for lap in mine if lap.lap == number]
        # The lap under way is not listed yet: its first frame follows the previous lap's
        # last, a frame period later (taken at 1.5 periods, so jitter does not miss it).
        starts = starts or [
            lap.t1_ns + (3 * (lap.t1_ns - lap.t0_ns) // max(2 * (lap.frames - 1), 1))
            for lap in mine
            if lap.lap == number - 1
        ]
        if not starts:
            of = f" of {want}" if want else ""
            raise ReplayError(f"no lap {number}{of} in this session")
        return min(starts)

    # --- the tick loop --------------------------------------------------------------------

    def _values(self, t_ns: int) -> dict[int, npt.NDArray[np.float64] | None]:
        batch_at = self.timeline.batch_at
        return {tr.gid: tr.sample(batch_at(tr.stream, t_ns), t_ns) for tr in self.tracks}

    def _send(self, t_ns: int, *, keyframe: bool) -> None:
        data = self.encoder.encode(
            epoch=self.clock.epoch, t_ns=t_ns, values=self._values(t_ns), keyframe=keyframe
        )
        self.viewer.offer(self.slot, Payload(data), time.time_ns())
        f = self.figures
        f.frames += 1
        f.keyframes += keyframe
        f.bytes += len(data)

    async def run(self) -> None:
        try:
            await self._run()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the viewer waiting in silence
            log.exception("replay %s of %s failed", self.rid, self.live.session_id)
            self.viewer.control(self._status("error", "replay_failed", f"replay failed: {exc}"))

    def _status(self, level: str, code: str, message: str) -> str:
        return messages.encode(
            Status(level=level, code=code, message=message, subscription=self.rid)  # type: ignore[arg-type]
        )

    async def _load(self, t_ns: int) -> bool:
        """Read what ``t_ns`` needs; False (after telling the viewer and waiting a second or
        a control) when the store cannot be read, so the loop tries again."""
        self.figures.stalls += 1
        try:
            await self.timeline.load(t_ns)
        except StoreError as exc:
            if not self._store_failing:
                self._store_failing = True
                self.viewer.control(
                    self._status(
                        "warning",
                        "store_unavailable",
                        f"replay waits for the store: {exc}; it resumes by itself",
                    )
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            return False
        if self._store_failing:
            self._store_failing = False
            self.viewer.control(self._status("info", "store_available", "replay resumed"))
        return True

    async def _run(self) -> None:
        tick = 1.0 / self.fps
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        last_clock = 0
        while True:
            wall = time.time_ns()
            clock = self.clock
            if isinstance(self.timeline, LiveTail):
                # What is kept goes back keep_ns (frames before a stream's first are none).
                clock.start_ns = max(clock.start_ns, wall - self.timeline.keep_ns)
                if self.request.streams is None and len(self.live.streams) > len(self.tracks):
                    groups = self.add_tracks(clock.at(wall))
                    if groups:
                        self.viewer.control(messages.encode(Subscribed(id=self.rid, groups=groups)))
            if self._keyframe_due:
                epoch, t = clock.epoch, clock.at(wall)
                if not self.timeline.ready(t):
                    if not await self._load(t) or epoch != clock.epoch:
                        continue  # the store failed, or sought again meanwhile
                    now = clock.at(time.time_ns())
                    if self.timeline.ready(now):  # else the instant just read: the
                        t = now  # next tick catches up
                self._keyframe_due = False
                self.viewer.retract(self.slot)
                self._send(t, keyframe=True)
                self.timeline.prefetch(t, self._ahead())
            elif clock.playing:
                t = clock.at(wall)
                if clock.at_end(wall):
                    clock.pause(wall)
                    self._owed = True
                    self.viewer.control(self.clock_message(ended=True))
                    continue
                if not self.timeline.ready(t):
                    epoch = clock.epoch
                    if not await self._load(t) or epoch != clock.epoch or self._keyframe_due:
                        continue
                    now = clock.at(time.time_ns())
                    if self.timeline.ready(now):
                        t = now
                self.timeline.prefetch(t, self._ahead())
                self._send_if_free(t)
                if wall - last_clock >= CLOCK_EVERY_NS and not self._skipped:
                    last_clock = wall
                    self.viewer.control(self.clock_message())
            elif self._owed and not self.viewer.pending(self.slot):
                # Paused (or ended) after skipped ticks: the viewer still needs the state at
                # the instant it stopped at.
                self._owed = False
                self._send(clock.at(wall), keyframe=False)
            # Sleep to the next tick (or until a control wakes us); never make up lost ticks.
            next_tick += tick
            now_s = loop.time()
            if next_tick < now_s:
                next_tick = now_s + tick
            self._wake.clear()
            playing = self.clock.playing or self._keyframe_due or self._owed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(next_tick - now_s if playing else None):
                    await self._wake.wait()
            if not playing:
                next_tick = loop.time()

    def _ahead(self) -> int:
        return int(max(2.0, 4.0 * self.clock.speed) * SECOND)

    def _send_if_free(self, t_ns: int) -> None:
        if self.viewer.pending(self.slot):
            self.conflated += 1
            self.figures.conflated += 1
            self._skipped += 1
            if self._skipped == 1:
                self._behind_since = time.monotonic()
            elif time.monotonic() - self._behind_since > self.viewer.lag_limit:
                self.viewer.kill(
                    CLOSE_TOO_SLOW, f"viewer lagged for more than {self.viewer.lag_limit:g} s"
                )
                return
            if self._skipped == LAGGING_AFTER:
                self.viewer.control(
                    self._status(
                        "warning", "lagging", "viewer is behind; replay state is being conflated"
                    )
                )
            return
        if self._skipped >= LAGGING_AFTER:
            self.viewer.control(self._status("info", "recovered", "viewer caught up"))
        self._skipped = 0
        self._send(t_ns, keyframe=False)
