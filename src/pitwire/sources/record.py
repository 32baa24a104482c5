"""Recordings: a source written to session files (``pitwire record``), and what a session
file holds (``pitwire inspect``).

:class:`Recorder` takes a source's items as the agent would (repeated packets dropped, laps
followed) and writes them with a :class:`~pitwire.sessionfile.SessionWriter`: one file per
game session, ``race.pwr``, then ``race-2.pwr``, ``race-3.pwr`` ... when the game starts
another (practice, qualifying, race), each with its completed laps.

:func:`describe` reads a session file once and says what is in it: streams with frames,
time range, median rate and completeness (frames received against frames expected at that
rate, gaps as ``analysis.completeness`` finds them), laps, and the damage the reader met.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from pitwire import sessionfile
from pitwire.agent.core import AgentCore
from pitwire.agent.run import numbered_sessions
from pitwire.analysis.completeness import profile
from pitwire.analysis.laps import LapTracker
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sources.base import SessionChange, SourceItem, StreamUpdate

log = logging.getLogger("pitwire.record")

MAX_GAPS = 100
"""Gaps listed per stream (all are counted)."""


def numbered_path(out: Path, n: int) -> Path:
    """``out`` for the first game session, ``<stem>-<n><suffix>`` for the n-th."""
    return out if n == 1 else out.with_name(f"{out.stem}-{n}{out.suffix}")


class Recorder:
    """Writes a source's items to ``out`` (see the module docstring).

    session: the first file's session id (the next get ``-2``, ``-3``, ...)
    source: the source's name, kept in each file's session record
    streams: the streams the source announces up front
    overwrite: replace existing files instead of refusing them
    started_ns: the first file's session start [ns since epoch] (0: now), e.g. a replayed
        recording's own start
    laps: completed laps to write as they are into the first file (a replayed recording's
        own, official lap times included); when given, none are derived from the frames
    """

    def __init__(
        self,
        out: Path,
        *,
        session: str,
        source: str,
        track: str = "",
        streams: list[StreamInfo] | None = None,
        overwrite: bool = False,
        started_ns: int = 0,
        laps: list[LapInfo] | None = None,
    ) -> None:
        self.out = out
        self._started_ns = started_ns
        self._given_laps = list(laps or [])
        self.source = source
        self.overwrite = overwrite
        self.session_ids = numbered_sessions(session)
        self.files: list[Path] = []
        self.frames = 0
        self.duplicates = 0
        self._known: dict[str, StreamInfo] = {s.stream_id: s for s in streams or []}
        self._unknown: set[str] = set()
        self._key: str | None = None
        self._open(track, list(self._known.values()))

    def _open(self, track: str, streams: list[StreamInfo]) -> None:
        n = len(self.files) + 1
        path = numbered_path(self.out, n)
        info = SessionInfo(
            session_id=self.session_ids(n),
            track=track,
            source=self.source,
            started_ns=(self._started_ns if n == 1 else 0) or time.time_ns(),
        )
        self.writer = sessionfile.create(path, info, streams=streams, overwrite=self.overwrite)
        self.files.append(path)
        if n == 1:
            for lap in self._given_laps:
                self.writer.add_lap(lap)
        self._declared = {s.stream_id for s in streams}
        self._core = AgentCore()
        self._laps: dict[str, LapTracker] = {}
        self._frames_in_file = 0

    @property
    def path(self) -> Path:
        return self.files[-1]

    def take(self, item: SourceItem) -> None:
        """Write one item of the source."""
        match item:
            case SessionChange(key=key, track=track):
                if self._key is not None and key != self._key and self._frames_in_file:
                    self.writer.close()
                    self._open(track, [])
                    log.info("new game session %s: recording to %s", key, self.path)
                elif track and track != self.writer.info.track:
                    self.writer.update_session(
                        msgspec.structs.replace(self.writer.info, track=track)
                    )
                self._key = key
            case StreamUpdate(info=info):
                self._known[info.stream_id] = info
                self.writer.add_stream(info)
                self._declared.add(info.stream_id)
            case (stream, batch):
                self._write(stream, batch)

    def _write(self, stream: str, batch: FrameBatch) -> None:
        if stream not in self._declared:
            info = self._known.get(stream)
            if info is None:
                if stream not in self._unknown:
                    self._unknown.add(stream)
                    log.warning("%s: frames of an unannounced stream; not recorded", stream)
                return
            self.writer.add_stream(info)
            self._declared.add(stream)
        before = self._core.duplicates
        for s, b in self._core.feed(stream, batch, time.monotonic_ns()):
            try:
                self.writer.write(s, b)
            except ValueError as exc:  # a batch without every channel of its stream
                log.warning("%s: batch not recorded: %s", s, exc)
                continue
            self.frames += b.n
            self._frames_in_file += b.n
            if self._given_laps:
                continue
            tracker = self._laps.get(s)
            if tracker is None:
                tracker = self._laps[s] = LapTracker(s)
            for lap in tracker.feed(b):
                self.writer.add_lap(lap)
        self.duplicates += self._core.duplicates - before

    def close(self) -> None:
        """Close the current file (index and trailer written). Idempotent."""
        self.writer.close()


def simulate(
    path: Path,
    *,
    cars: int = 20,
    seconds: float = 60.0,
    rate_hz: float = 60.0,
    seed: int = 0,
    session: str = "sim",
    start_ns: int = 1_700_000_000_000_000_000,
    flush_ticks: int = 6,
    close: bool = True,
) -> sessionfile.SessionWriter:
    """Write ``seconds`` of a simulated field to a session file as fast as possible, one
    block per ``flush_ticks`` ticks (as a live recording at 0.1 s flushes would); the
    writer is returned (still open when not ``close``). For tests and benchmarks."""
    from pitwire.sources.sim import SimField

    field = SimField(cars=cars, seed=seed, rate_hz=rate_hz, start_ns=start_ns)
    info = SessionInfo(
        session_id=session, track=field.track.name, source="sim", started_ns=start_ns
    )
    writer = sessionfile.create(path, info, streams=field.streams, flush_interval=3600.0)
    pending: dict[str, list[FrameBatch]] = {}
    for tick in range(round(seconds * rate_hz)):
        for car, batch in field.step():
            pending.setdefault(car, []).append(batch)
        if (tick + 1) % flush_ticks == 0:
            for name, parts in pending.items():
                writer.write(name, FrameBatch.concat(parts))
            pending.clear()
            writer.flush()
    for name, parts in pending.items():
        writer.write(name, FrameBatch.concat(parts))
    writer.flush()
    if close:
        writer.close()
    return writer


# -- describing a session file --------------------------------------------------------------


def _stream_figures(t: np.ndarray, session_t0: int) -> dict[str, Any]:
    """Rate, completeness and gaps of one stream's frame times (analysis.completeness's
    rules, the same the stores apply)."""
    n = len(t)
    out: dict[str, Any] = {
        "rate_hz": None,
        "expected": n,
        "completeness": 1.0 if n else 0.0,
        "gaps": 0,
        "gap_list": [],
    }
    period, holes = profile(t)
    if not period:
        return out
    expected = n + sum(h.missing for h in holes)
    out.update(
        rate_hz=round(1e9 / period, 3),
        expected=expected,
        completeness=round(n / expected, 6),
        gaps=len(holes),
        gap_list=[
            {
                "at_s": round((h.t0_ns - session_t0) / 1e9, 3),
                "length_s": round((h.t1_ns - h.t0_ns) / 1e9, 3),
                "missing": h.missing,
            }
            for h in holes[:MAX_GAPS]
        ],
    )
    return out


def describe(
    reader: sessionfile.SessionReader, progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """What ``reader``'s file holds (JSON-ready; times [ns since epoch], durations [s]).

    Reads every frame once; ``progress`` is called with the frames just read."""
    streams = reader.streams
    times: dict[str, list[np.ndarray]] = {s.stream_id: [] for s in streams}
    trackers = {s.stream_id: LapTracker(s.stream_id) for s in streams}
    derived: list[LapInfo] = []
    for stream, batch in reader.batches():
        times[stream].append(batch.t_ns)
        if not reader.laps:
            derived.extend(trackers[stream].feed(batch))
        if progress is not None:
            progress(batch.n)
    joined = {k: np.concatenate(v) if v else np.empty(0, np.int64) for k, v in times.items()}
    nonempty = [t for t in joined.values() if len(t)]
    t0 = min((int(t.min()) for t in nonempty), default=0)
    t1 = max((int(t.max()) for t in nonempty), default=0)
    laps = reader.laps or derived
    info = reader.info
    return {
        "path": str(reader.path),
        "session": {
            "session_id": info.session_id,
            "track": info.track,
            "source": info.source,
            "started_ns": info.started_ns,
        },
        "writer": reader.writer,
        "frames": sum(len(t) for t in joined.values()),
        "t0_ns": t0,
        "t1_ns": t1,
        "duration_s": round((t1 - t0) / 1e9, 3),
        "streams": [
            {
                "stream_id": s.stream_id,
                "driver": s.driver,
                "car": s.car,
                "channels": len(s.channels),
                "frames": len(joined[s.stream_id]),
                "t0_ns": int(joined[s.stream_id][0]) if len(joined[s.stream_id]) else 0,
                "t1_ns": int(joined[s.stream_id][-1]) if len(joined[s.stream_id]) else 0,
                **_stream_figures(joined[s.stream_id], t0),
            }
            for s in streams
        ],
        "laps": [
            {
                "stream_id": lap.stream_id,
                "lap": lap.lap,
                "lap_time": lap.lap_time,
                "frames": lap.frames,
                "t0_ns": lap.t0_ns,
                "t1_ns": lap.t1_ns,
            }
            for lap in laps
        ],
        "laps_derived": not reader.laps and bool(derived),
        "index_rebuilt": reader.index_rebuilt,
        "index": index_state(reader),
        "problems": list(reader.problems),
        "readable": bool(sum(len(t) for t in joined.values())) or not reader.problems,
        "session_id_from_file_name": session_id_from_file_name(reader),
    }


INDEX_STATES = {
    "ok": "ok",
    "found": "found by scanning (the file's trailer, which points to it, is damaged)",
    "missing": "not written yet (the file is still being written, or its writer stopped "
    "before closing it); rebuilt by scanning",
    "damaged": "not found (the file was cut short or is damaged); rebuilt by scanning up to "
    "the damage",
    "none": "none (nothing in the file could be read)",
}
"""What :func:`index_state` names, in words (``pitwire inspect`` prints them)."""


def session_id_from_file_name(reader: sessionfile.SessionReader) -> bool:
    """True when the file's records are unreadable and the session id the reader gives is
    only its file name (a placeholder, not a recorded id)."""
    return (
        bool(reader.problems)
        and not reader.streams
        and reader.info == SessionInfo(session_id=Path(reader.path).stem)
    )


def index_state(reader: sessionfile.SessionReader) -> str:
    """How the reader found the file's index (a key of :data:`INDEX_STATES`): ``ok`` (read
    through the trailer), ``found`` (no usable trailer, but the index block was met while
    scanning: only the end of the file is damaged), ``missing`` (not written: a file still
    being written or not closed; every block read), ``damaged`` (not found, and the scan
    stopped at damage), ``none`` (nothing readable at all)."""
    if session_id_from_file_name(reader):
        return "none"
    if not reader.index_rebuilt:
        return "ok"
    if reader.problems:
        return "damaged"
    data_end = getattr(reader, "data_end", None)
    size = getattr(reader, "size", None)
    if isinstance(data_end, int) and isinstance(size, int) and data_end < size:
        return "found"  # the scan stopped at an intact index block before the end
    return "missing"
