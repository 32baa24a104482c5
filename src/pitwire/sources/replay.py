"""``replay``: a recorded session through the live path (``pitwire agent --source replay``).

:class:`ReplaySource` plays a ``.pwr`` session file (or a Parquet file written by the
exporter) as a Source: first a ``SessionChange`` (the recorded track) and a ``StreamUpdate``
per stream (driver, car, channels), then every frame once, the streams interleaved in time
order (:class:`Interleaver`, the pure core) and, when ``speed`` > 0, paced by the frames'
timestamps at ``speed`` x (about 0.1 s of data per batch), so that a recorded session looks
live to the server and dashboard. A damaged file plays what is readable; its problems are
logged (the reader's warnings) and kept in ``problems``.

A file that cannot be played at all (missing, not a session file) raises ``SourceError``;
damage inside a file never raises. ``pitwire import`` is this source at speed 0 through the
agent (:mod:`pitwire.sources.importer`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sources.base import SessionChange, SourceError, SourceInfo, SourceItem, StreamUpdate

log = logging.getLogger("pitwire.sources")

PACED_STEP_S = 0.1
"""Data per batch when paced [s] (like a live source's batches)."""
FAST_STEP_S = 2.0
"""Data per batch at speed 0 [s] (fewer, larger messages)."""
LOOKAHEAD_S = 2.0
"""How far past a window a file is read before the window is played [s]: a stream's frames
may sit this late in a file (the writer flushes every 0.1 s) and still play in time order."""


# -- what is played -------------------------------------------------------------------------


class Recording:
    """An open recording: a ``.pwr`` reader, or a session read from Parquet into memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self.index_rebuilt = False
        """A session file without its index (still being written, or its writer crashed)."""
        self._reader: Any = None
        self._memory: Any = None
        if not path.exists():
            raise SourceError(f"no such file: {path}")
        if path.is_dir():
            raise SourceError(f"{path} is a folder, not a session file")
        if path.suffix.lower() == ".parquet":
            self._memory = _read_parquet(path)
            self.info: SessionInfo = self._memory.info
            self.streams: list[StreamInfo] = list(self._memory.streams)
            self.laps: list[LapInfo] = list(self._memory.laps)
            self.frames_total = sum(b.n for b in self._memory.batches.values())
            return
        from pitwire import sessionfile

        try:
            self._reader = sessionfile.open(path)
        except sessionfile.SessionFileError as exc:
            raise SourceError(str(exc)) from None
        self.info = self._reader.info
        self.streams = self._reader.streams
        self.laps = list(self._reader.laps)
        self.frames_total = self._reader.frames_total
        self.problems = self._reader.problems  # the reader's own list: grows while decoding
        self.index_rebuilt = bool(self._reader.index_rebuilt)

    @property
    def time_ordered(self) -> bool:
        """Batches come in (about) time order across streams (a session file), not stream
        after stream (a table)."""
        return self._reader is not None

    def batches(self, t0_ns: int | None = None) -> Iterator[tuple[str, FrameBatch]]:
        """Every frame (a session file: only its segments that reach ``t0_ns``, if given),
        each batch with its stream's declared channels (see :func:`conform`)."""
        declared = {s.stream_id: [(c.name, c.dtype) for c in s.channels] for s in self.streams}
        if self._reader is not None:
            for stream, batch in self._reader.batches(t0_ns=t0_ns):
                channels = declared.get(stream)
                yield stream, batch if channels is None else conform(batch, channels)
            return
        for s in self.streams:
            batch = self._memory.frames(s.stream_id)
            if batch.n:
                yield s.stream_id, conform(batch, declared[s.stream_id])

    def frames_before(self, t_ns: int) -> int:
        """Frames in the parts of a session file that end before ``t_ns`` (from its index)."""
        if self._reader is None:
            return 0
        return sum(
            n
            for seg in self._reader.segments
            if all(t1 < t_ns for _, t1, _, _ in seg.streams.values())
            for _, _, _, n in seg.streams.values()
        )

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


def conform(batch: FrameBatch, channels: Sequence[tuple[str, str]]) -> FrameBatch:
    """``batch`` with exactly ``channels`` (name, dtype) as its columns, in that order: one
    it lacks is NaN, one not among them is left out (what was announced is what is sent)."""
    cols = batch.columns
    if len(cols) == len(channels) and all(a == b for a, (b, _) in zip(cols, channels, strict=True)):
        return batch
    return FrameBatch.trusted(
        batch.t_ns,
        {n: cols[n] if n in cols else np.full(batch.n, np.nan, dtype) for n, dtype in channels},
    )


def concat(parts: Sequence[FrameBatch]) -> FrameBatch:
    """One stream's batches joined in order; batches with other channels than the first
    are joined over all of their channels (in order of appearance, NaN where a batch lacks
    one)."""
    if len(parts) == 1:
        return parts[0]
    names = list(parts[0].columns)
    if any(list(p.columns) != names for p in parts[1:]):
        dtypes: dict[str, np.dtype[Any]] = {}
        for p in parts:
            for n, c in p.columns.items():
                dtypes[n] = np.promote_types(dtypes.get(n, c.dtype), c.dtype)
        parts = [conform(p, [(n, str(d)) for n, d in dtypes.items()]) for p in parts]
    return FrameBatch.concat(parts)


def _read_parquet(path: Path) -> Any:
    try:
        from pitwire.export import read_parquet
    except ImportError:
        raise SourceError(f"{path}: this pitwire cannot read Parquet files") from None
    try:
        return read_parquet(path)
    except (ValueError, OSError) as exc:  # ExportError, MissingDependency, pyarrow's errors
        raise SourceError(f"{path}: {exc}") from None


# -- interleaving (pure) --------------------------------------------------------------------


@dataclass(slots=True)
class Window:
    """What to play when data time reaches ``end_ns``: each stream's frames before it."""

    end_ns: int
    items: list[tuple[str, FrameBatch]]


class Interleaver:
    """Merges per-stream batches, read in file order, into time windows of ``step_ns``.

    ``feed`` returns the windows that ended ``lookahead_ns`` before the latest frame read
    (``None``: none until ``finish``, for input that comes stream after stream); ``finish``
    returns the rest. Each stream's frames keep their order (their seq order) and every
    frame comes out exactly once; a frame that shows up later than the lookahead plays in
    the next window. A stream's batches joined in one window have the columns of all of
    them (:func:`concat`).
    """

    def __init__(self, *, step_ns: int, lookahead_ns: int | None) -> None:
        if step_ns <= 0:
            raise ValueError(f"step_ns must be > 0, not {step_ns}")
        self.step_ns = step_ns
        self.lookahead_ns = lookahead_ns
        self.origin_ns: int | None = None
        self._end = 0
        self._horizon = 0
        self._pending: dict[str, deque[tuple[FrameBatch, bool]]] = {}

    def feed(self, stream: str, batch: FrameBatch) -> list[Window]:
        if batch.n == 0:
            return []
        if self.origin_ns is None:
            self.origin_ns = batch.t0_ns
            self._end = self.origin_ns + self.step_ns
            self._horizon = batch.t0_ns
        t = batch.t_ns
        ordered = t.size < 2 or bool((t[1:] >= t[:-1]).all())
        self._pending.setdefault(stream, deque()).append((batch, ordered))
        last = int(t[-1]) if ordered else int(t.max())
        if last > self._horizon:
            self._horizon = last
        if self.lookahead_ns is None or self._end > self._horizon - self.lookahead_ns:
            return []
        return self._windows(self._horizon - self.lookahead_ns)

    def finish(self) -> list[Window]:
        return self._windows(None)

    def _windows(self, upto: int | None) -> list[Window]:
        out: list[Window] = []
        while any(self._pending.values()):
            if upto is not None and self._end > upto:
                break
            items = self._take(self._end)
            if items:
                out.append(Window(self._end, items))
                self._end += self.step_ns
                continue
            # Nothing before this window's end: jump to the window of the earliest frame.
            first = min(int(q[0][0].t_ns[0]) for q in self._pending.values() if q)
            assert self.origin_ns is not None
            self._end = self.origin_ns + ((first - self.origin_ns) // self.step_ns + 1) * (
                self.step_ns
            )
        return out

    def _take(self, end: int) -> list[tuple[str, FrameBatch]]:
        items: list[tuple[str, FrameBatch]] = []
        for stream, queue in self._pending.items():
            parts: list[FrameBatch] = []
            while queue:
                batch, ordered = queue[0]
                if ordered:
                    k = int(np.searchsorted(batch.t_ns, end, side="left"))
                else:  # the leading run before ``end`` (order within a stream is kept)
                    late = np.flatnonzero(batch.t_ns >= end)
                    k = int(late[0]) if late.size else batch.n
                if k == batch.n:
                    parts.append(batch)
                    queue.popleft()
                    continue
                if k:
                    parts.append(batch.slice(0, k))
                    queue[0] = (batch.slice(k, batch.n), ordered)
                break
            if parts:
                items.append((stream, concat(parts)))
        return items


# -- the source -----------------------------------------------------------------------------


class ReplaySource:
    """The Source protocol over a recording at ``speed`` x its recorded pace (0 = as fast as
    the consumer takes it; see the module docstring).

    after_ns: per stream, play only frames after this time [ns since epoch] (what a server
        already stores); skipped frames are counted in ``frames_skipped``
    gate: awaited before each batch is played (an importer's flow control)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        speed: float = 1.0,
        after_ns: Mapping[str, int] | None = None,
        gate: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        if not speed >= 0:
            raise SourceError(f"replay speed must be >= 0, not {speed}")
        self.path = Path(path)
        self.speed = speed
        self.after_ns = dict(after_ns or {})
        self.gate = gate
        self._recording: Recording | None = Recording(self.path)
        rec = self._recording
        self.recorded = rec.info
        self.laps = list(rec.laps)
        """The recording's completed laps, as recorded (the source itself plays frames only)."""
        self.frames_total = rec.frames_total
        self.problems = rec.problems
        self.index_rebuilt = rec.index_rebuilt
        self.frames_played = 0
        self.frames_skipped = 0
        self._trimmed = 0
        self._info = SourceInfo(
            source=rec.info.source or "replay",
            track=rec.info.track,
            streams=list(rec.streams),
            started_ns=rec.info.started_ns,
        )

    @property
    def info(self) -> SourceInfo:
        return self._info

    def close(self) -> None:
        """Close the file if it was opened and never played."""
        if self._recording is not None:
            self._recording.close()
            self._recording = None

    async def __aiter__(self) -> AsyncIterator[SourceItem]:
        rec, self._recording = self._recording or Recording(self.path), None
        self.problems = rec.problems
        try:
            yield SessionChange(key=rec.info.session_id, track=rec.info.track)
            for s in rec.streams:
                yield StreamUpdate(s)
            step = PACED_STEP_S if self.speed > 0 else FAST_STEP_S
            merge = Interleaver(
                step_ns=int(step * 1e9),
                lookahead_ns=int(LOOKAHEAD_S * 1e9) if rec.time_ordered else None,
            )
            clock: list[float] = []
            ids = [s.stream_id for s in rec.streams]
            start = (  # everything before what every stream has already is skipped anyway
                min(self.after_ns[s] for s in ids) + 1
                if ids and all(s in self.after_ns for s in ids)
                else None
            )
            self.frames_played = self.frames_skipped = self._trimmed = seen = 0
            if start is not None:
                self.frames_skipped += rec.frames_before(start)  # a first count, for progress
            for stream, batch in rec.batches(start):
                seen += batch.n
                for window in merge.feed(stream, self._skip(stream, batch)):
                    async for item in self._play(window, merge, clock):
                        yield item
            for window in merge.finish():
                async for item in self._play(window, merge, clock):
                    yield item
            if start is not None and not rec.problems:  # the exact count
                self.frames_skipped = rec.frames_total - seen + self._trimmed
        finally:
            rec.close()
            if rec.problems:
                log.warning(
                    "%s is damaged (%d problems); played what was readable: %d frames",
                    self.path,
                    len(rec.problems),
                    self.frames_played,
                )

    def _skip(self, stream: str, batch: FrameBatch) -> FrameBatch:
        after = self.after_ns.get(stream)
        if after is None or batch.n == 0 or batch.t_ns[0] > after:
            return batch
        keep = batch.t_ns > after
        kept = int(keep.sum())
        self.frames_skipped += batch.n - kept
        self._trimmed += batch.n - kept
        if kept == 0:
            return batch.slice(0, 0)
        return FrameBatch(batch.t_ns[keep], {n: c[keep] for n, c in batch.columns.items()})

    async def _play(
        self, window: Window, merge: Interleaver, clock: list[float]
    ) -> AsyncIterator[SourceItem]:
        loop = asyncio.get_running_loop()
        if self.speed > 0:
            if not clock:
                clock.append(loop.time())
            assert merge.origin_ns is not None
            due = clock[0] + (window.end_ns - merge.origin_ns) / 1e9 / self.speed
            await asyncio.sleep(max(0.0, due - loop.time()))
        else:
            await asyncio.sleep(0)  # let the uplink run
        if self.gate is not None:
            await self.gate()
        for stream, batch in window.items:
            self.frames_played += batch.n
            yield StreamId(stream), batch
