"""The Python API: a few lines from ``import pitwire`` to frames.

.. code-block:: python

    import pitwire

    with pitwire.capture("f1", record="race.pwr") as cap:   # live, recorded as it comes
        for stream, batch in cap:
            print(stream, batch.columns["speed"][-1])

    s = pitwire.open("race.pwr")                            # afterwards
    s.laps()
    df = s.to_pandas(channels=["speed", "throttle"])

``capture`` runs the source (any ``pitwire agent --source``) on its own thread and event loop;
iterating yields ``(stream_id, FrameBatch)`` as the source produces them. Callbacks
(``on_frame(stream, batch)``, ``on_lap(lap)``) are for people who prefer them: pass them and
call ``run()``. ``open`` reads a ``.pwr`` session file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from pitwire.analysis.laps import LapTracker
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sessionfile import SessionReader, SessionWriter
from pitwire.sources.base import SessionChange, Source, SourceError, StreamUpdate

if TYPE_CHECKING:
    import pandas as pd

OnFrame = Callable[[str, FrameBatch], None]
OnLap = Callable[[LapInfo], None]

_END = object()


class Capture:
    """A running source (see ``capture``). Iterate it, or call ``run()`` with callbacks."""

    def __init__(
        self,
        source: Source,
        *,
        record: str | os.PathLike[str] | None = None,
        session: str | None = None,
        on_frame: OnFrame | None = None,
        on_lap: OnLap | None = None,
        max_pending: int = 10_000,
        export: list[str] | None = None,
    ) -> None:
        if export:
            from pitwire.export import get_writer

            for fmt in export:
                get_writer(fmt)  # an unknown format fails now, not after the session
            if record is None:
                raise ValueError("export= writes the recording in other formats: give record=")
        self.export = list(export or [])
        self.exported: list[Path] = []
        self.source = source
        self.on_frame = on_frame
        self.on_lap = on_lap
        self.session = session or f"{source.info.source}-{time.strftime('%Y%m%d-%H%M%S')}"
        self.record = Path(record) if record is not None else None
        self.writer: SessionWriter | None = None
        self.laps: list[LapInfo] = []
        self.frames = 0
        self.dropped = 0
        """Frames the iterating code never saw because it did not keep up (see _offer)."""
        self._trackers: dict[str, LapTracker] = {}
        self._queue: queue.Queue[object] = queue.Queue(max_pending)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._files = 0
        self._key: str | None = None
        self._in_file = 0
        self._recorded: list[Path] = []

    # -- lifetime ---------------------------------------------------------------------------

    def start(self) -> Capture:
        if self._thread is None:
            self._thread = threading.Thread(target=self._main, name="pitwire-capture", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the source and close the recording (frames already read stay readable)."""
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(task.cancel)
        if self._thread is not None:
            self._thread.join(10)

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def run(self, duration: float | None = None) -> None:
        """Call the callbacks until the source ends, ``duration`` [s] passes or Ctrl+C."""
        deadline = None if duration is None else time.monotonic() + duration
        try:
            for _ in self._items(deadline):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    def __iter__(self) -> Iterator[tuple[str, FrameBatch]]:
        self.start()
        return self._items(None)

    # -- inside -----------------------------------------------------------------------------

    def _items(self, deadline: float | None) -> Iterator[tuple[str, FrameBatch]]:
        self.start()
        while True:
            wait = 0.1 if deadline is None else max(0.0, min(0.1, deadline - time.monotonic()))
            try:
                item = self._queue.get(timeout=wait)
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    return
                continue
            if item is _END:
                if self._error is not None:
                    raise self._error
                return
            yield cast(tuple[str, FrameBatch], item)

    def _main(self) -> None:
        try:
            asyncio.run(self._pump())
        except BaseException as exc:  # handed to the iterating thread
            self._error = exc
        finally:
            if self.writer is not None:
                self.writer.close()
            self._export_files()
            self._offer(_END)

    def _export_files(self) -> None:
        """Write every recorded file in the ``export`` formats too, next to it."""
        if not self.export or self.record is None:
            return
        from pitwire.export import export_session

        for path in self._recorded:
            with SessionReader(path) as reader:
                for fmt in self.export:
                    self.exported += export_session(reader, fmt, path.parent)

    async def _pump(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        with contextlib.suppress(asyncio.CancelledError):
            async for item in self.source:
                match item:
                    case StreamUpdate(info=info):
                        if self.record is not None:
                            self._writer().add_stream(info)
                    case SessionChange(track=track, key=key):
                        self._session_change(key, track)
                    case (stream, batch):
                        self._frames(stream, batch)

    def _writer(self) -> SessionWriter:
        if self.writer is None:
            if self.record is None:
                raise RuntimeError("no recording was asked for")
            path = self.record
            if self._files:
                path = path.with_name(f"{path.stem}-{self._files + 1}{path.suffix}")
            info = SessionInfo(
                session_id=self.session if not self._files else f"{self.session}-{self._files + 1}",
                track=self.source.info.track,
                source=self.source.info.source,
                started_ns=time.time_ns(),
            )
            self.writer = SessionWriter(path, info, streams=self.source.info.streams)
            self._recorded.append(path)
            self._files += 1
            self._in_file = 0
        return self.writer

    def _session_change(self, key: str, track: str) -> None:
        if self.record is None:
            return
        another = self._key is not None and key != self._key
        if another and self.writer is not None and self._in_file:
            self.writer.close()  # the game began another session: another file
            self.writer = None
        self._key = key
        writer = self._writer()
        if track and track != writer.info.track:
            writer.update_session(
                SessionInfo(
                    session_id=writer.info.session_id,
                    track=track,
                    source=writer.info.source,
                    started_ns=writer.info.started_ns,
                )
            )

    def _frames(self, stream: str, batch: FrameBatch) -> None:
        self.frames += batch.n
        if self.record is not None:
            writer = self._writer()
            if not writer.has_stream(stream):
                info = next((s for s in self.source.info.streams if s.stream_id == stream), None)
                writer.add_stream(info or _inferred(stream, batch))
            writer.write(stream, batch)
            self._in_file += batch.n
        tracker = self._trackers.get(stream)
        if tracker is None:
            tracker = self._trackers[stream] = LapTracker(stream)
        for lap in tracker.feed(batch):
            self.laps.append(lap)
            if self.writer is not None:
                self.writer.add_lap(lap)
            if self.on_lap is not None:
                self.on_lap(lap)
        if self.on_frame is not None:
            self.on_frame(stream, batch)
        self._offer((stream, batch))

    def _offer(self, item: object) -> None:
        """Queue ``item`` for the iterating thread without ever blocking the source: past
        ``max_pending`` the oldest waiting batch is dropped (and counted in ``dropped``);
        the recording and the callbacks have already had it."""
        while True:
            try:
                self._queue.put_nowait(item)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    dropped = self._queue.get_nowait()
                    if isinstance(dropped, tuple):
                        self.dropped += dropped[1].n


def _inferred(stream: str, batch: FrameBatch) -> StreamInfo:
    from pitwire.model.channels import STANDARD, Channel

    channels = [
        STANDARD[name]
        if name in STANDARD
        else Channel(name=name, dtype=str(col.dtype)[0] + str(col.dtype.itemsize))  # type: ignore[arg-type]
        for name, col in batch.columns.items()
    ]
    return StreamInfo(stream_id=stream, channels=channels)


def capture(
    source: str = "sim",
    *,
    record: str | os.PathLike[str] | None = None,
    session: str | None = None,
    on_frame: OnFrame | None = None,
    on_lap: OnLap | None = None,
    export: list[str] | None = None,
    **options: Any,
) -> Capture:
    """Capture from ``source`` (``sim``, ``f1``, ``forza``, ``acc``, ... as ``pitwire agent
    --source``); ``record`` also writes a ``.pwr`` session file, and ``export`` (e.g.
    ``["parquet", "ld"]``) the writers that also write it, in those formats, when the capture
    ends (the ``.pwr`` file is the crash-safe journal they are made from). ``options`` are
    the source's (``cars``, ``duration`` for sim; ``port``, ``bind``, ``forward``, ``map_files``,
    ``replay_raw``, ... for games). Raises SourceError for an unknown source or bad options.
    """
    from pitwire.sources.registry import GAMES, CaptureOptions, make_source

    if source in GAMES or source == "auto":
        fields = set(CaptureOptions.__dataclass_fields__)
        unknown = set(options) - fields
        if unknown:
            raise SourceError(
                f"unknown option(s) for {source}: {', '.join(sorted(unknown))} "
                f"(known: {', '.join(sorted(fields))})"
            )
        opts = CaptureOptions(**options)
        if opts.forward:
            from pitwire.sources.udp import parse_address

            opts.forward = [parse_address(f) if isinstance(f, str) else f for f in opts.forward]
        src = make_source(source, capture=opts)
    else:
        src = make_source(source, **options)
    return Capture(
        src, record=record, session=session, on_frame=on_frame, on_lap=on_lap, export=export
    )


class Session:
    """A recorded session (``pitwire.open``): its streams, laps and frames."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.reader = SessionReader(path)
        self.path = self.reader.path

    @property
    def info(self) -> SessionInfo:
        return self.reader.info

    @property
    def streams(self) -> list[StreamInfo]:
        return self.reader.streams

    @property
    def problems(self) -> list[str]:
        """Damage found in the file (reading stopped there)."""
        return self.reader.problems

    def __repr__(self) -> str:
        return (
            f"Session({self.info.session_id!r}, track={self.info.track!r}, "
            f"streams={[s.stream_id for s in self.streams]}, frames={self.reader.frames_total})"
        )

    def frames(
        self, stream: str | None = None, *, t0_ns: int | None = None, t1_ns: int | None = None
    ) -> FrameBatch:
        """One stream's frames (the only stream when there is one)."""
        return self.reader.frames(self._stream(stream), t0_ns=t0_ns, t1_ns=t1_ns)

    def laps(self, stream: str | None = None) -> list[LapInfo]:
        """Completed laps (of ``stream``, or of every stream), as recorded; computed from the
        ``lap`` channel when the file has none. KeyError for an unknown stream."""
        if stream is not None:
            self.reader.stream(stream)  # an unknown stream raises, naming the known ones
        laps = list(self.reader.laps)
        if not laps:
            for s in self.streams:
                tracker = LapTracker(s.stream_id)
                for _, batch in self.reader.batches([s.stream_id]):
                    laps.extend(tracker.feed(batch))
        return [lap for lap in laps if stream is None or lap.stream_id == stream]

    def to_pandas(
        self,
        channels: str | list[str] | None = None,
        *,
        stream: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """A DataFrame of ``channels`` (all when None): one row per frame, columns ``stream``,
        ``time`` (UTC) and the channels; every stream unless ``stream`` is given. Needs
        pandas (``pip install 'pitwire[pandas]'``)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install 'pitwire[pandas]'") from None
        if isinstance(channels, str):
            channels = [channels]
        if stream is None:
            wanted = [s.stream_id for s in self.streams]
        else:
            wanted = [stream] if isinstance(stream, str) else list(stream)
            for sid in wanted:
                self.reader.stream(sid)  # an unknown stream raises, naming the known ones
        frames = []
        for sid in wanted:
            batch = self.reader.frames(sid)
            names = channels if channels is not None else list(batch.columns)
            missing = [n for n in names if n not in batch.columns]
            if missing:
                raise KeyError(
                    f"stream {sid!r} has no channel(s) {', '.join(missing)} "
                    f"(it has: {', '.join(batch.columns)})"
                )
            data: dict[str, Any] = {
                "stream": sid,
                "time": pd.to_datetime(batch.t_ns, unit="ns", utc=True),
            }
            data.update({n: batch.columns[n] for n in names})
            frames.append(pd.DataFrame(data))
        if not frames:
            return pd.DataFrame(columns=["stream", "time", *(channels or [])])
        return pd.concat(frames, ignore_index=True)

    def export(self, fmt: str, dest: str | os.PathLike[str], **options: Any) -> list[Path]:
        """Write the session as ``csv``, ``jsonl``, ``parquet`` or ``ld`` (MoTeC) into ``dest``."""
        from pitwire.export import export_session

        return export_session(self.reader, fmt, Path(dest), **options)

    def _stream(self, stream: str | None) -> str:
        if stream is not None:
            return stream
        if len(self.streams) == 1:
            return self.streams[0].stream_id
        raise ValueError(
            f"{self.path} has {len(self.streams)} streams "
            f"({', '.join(s.stream_id for s in self.streams)}): name one with stream="
        )

    def close(self) -> None:
        self.reader.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(path: str | os.PathLike[str]) -> Session:
    """Open a ``.pwr`` session file."""
    return Session(path)
