"""Writing ``.pwr`` session files: append-only, flushed at least every ``flush_interval``.

Frames wait in memory per stream; a flush turns everything waiting into one DATA block (all
streams, compressed together on the current segment's zstd stream) and hands it to the OS,
so a crash of the writing process loses at most ``flush_interval`` of data. A background
thread flushes when nothing else does. Every method takes the writer's lock: several sources
(threads or tasks) may write through one file. ``close`` writes the index and the trailer.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path
from time import monotonic
from types import TracebackType

import zstandard

from pitwire import __version__
from pitwire.codec.carry import CarryEncoder, Layout, Rows
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sessionfile import format as fmt


class SessionWriter:
    """Creates ``path`` (refusing to overwrite unless ``overwrite``) for session ``info``.

    flush_interval: longest time frames wait in memory [s]
    segment_s: a new segment (a point a reader can start decoding from, i.e. seek
        granularity) at least this often in data time [s]
    segment_bytes: ... or after this many uncompressed bytes
    fsync: also ask the OS to put each flush on disk (survives power loss, costs time)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: SessionInfo,
        *,
        streams: list[StreamInfo] | None = None,
        flush_interval: float = 0.1,
        segment_s: float = 10.0,
        segment_bytes: int = 4 << 20,
        level: int = 3,
        fsync: bool = False,
        overwrite: bool = False,
    ) -> None:
        if not flush_interval > 0:
            raise ValueError(f"flush_interval must be > 0 s, not {flush_interval}")
        self.path = Path(path)
        self.info = info
        self.flush_interval = flush_interval
        self.segment_ns = int(segment_s * 1e9)
        self.segment_bytes = segment_bytes
        self.level = level
        self.fsync = fsync
        try:
            if overwrite:
                # A new file, not the old one truncated: a process still writing the old one
                # keeps its own (now unlinked) file instead of corrupting this one.
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
            self._file = open(self.path, "xb")  # noqa: SIM115 - closed in close()
        except FileExistsError:
            raise fmt.SessionFileError(
                f"{self.path} exists; choose another name or remove it first"
            ) from None
        except OSError as exc:
            raise fmt.SessionFileError(f"cannot create {self.path}: {exc}") from None
        self._lock = threading.RLock()
        self._numbers: dict[str, int] = {}
        self._streams: list[StreamInfo] = []
        self._declared: list[fmt.Declared] = []
        self._laps: list[LapInfo] = []
        self._segments: list[fmt.Segment] = []
        self._pending: dict[int, list[FrameBatch]] = {}
        self._seq: dict[int, int] = {}
        self._encoders: dict[int, CarryEncoder] = {}
        self._layouts: dict[int, Layout] = {}
        self._names: dict[int, set[str]] = {}
        self._compressor: zstandard.ZstdCompressionObj | None = None
        self._segment_raw = 0
        self._segment_t0: int | None = None
        self._last_flush = time.monotonic()
        self.frames_written = 0
        self.blocks_written = 0
        self.closed = False
        self._failed: OSError | None = None
        header = fmt.FileHeader(
            session=info,
            streams=list(streams or []),
            created_ns=time.time_ns(),
            writer=f"pitwire {__version__}",
        )
        self._offset = 0
        self._write(fmt.file_head(header))
        self._data_start = self._offset
        for s in streams or []:
            self._declare(s, in_header=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flusher, name="pwr-flush", daemon=True)
        self._thread.start()

    # -- what goes in -----------------------------------------------------------------------

    def add_stream(self, info: StreamInfo) -> None:
        """Declare a stream, or re-declare it (driver/car learned late, channels added)."""
        with self._lock:
            self._check_open()
            number = self._numbers.get(info.stream_id)
            if number is not None and self._streams[number] == info:
                return
            self._flush_locked()
            self._declare(info, in_header=False)
            self._sync()

    def has_stream(self, stream_id: str) -> bool:
        return stream_id in self._numbers

    def write(self, stream_id: str, batch: FrameBatch) -> None:
        """Queue ``batch`` (with every channel of the stream) for the next flush.

        The batch's arrays are read at the flush, up to ``flush_interval`` later: do not
        reuse them for other data before then."""
        with self._lock:
            if self.closed:
                self._check_open()
            number = self._numbers.get(stream_id)
            if number is None:
                raise KeyError(f"stream {stream_id!r} is not declared: add_stream() it first")
            if batch.n:
                if not self._names[number].issubset(batch.columns):
                    channels = self._streams[number].channels
                    missing = [c.name for c in channels if c.name not in batch.columns]
                    raise ValueError(f"stream {stream_id!r}: the batch lacks {', '.join(missing)}")
                pending = self._pending.get(number)
                if pending is None:
                    self._pending[number] = [batch]
                else:
                    pending.append(batch)
            if monotonic() - self._last_flush >= self.flush_interval:
                self._flush_locked()

    def add_lap(self, lap: LapInfo) -> None:
        with self._lock:
            self._check_open()
            self._flush_locked()
            self._laps.append(lap)
            self._write(fmt.block(fmt.LAP, fmt.encode_record(lap)))
            self._sync()

    def update_session(self, info: SessionInfo) -> None:
        """The session's details changed (e.g. the track became known)."""
        with self._lock:
            self._check_open()
            self.info = info
            self._write(fmt.block(fmt.SESSION, fmt.encode_record(info)))
            self._sync()

    def flush(self) -> None:
        """Write what waits now (the flusher thread does this every ``flush_interval``)."""
        with self._lock:
            if not self.closed:
                self._flush_locked()

    def close(self) -> None:
        """Flush, write the index and trailer, close the file. Idempotent."""
        try:
            with self._lock:
                if self.closed:
                    return
                try:
                    if self._failed is None:
                        self._flush_locked()
                        index = fmt.Index(
                            session=self.info,
                            declarations=self._declared,
                            laps=self._laps,
                            segments=self._segments,
                            data_end=self._offset,
                            data_start=self._data_start,
                        )
                        start = self._offset
                        self._write(fmt.block(fmt.INDEX, fmt.encode_index(index)))
                        self._write(fmt.TRAILER.pack(fmt.TRAILER_MAGIC, start))
                        self._sync()
                finally:
                    self.closed = True
                    with contextlib.suppress(OSError):
                        self._file.close()
        finally:
            self._stop.set()
            if threading.current_thread() is not self._thread:
                self._thread.join()

    def __enter__(self) -> SessionWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- inside -----------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError(f"{self.path} is closed")

    def _declare(self, info: StreamInfo, *, in_header: bool) -> None:
        number = self._numbers.get(info.stream_id)
        channels_changed = False
        if number is None:
            number = len(self._streams)
            self._numbers[info.stream_id] = number
            self._streams.append(info)
            self._seq[number] = 0
        else:
            old = self._streams[number]
            channels_changed = [(c.name, c.dtype, c.resolution) for c in old.channels] != [
                (c.name, c.dtype, c.resolution) for c in info.channels
            ]
            self._streams[number] = info
        decl = fmt.StreamDecl(number=number, info=info)
        self._declared.append(fmt.Declared(self._offset if not in_header else 0, decl))
        if not in_header:
            self._write(fmt.block(fmt.STREAM, fmt.encode_record(decl)))
        if channels_changed:
            self._compressor = None  # the next data starts a segment with the new columns
        self._layouts[number] = self._encoder(number).layout
        self._names[number] = {c.name for c in info.channels}
        self._encoders.pop(number, None)
        if self._compressor is not None:
            self._encoders[number] = self._encoder(number)

    def _encoder(self, number: int) -> CarryEncoder:
        return CarryEncoder(self._streams[number].channels)

    def _flush_locked(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        batches: dict[int, Rows] = {
            number: self._layouts[number].stacked(parts) for number, parts in pending.items()
        }
        t0 = min(int(rows[0][0]) for rows in batches.values())
        t1 = max(int(rows[0][-1]) for rows in batches.values())
        flags = 0
        if (
            self._compressor is None
            or self._segment_raw >= self.segment_bytes
            or (self._segment_t0 is not None and t1 - self._segment_t0 >= self.segment_ns)
        ):
            self._compressor = zstandard.ZstdCompressor(level=self.level).compressobj()
            self._encoders = {}
            self._segment_raw = 0
            self._segment_t0 = t0
            self._segments.append(fmt.Segment(self._offset))
            flags = fmt.SEGMENT_START
        entries: list[fmt.Entry] = []
        raw: list[bytes] = []
        for number, (t, mq, m4, m8) in batches.items():
            encoder = self._encoders.get(number)
            if encoder is None:
                encoder = self._encoders[number] = self._encoder(number)
            raw.append(encoder.encode_rows(t, mq, m4, m8))
            n = len(t)
            entry = fmt.Entry(number, n, self._seq[number], int(t[0]), int(t[-1]))
            self._seq[number] += n
            entries.append(entry)
            self._segments[-1].add(entry)
            self.frames_written += n
        body = b"".join(raw)
        self._segment_raw += len(body)
        compressed = self._compressor.compress(body) + self._compressor.flush(
            zstandard.COMPRESSOBJ_FLUSH_BLOCK
        )
        self._write(fmt.block(fmt.DATA, fmt.data_payload(entries, compressed), flags))
        self.blocks_written += 1
        self._sync()

    def _write(self, data: bytes) -> None:
        if self._failed is not None:
            raise fmt.SessionFileError(
                f"{self.path}: an earlier write failed ({self._failed}); the file holds what "
                "was written before it"
            )
        try:
            self._file.write(data)
        except OSError as exc:
            # A block may be half on disk; the coding state has moved on past it. Nothing more
            # is written: what is before the failed block stays readable.
            self._failed = exc
            raise fmt.SessionFileError(f"cannot write {self.path}: {exc}") from exc
        self._offset += len(data)

    def _sync(self) -> None:
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())

    def _flusher(self) -> None:
        wait = self.flush_interval
        while not self._stop.wait(wait):
            with self._lock:
                if self.closed:
                    return
                due = self._last_flush + self.flush_interval - time.monotonic()
                if due <= 0:
                    with contextlib.suppress(fmt.SessionFileError):  # write() will say so
                        self._flush_locked()
                    due = self.flush_interval
                wait = max(due, 0.001)
