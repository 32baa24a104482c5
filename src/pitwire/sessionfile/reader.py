"""Reading ``.pwr`` session files: streaming, seeking by time, tolerant of damage.

Opening reads the header and, through the trailer, the index: one small read for a closed
file. A file without a valid index (its writer crashed, or it is still being written) is
scanned block by block to rebuild it. Damage never raises: a truncated tail, a corrupt block
or a wrong checksum ends the readable data at the last good block, and ``problems`` says
where and why (also logged as a warning). Only a file that is not a session file at all, or
of a newer version, raises ``SessionFileError``.

Frames are decoded segment by segment (a segment is a run of blocks coded from one start),
so memory holds one segment's blocks at a time, never the whole file.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import msgspec
import numpy as np
import zstandard

from pitwire.codec.carry import CarryDecoder
from pitwire.codec.chunk import CodecError
from pitwire.model.frames import FrameBatch
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.sessionfile import format as fmt

log = logging.getLogger("pitwire.sessionfile")


@dataclass(frozen=True, slots=True)
class Block:
    offset: int
    kind: int
    flags: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class StreamSummary:
    """What the index says of one stream: frames, time range and seq range."""

    stream_id: str
    frames: int
    t0_ns: int
    t1_ns: int
    first_seq: int
    last_seq: int


class SessionReader:
    """An open session file (see the module docstring)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.problems: list[str] = []
        self.index_rebuilt = False
        try:
            self._file: BinaryIO = open(self.path, "rb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise fmt.SessionFileError(f"cannot open {self.path}: {exc.strerror or exc}") from None
        try:
            self._open()
        except BaseException:
            self._file.close()
            raise

    # -- opening ----------------------------------------------------------------------------

    def _open(self) -> None:
        self.size = os.fstat(self._file.fileno()).st_size
        head = self._file.read(fmt.FILE_HEAD.size)
        if len(head) < 8 or head[:4] != fmt.MAGIC[:4]:
            raise fmt.SessionFileError(f"{self.path} is not a pitwire session file (.pwr)")
        self.info = SessionInfo(session_id=self.path.stem)
        self._header_streams: list[StreamInfo] = []
        self.data_start = self.size
        if len(head) < fmt.FILE_HEAD.size or head[:8] != fmt.MAGIC:
            self._problem(0, "the file header is cut short or damaged; nothing can be read")
            self._rebuild_empty()
            return
        _, version, _flags, length = fmt.FILE_HEAD.unpack(head)
        body = self._file.read(min(length, self.size) + 4)
        if len(body) < length + 4 or struct.unpack_from("<I", body, length)[0] != zlib.crc32(
            head[8:] + body[:length]
        ):
            self._problem(0, "the file header is cut short or damaged; nothing can be read")
            self._rebuild_empty()
            return
        if version > fmt.VERSION:  # checked after the checksum: a damaged byte is no version
            raise fmt.SessionFileError(
                f"{self.path} is session file version {version}; this pitwire reads up to "
                f"{fmt.VERSION}: upgrade pitwire"
            )
        try:
            header = fmt.decode_header(body[:length])
        except msgspec.DecodeError as exc:
            self._problem(0, f"the file header does not decode ({exc}); nothing can be read")
            self._rebuild_empty()
            return
        self.info = header.session
        self.created_ns = header.created_ns
        self.writer = header.writer
        self._header_streams = list(header.streams)
        self.data_start = fmt.FILE_HEAD.size + length + 4
        if not self._load_index():
            self._scan()

    def _rebuild_empty(self) -> None:
        """The header is unreadable: the index (a closed file) still says everything."""
        self.created_ns = 0
        self.writer = ""
        self._declared: list[fmt.Declared] = []
        self._streams: list[StreamInfo] = []
        self.laps: list[LapInfo] = []
        self.segments: list[fmt.Segment] = []
        self.data_end = self.data_start
        if self._load_index(trust_header=False):
            self.problems[-1] = self.problems[-1].replace(
                "nothing can be read", "read through the index instead"
            )

    def _load_index(self, *, trust_header: bool = True) -> bool:
        floor = self.data_start if trust_header else fmt.FILE_HEAD.size
        if self.size < floor + fmt.TRAILER.size:
            return False
        self._file.seek(self.size - fmt.TRAILER.size)
        magic, offset = fmt.TRAILER.unpack(self._file.read(fmt.TRAILER.size))
        if magic != fmt.TRAILER_MAGIC or not floor <= offset < self.size:
            return False
        block = self._read_block(offset, limit=self.size - fmt.TRAILER.size)
        if not isinstance(block, Block) or block.kind != fmt.INDEX:
            return False
        try:
            index = fmt.decode_index(block.payload)
        except msgspec.DecodeError:
            return False
        if not trust_header:
            if not index.data_start or not index.declarations:
                return False  # an index of an older writer: no way to find the data
            self.data_start = index.data_start
            self._header_streams = []
        self.info = index.session
        self._declared = (
            [
                fmt.Declared(0, fmt.StreamDecl(number=i, info=s))
                for i, s in enumerate(self._header_streams)
            ]
            if not index.declarations
            else index.declarations
        )
        self._streams = _latest(self._declared)
        self.laps = index.laps
        self.segments = index.segments
        self.data_end = index.data_end
        return True

    def _scan(self) -> None:
        """Rebuild the index by reading every block up to the first damage."""
        self.index_rebuilt = True
        self._declared = [
            fmt.Declared(0, fmt.StreamDecl(number=i, info=s))
            for i, s in enumerate(self._header_streams)
        ]
        self.laps = []
        self.segments = []
        self.data_end = self.data_start
        for block in self._blocks(self.data_start, self.size):
            if block.kind == fmt.INDEX:
                break
            try:
                self._take(block)
            except (ValueError, msgspec.DecodeError) as exc:
                self._problem(block.offset, f"{fmt.KIND_NAMES[block.kind]} block unreadable: {exc}")
                break
            self.data_end = block.offset + fmt.BLOCK_HEAD.size + len(block.payload)
        self._streams = _latest(self._declared)
        if self.size > self.data_start and not self.problems:
            log.info("%s: no index (not closed?); rebuilt it by scanning", self.path)

    def _take(self, block: Block) -> None:
        if block.kind == fmt.DATA:
            entries, _ = fmt.split_data_payload(block.payload)
            if block.flags & fmt.SEGMENT_START or not self.segments:
                self.segments.append(fmt.Segment(block.offset))
            for e in entries:
                self.segments[-1].add(e)
        elif block.kind == fmt.STREAM:
            self._declared.append(fmt.Declared(block.offset, fmt.decode_stream(block.payload)))
        elif block.kind == fmt.LAP:
            self.laps.append(fmt.decode_lap(block.payload))
        elif block.kind == fmt.SESSION:
            self.info = fmt.decode_session(block.payload)

    # -- blocks -----------------------------------------------------------------------------

    def _read_block(self, offset: int, limit: int) -> Block | str:
        """The block at ``offset`` or a description of why there is none."""
        self._file.seek(offset)
        head = self._file.read(fmt.BLOCK_HEAD.size)
        if len(head) < fmt.BLOCK_HEAD.size or offset + fmt.BLOCK_HEAD.size > limit:
            return "the file ends inside a block header (cut short)"
        sync, kind, flags, _, length, crc = fmt.BLOCK_HEAD.unpack(head)
        if sync != fmt.BLOCK_SYNC or kind not in fmt.KIND_NAMES:
            return "no block starts here (corrupt data)"
        if length > fmt.MAX_PAYLOAD or offset + fmt.BLOCK_HEAD.size + length > limit:
            return f"the file ends inside {_a(fmt.KIND_NAMES[kind])} block (cut short)"
        payload = self._file.read(length)
        if len(payload) < length:
            return f"the file ends inside {_a(fmt.KIND_NAMES[kind])} block (cut short)"
        if fmt.block_crc(head, payload) != crc:
            return f"{fmt.KIND_NAMES[kind]} block fails its checksum (corrupt)"
        return Block(offset, kind, flags, payload)

    def _blocks(
        self, start: int, end: int, *, where: str = "reading stops there"
    ) -> Iterator[Block]:
        offset = start
        while offset < end:
            block = self._read_block(offset, end)
            if isinstance(block, str):
                if not (offset + fmt.TRAILER.size == self.size and self._is_trailer(offset)):
                    self._problem(offset, block, where=where)
                return
            yield block
            offset += fmt.BLOCK_HEAD.size + len(block.payload)

    def _is_trailer(self, offset: int) -> bool:
        self._file.seek(offset)
        return self._file.read(8) == fmt.TRAILER_MAGIC

    def _problem(self, offset: int, message: str, *, where: str = "reading stops there") -> None:
        text = f"{self.path}: at byte {offset}: {message}; {where}"
        if text not in self.problems:
            self.problems.append(text)
            log.warning("%s", text)

    # -- what is in it ----------------------------------------------------------------------

    @property
    def streams(self) -> list[StreamInfo]:
        return list(self._streams)

    def stream(self, stream_id: str) -> StreamInfo:
        for s in self._streams:
            if s.stream_id == stream_id:
                return s
        known = ", ".join(s.stream_id for s in self._streams) or "none"
        raise KeyError(f"{self.path}: no stream {stream_id!r} (streams: {known})")

    def summary(self) -> list[StreamSummary]:
        """Frames, time and seq range per stream, from the index (nothing decoded)."""
        out = []
        for number, info in enumerate(self._streams):
            parts = [seg.streams[number] for seg in self.segments if number in seg.streams]
            frames = sum(p[3] for p in parts)
            out.append(
                StreamSummary(
                    stream_id=info.stream_id,
                    frames=frames,
                    t0_ns=min((p[0] for p in parts), default=0),
                    t1_ns=max((p[1] for p in parts), default=0),
                    first_seq=min((p[2] for p in parts), default=0),
                    last_seq=max((p[2] + p[3] - 1 for p in parts), default=-1),
                )
            )
        return out

    @property
    def frames_total(self) -> int:
        return sum(s.frames for s in self.summary())

    def batches(
        self,
        streams: Iterable[str] | None = None,
        *,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> Iterator[tuple[str, FrameBatch]]:
        """``(stream_id, batch)`` in file order (within ``[t0_ns, t1_ns]`` when given),
        decoded segment by segment."""
        wanted = None if streams is None else {self._number(s) for s in streams}
        for i, segment in enumerate(self.segments):
            if not self._overlaps(segment, wanted, t0_ns, t1_ns):
                continue
            end = self.segments[i + 1].offset if i + 1 < len(self.segments) else self.data_end
            for number, batch in self._decode_segment(segment, end, wanted):
                if t0_ns is not None or t1_ns is not None:
                    keep = np.ones(batch.n, bool)
                    if t0_ns is not None:
                        keep &= batch.t_ns >= t0_ns
                    if t1_ns is not None:
                        keep &= batch.t_ns <= t1_ns
                    if not keep.all():
                        if not keep.any():
                            continue
                        batch = FrameBatch(
                            batch.t_ns[keep], {k: c[keep] for k, c in batch.columns.items()}
                        )
                yield self._declared_name(number), batch

    def frames(
        self, stream_id: str, *, t0_ns: int | None = None, t1_ns: int | None = None
    ) -> FrameBatch:
        """Every frame of ``stream_id`` (within ``[t0_ns, t1_ns]`` when given), in time order."""
        info = self.stream(stream_id)
        parts = [b for _, b in self.batches([stream_id], t0_ns=t0_ns, t1_ns=t1_ns)]
        if not parts:
            from pitwire.model.channels import ChannelSet

            return FrameBatch.empty(ChannelSet(info.channels))
        return FrameBatch.concat(parts)

    # -- decoding ---------------------------------------------------------------------------

    def _number(self, stream_id: str) -> int:
        for number, s in enumerate(self._streams):
            if s.stream_id == stream_id:
                return number
        raise KeyError(
            f"{self.path}: no stream {stream_id!r} "
            f"(streams: {', '.join(s.stream_id for s in self._streams) or 'none'})"
        )

    def _declared_name(self, number: int) -> str:
        return self._streams[number].stream_id

    @staticmethod
    def _overlaps(
        segment: fmt.Segment, wanted: set[int] | None, t0_ns: int | None, t1_ns: int | None
    ) -> bool:
        for number, (s0, s1, _, _) in segment.streams.items():
            if wanted is not None and number not in wanted:
                continue
            if (t0_ns is None or s1 >= t0_ns) and (t1_ns is None or s0 <= t1_ns):
                return True
        return False

    def _decode_segment(
        self, segment: fmt.Segment, end: int, wanted: set[int] | None
    ) -> Iterator[tuple[int, FrameBatch]]:
        channels = {
            d.decl.number: d.decl.info.channels
            for d in self._declared
            if d.offset <= segment.offset
        }
        decoders: dict[int, CarryDecoder] = {}
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        stop = "the rest of this segment is not read"
        for block in self._blocks(segment.offset, end, where=stop):
            try:
                if block.kind == fmt.STREAM:
                    decl = fmt.decode_stream(block.payload)
                    channels[decl.number] = decl.info.channels
                    decoders.pop(decl.number, None)  # a declaration restarts its coding
                    continue
                if block.kind != fmt.DATA:
                    continue
                entries, compressed = fmt.split_data_payload(block.payload)
                raw = decompressor.decompress(bytes(compressed))
                pos = 0
                decoded = []
                for e in entries:
                    decoder = decoders.get(e.stream)
                    if decoder is None:
                        decoder = decoders[e.stream] = CarryDecoder(channels[e.stream])
                    batch, pos = decoder.decode(raw, pos, e.n)
                    decoded.append((e.stream, batch))
            except (
                ValueError,
                KeyError,
                CodecError,
                zstandard.ZstdError,
                msgspec.DecodeError,
            ) as exc:
                self._problem(
                    block.offset,
                    f"{fmt.KIND_NAMES[block.kind]} block does not decode: {exc}",
                    where=stop,
                )
                return
            for number, batch in decoded:
                if wanted is None or number in wanted:
                    yield number, self._conform(number, batch)

    def _conform(self, number: int, batch: FrameBatch) -> FrameBatch:
        """``batch`` with its stream's latest channels: one declared later is NaN here, one
        no longer declared is left out (a stream's batches always have the same columns)."""
        latest = self._streams[number].channels
        cols = batch.columns
        if list(cols) == [c.name for c in latest]:
            return batch
        n = batch.n
        columns = {
            c.name: cols[c.name] if c.name in cols else np.full(n, np.nan, c.dtype) for c in latest
        }
        return FrameBatch.trusted(batch.t_ns, columns)

    # -- lifetime ---------------------------------------------------------------------------

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SessionReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _latest(declared: list[fmt.Declared]) -> list[StreamInfo]:
    """Each stream number's last declaration, in number order."""
    latest: dict[int, StreamInfo] = {}
    for d in declared:
        latest[d.decl.number] = d.decl.info
    return [latest[n] for n in sorted(latest)]


def _a(noun: str) -> str:
    """``noun`` with its indefinite article ("an index", "a data")."""
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"
