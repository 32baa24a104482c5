"""The agent's spool: frames the server has not acknowledged yet, kept on disk.

``Spool`` is the on-disk ``FrameKeeper`` of ``protocol.peer.AgentPeer``: every numbered
frame is written here before it is sent, forgotten once the server acks it as stored, and
read back for re-sends after a reconnect or after the agent is restarted (even from a
``kill -9``): a restarted agent with the same directory re-advertises the streams, re-sends
what is not acked and numbers new frames after the spooled ones, so nothing is stored twice.

Layout: one directory per pitwire session (``<spool dir>/<session id>/``) holding ``lock``
(held by the agent using it) and segment files ``00000001.spool``, ``00000002.spool``, ...
written in that order. A segment is the 8 bytes ``PWAGENT1``, then records::

    u32 body length | u32 CRC-32 of the body | body: u8 kind, payload      (little-endian)

    kind 1 SESSION  msgpack SpoolSession: session, track, source, started_ns, server (its
                    URL without a password: ``store.safe_url``)
    kind 2 STREAM   msgpack _StreamRecord: stream, id, channels (with their ids), driver,
                    car, and where its numbering stands: next_seq, shift (null until the
                    stream's first ack: seqs still provisional), acked, moves ([lo, hi,
                    shift]: the frames whose last seq was in lo..hi-1 moved up by shift, as
                    the server held other frames under those seqs)
    kind 3 DATA     u32 stream id, u8 flags (1: provisional seq), u32 frame count n,
                    i64 last seq, then the encoded protocol data frame (spec/protocol.md)
    kind 4 ACK      u32 stream id, i64 seq: every frame up to seq is stored by the server

Every segment starts with a checkpoint (SESSION and one STREAM per stream), so any suffix of
the segments is enough to restart from. A segment rotates at ``segment_bytes``; a segment
whose frames are all acked is deleted; past ``max_bytes`` the oldest segment is deleted and
its unacked frames are counted in ``dropped`` and listed by ``drops()``: frames already sent
may still be acknowledged (``AgentPeer`` tells), the others are a gap the server will show.
The directories are made private (0700) and the files 0600: they hold the session's data.

Durability: each record is one ``write`` to the OS (no fsync per record: the agent writes
thousands a second), which survives the agent being killed; a power loss can lose the last
moments the OS had not written out yet. A stream's numbering (a STREAM record of its rebase
or a move) is fsynced, and the segment holding it on disk is deleted only once a newer one
holding it is fsynced: lost, a restarted agent would number frames the server already has
a second time. Memory use does not grow with the spool: per segment only a (first, last,
count) summary per stream is kept; re-sends read frames back from disk.

Exceptions::

    SpoolError          the spool directory cannot be used (raised: the agent cannot start)
    └── SpoolLocked     another running agent uses it

Damage degrades with a warning: a record that fails its checksum or is cut short (the tail
being written when the agent was killed) ends the reading of its segment; a write that fails
(disk full) loses that batch from the spool, counted in ``dropped`` (it is still sent if the
connection takes it at once).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import struct
import sys
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from pitwire.protocol.keeper import Dropped, KeptStream, renumber
from pitwire.protocol.messages import ChannelDesc
from pitwire.store import safe_url

log = logging.getLogger("pitwire.agent")

MAGIC = b"PWAGENT1"
SUFFIX = ".spool"
DEFAULT_MAX_BYTES = 1_000_000_000
"""Default bound of one session's spool [bytes]: about 30 minutes of 20 cars at 60 Hz."""
FULL = "spool full (--spool-max)"
UNWRITABLE = "could not be written to the spool"

SESSION, STREAM, DATA, ACK = 1, 2, 3, 4
PROVISIONAL = 1
_RECORD = struct.Struct("<II")  # body length, CRC-32 of the body
_DATA = struct.Struct("<IBIq")  # stream id, flags, n, last seq (after the kind byte)
_ACK = struct.Struct("<Iq")  # stream id, seq
_MAX_BODY = 1 << 28
_READ_CHUNK = 256 << 10  # per read: a re-send piece (1 MB) reads little more than it sends
_O_BINARY = getattr(os, "O_BINARY", 0)


class SpoolError(Exception):
    """The spool directory cannot be used (it is not writable, or another agent uses it)."""


class SpoolLocked(SpoolError):
    """Another running agent uses this spool directory."""


class SpoolSession(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a spool knows of its session: enough for a restarted agent to re-advertise it."""

    session: str
    track: str = ""
    source: str = ""
    started_ns: int = 0
    server: str = ""
    """The server URL the frames are for, without its password (``store.safe_url``)."""


class _StreamRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    stream: str
    id: int
    channels: list[ChannelDesc]
    driver: str = ""
    car: str = ""
    next_seq: int = 0
    shift: int | None = None
    acked: int = -1
    moves: list[tuple[int, int, int]] = msgspec.field(default_factory=list)


_encoder = msgspec.msgpack.Encoder()
_session_decoder = msgspec.msgpack.Decoder(SpoolSession)
_stream_decoder = msgspec.msgpack.Decoder(_StreamRecord)


@dataclass(eq=False, slots=True)
class _Stream:
    name: str
    id: int
    channels: list[ChannelDesc]
    driver: str = ""
    car: str = ""
    next_seq: int = 0
    shift: int | None = None  # None: seqs are provisional (no ack of the stream yet)
    acked: int = -1
    moves: list[tuple[int, int, int]] = field(default_factory=list)  # (lo, hi, shift)

    def record(self) -> _StreamRecord:
        return _StreamRecord(
            stream=self.name,
            id=self.id,
            channels=self.channels,
            driver=self.driver,
            car=self.car,
            next_seq=self.next_seq,
            shift=self.shift,
            acked=self.acked,
            moves=list(self.moves),
        )

    def seq(self, last: int, provisional: bool) -> int:
        """A DATA record's last seq (as written) in the stream's numbering now."""
        if provisional:
            if self.shift is None:
                return last
            last += self.shift
        for lo, hi, shift in self.moves:
            if lo <= last < hi:
                last += shift
        return last

    def unacked(self, first: int, last: int, n: int) -> tuple[int, int]:
        """How many of the frames first..last (n of them) are not acked, and the first."""
        if self.shift is None:
            return n, first
        if last <= self.acked:
            return 0, last + 1
        lo = max(first, self.acked + 1)
        return min(n, last - lo + 1), lo


@dataclass(eq=False, slots=True)
class _Segment:
    number: int
    path: Path
    size: int
    # stream id -> [first seq, last seq, frames] of its frames here (the stream's numbering)
    data: dict[int, list[int]] = field(default_factory=dict)
    gone: bool = False  # deleted (acked, or dropped for the bound)


class Spool:
    """The unacked frames of one session, on disk in ``directory``; a ``FrameKeeper``.

    max_bytes: the bound [bytes]; past it the oldest segment's frames are dropped
    segment_bytes: rotate segments at this size [bytes] (default: max_bytes / 32, within
        64 KiB..16 MiB)
    server: the server URL the frames are for (recorded in the spool without its password)

    Opening loads what an earlier run left (``restored()``, ``session_info``); raises
    SpoolError if the directory is unusable or SpoolLocked if another agent holds it.
    ``close()`` releases it and removes the directory once every frame was acked.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int | None = None,
        server: str = "",
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, not {max_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or min(16 << 20, max(64 << 10, max_bytes // 32))
        self.server = safe_url(server)
        self.dropped = 0
        self._drops: list[Dropped] = []
        self.write_errors = 0
        self.session_info: SpoolSession | None = None
        self._streams: dict[str, _Stream] = {}
        self._by_id: dict[int, _Stream] = {}
        self._segments: list[_Segment] = []
        self._cur: _Segment | None = None
        self._fd: int | None = None
        self._bytes = 0
        self._next_number = 1
        # The segment holding every stream's numbering on disk (fsynced), and whether the
        # numbering changed since without reaching the disk (its write failed).
        self._holder: _Segment | None = None
        self._sync_due = False
        self.closed = False
        try:
            _private_dir(self.directory.parent)
            _private_dir(self.directory, own=True)
            self._lock_fd = _lock(self.directory / "lock")
        except SpoolError:
            raise
        except OSError as exc:
            raise SpoolError(f"cannot use spool directory {self.directory}: {exc}") from None
        try:
            self._load()
        except OSError as exc:
            self._unlock()
            raise SpoolError(f"cannot read spool directory {self.directory}: {exc}") from None

    # --- FrameKeeper ----------------------------------------------------------------------

    @property
    def frames(self) -> int:
        """Frames kept and not yet acked."""
        total = 0
        for seg in self._segments:
            for sid, (first, last, n) in seg.data.items():
                total += self._by_id[sid].unacked(first, last, n)[0]
        return total

    @property
    def size(self) -> int:
        """Size of the segment files [bytes]."""
        return self._bytes

    def drops(self) -> list[Dropped]:
        out, self._drops = self._drops, []
        return out

    def restored(self) -> Sequence[KeptStream]:
        return [
            KeptStream(
                stream=st.name,
                id=st.id,
                channels=list(st.channels),
                driver=st.driver,
                car=st.car,
                next_seq=st.next_seq,
                synced=st.shift is not None,
                acked=st.acked,
            )
            for st in self._streams.values()
        ]

    def note_session(self, *, session: str, track: str, source: str, started_ns: int) -> None:
        info = SpoolSession(
            session=session, track=track, source=source, started_ns=started_ns, server=self.server
        )
        if info != self.session_info:
            self.session_info = info
            self._try(self._append, SESSION, _encoder.encode(info))

    def note_stream(
        self, stream: str, *, id: int, channels: list[ChannelDesc], driver: str, car: str
    ) -> None:
        st = self._streams.get(stream)
        if st is None:
            st = self._streams[stream] = _Stream(stream, id, list(channels), driver, car)
            self._by_id[id] = st
        elif (st.channels, st.driver, st.car) == (channels, driver, car):
            return
        else:
            st.channels, st.driver, st.car = list(channels), driver, car
        self._try(self._append, STREAM, _encoder.encode(st.record()))

    def keep(self, stream: str, last_seq: int, data: bytes, n: int) -> None:
        st = self._streams[stream]
        st.next_seq = last_seq + 1
        flags = PROVISIONAL if st.shift is None else 0
        head = _DATA.pack(st.id, flags, n, last_seq)
        cur = self._cur if self._try(self._append, DATA, head, data) else None
        if cur is None:
            self.dropped += n
            self._drops.append(Dropped(stream, last_seq - n + 1, last_seq, n, UNWRITABLE))
            return
        summary = cur.data.get(st.id)
        if summary is None:
            cur.data[st.id] = [last_seq - n + 1, last_seq, n]
        else:
            summary[1] = last_seq
            summary[2] += n
        if cur.size >= self.segment_bytes:
            self._rotate()
        while self._bytes > self.max_bytes and len(self._segments) > 1:
            self._drop(self._segments[0])  # the newest segment always stays

    def rebase(self, stream: str, shift: int) -> None:
        st = self._streams[stream]
        if st.shift is not None:
            return
        self._shift(st, shift)
        self._note_numbering(st)

    def move(self, stream: str, lo: int, shift: int) -> None:
        st = self._streams[stream]
        if shift <= 0 or lo >= st.next_seq:
            return
        self._move(st, lo, st.next_seq, shift)
        self._note_numbering(st)

    def release(self, stream: str, upto: int) -> None:
        st = self._streams.get(stream)
        if st is None or upto <= st.acked:
            return
        st.acked = upto
        self._try(self._append, ACK, _ACK.pack(st.id, upto))
        for seg in [s for s in self._segments if st.id in s.data and s is not self._cur]:
            if self._settled(seg):
                self._remove(seg)

    def pending(self, after: Mapping[str, int]) -> Iterator[tuple[str, int, bytes]]:
        """Read lazily: segments are read one after the other, frames kept while reading
        included; a segment without anything wanted is skipped unread."""
        want = {
            st.id: floor
            for stream, floor in after.items()
            if (st := self._streams.get(stream)) is not None and st.shift is not None
        }
        number = 0
        while want:
            seg = next((s for s in self._segments if s.number > number), None)
            if seg is None:
                return
            number = seg.number
            if not any(
                last > max(want[sid], self._by_id[sid].acked)
                for sid, (_, last, _) in seg.data.items()
                if sid in want
            ):
                continue
            for kind, body in _records(seg.path):
                if seg.gone:  # dropped for the bound meanwhile: its frames count as dropped
                    break
                if kind != DATA:
                    continue
                sid, flags, _, written = _DATA.unpack_from(body, 1)
                floor = want.get(sid)
                if floor is None:
                    continue
                st = self._by_id[sid]
                last = st.seq(written, bool(flags & PROVISIONAL))
                if last > max(floor, st.acked):
                    yield st.name, last, renumber(body[1 + _DATA.size :], last - written)

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Release the spool; remove its files and directory if every frame was acked."""
        if self.closed:
            return
        self.closed = True
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = self._cur = None
        if self.frames == 0:
            for seg in list(self._segments):
                self._delete(seg)
            with contextlib.suppress(OSError):
                (self.directory / "lock").unlink()
        self._unlock()
        if self.frames == 0:
            with contextlib.suppress(OSError):
                self.directory.rmdir()

    def discard(self) -> int:
        """Delete the spool with every frame in it (they are never sent); returns how many
        frames were not acknowledged."""
        frames = self.frames
        if not self.closed:
            self.closed = True
            if self._fd is not None:
                os.close(self._fd)
                self._fd = self._cur = None
        for seg in list(self._segments):
            self._delete(seg)
        with contextlib.suppress(OSError):
            (self.directory / "lock").unlink()
        self._unlock()
        with contextlib.suppress(OSError):
            self.directory.rmdir()
        return frames

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unlock(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._lock_fd)

    # --- writing --------------------------------------------------------------------------

    def _try(self, write: Callable[..., None], *args: object) -> bool:
        """Run a write; a failure (disk full...) is logged, not raised."""
        try:
            write(*args)
            return True
        except OSError as exc:
            self.write_errors += 1
            if self.write_errors == 1 or self.write_errors % 1000 == 0:
                log.warning(
                    "cannot write to the spool %s (%s); frames written now are not kept "
                    "(%d failed writes)",
                    self.directory,
                    exc,
                    self.write_errors,
                )
            if self._fd is not None and self._cur is not None:
                try:  # cut off a partly written record, so later ones stay readable
                    os.ftruncate(self._fd, self._cur.size)
                except OSError:
                    self._rotate()
            return False

    def _append(self, kind: int, head: bytes, data: bytes = b"", *, sync: bool = False) -> None:
        if self.closed:
            raise OSError("the spool is closed")
        if self._fd is None or self._cur is None:
            self._open_segment()
        if self._fd is None or self._cur is None:
            raise OSError("no spool segment open")
        parts = _record(kind, head, data)
        _write_all(self._fd, parts)
        size = sum(len(p) for p in parts)
        self._cur.size += size
        self._bytes += size
        if sync or self._sync_due:
            self._sync()

    def _append_synced(self, kind: int, head: bytes) -> None:
        self._append(kind, head, sync=True)

    def _sync(self) -> None:
        """fsync the current segment (opening one if none is): it then holds every
        stream's numbering on disk (in its checkpoint or later records)."""
        if self.closed:
            raise OSError("the spool is closed")
        if self._fd is None or self._cur is None:
            self._open_segment()
        if self._fd is None or self._cur is None:
            raise OSError("no spool segment open")
        os.fsync(self._fd)
        self._holder = self._cur
        self._sync_due = False

    def _note_numbering(self, st: _Stream) -> None:
        """Write the stream's new numbering (rebase, move) and fsync it."""
        if not self._try(self._append_synced, STREAM, _encoder.encode(st.record())):
            self._rotate()  # the next segment's checkpoint holds it: fsync that
            self._sync_due = True

    def _open_segment(self) -> None:
        """Start the next segment with a checkpoint: enough to restart from it alone."""
        number = self._next_number
        self._next_number += 1
        path = self.directory / f"{number:08d}{SUFFIX}"
        parts = [MAGIC]
        if self.session_info is not None:
            parts += _record(SESSION, _encoder.encode(self.session_info))
        for st in self._streams.values():
            parts += _record(STREAM, _encoder.encode(st.record()))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_BINARY, 0o600)
        try:
            _write_all(fd, parts)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self._fd = fd
        self._cur = _Segment(number, path, sum(len(p) for p in parts))
        self._segments.append(self._cur)
        self._bytes += self._cur.size

    def _rotate(self) -> None:
        """Close the current segment; the next write starts a new one."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
        old, self._fd, self._cur = self._cur, None, None
        if old is not None and self._settled(old):
            self._remove(old)

    def _settled(self, seg: _Segment) -> bool:
        """Every frame of ``seg`` is acked."""
        return all(
            self._by_id[sid].unacked(first, last, n)[0] == 0
            for sid, (first, last, n) in seg.data.items()
        )

    def _remove(self, seg: _Segment) -> None:
        """Delete ``seg``, all of whose frames are acked; if it holds the streams' numbering
        on disk, only once a newer segment does (else older frames could lose their shift)."""
        if seg is self._holder and not self._try(self._sync):
            return  # kept; deleted when a later ack finds it settled again
        self._delete(seg)

    def _delete(self, seg: _Segment) -> None:
        with contextlib.suppress(OSError):
            seg.path.unlink()
        self._segments.remove(seg)
        self._bytes -= seg.size
        seg.gone = True
        if seg is self._holder:
            self._holder = None  # dropped as the oldest: no older frame needs its numbering

    def _drop(self, seg: _Segment) -> None:
        """Delete ``seg`` to stay within max_bytes, counting its unacked frames as dropped."""
        for sid, (first, last, n) in seg.data.items():
            st = self._by_id[sid]
            count, lo = st.unacked(first, last, n)
            if count:
                self.dropped += count
                self._drops.append(Dropped(st.name, lo, last, count, FULL))
        self._delete(seg)

    def _move(self, st: _Stream, lo: int, hi: int, shift: int) -> None:
        """The stream's frames whose last seq is in lo..hi-1 move up by ``shift``."""
        st.moves.append((lo, hi, shift))
        for seg in self._segments:
            summary = seg.data.get(st.id)
            if summary is not None:
                for i in (0, 1):  # (a first batch straddling lo keeps its first: a summary)
                    if lo <= summary[i] < hi:
                        summary[i] += shift
        if lo <= st.next_seq - 1 < hi:
            st.next_seq += shift

    def _shift(self, st: _Stream, shift: int) -> None:
        """The stream's first ack: its provisional seqs become the server's (+ ``shift``)."""
        st.shift = shift
        st.next_seq += shift
        for seg in self._segments:
            summary = seg.data.get(st.id)
            if summary is not None:
                summary[0] += shift
                summary[1] += shift

    # --- loading --------------------------------------------------------------------------

    def _load(self) -> None:
        numbers = sorted(
            int(p.stem)
            for p in self.directory.glob(f"*{SUFFIX}")
            if p.stem.isdigit() and p.is_file()
        )
        for number in numbers:
            path = self.directory / f"{number:08d}{SUFFIX}"
            seg = _Segment(number, path, path.stat().st_size)
            self._segments.append(seg)
            self._bytes += seg.size
            for kind, body in _records(path, warn=True):
                self._apply(seg, kind, body)
        self._next_number = numbers[-1] + 1 if numbers else 1
        for seg in list(self._segments):
            if self._settled(seg):
                self._remove(seg)
        if self._segments:
            log.info(
                "spool %s: %d unacked frames of %d streams from an earlier run",
                self.directory,
                self.frames,
                len(self._streams),
            )

    def _apply(self, seg: _Segment, kind: int, body: bytes) -> None:
        try:
            if kind == SESSION:
                self.session_info = _session_decoder.decode(body[1:])
            elif kind == STREAM:
                self._apply_stream(seg, _stream_decoder.decode(body[1:]))
            elif kind == DATA:
                sid, flags, n, last = _DATA.unpack_from(body, 1)
                st = self._by_id[sid]
                last = st.seq(last, bool(flags & PROVISIONAL))
                summary = seg.data.get(sid)
                if summary is None:
                    seg.data[sid] = [last - n + 1, last, n]
                else:
                    summary[1] = last
                    summary[2] += n
                st.next_seq = max(st.next_seq, last + 1)
            elif kind == ACK:
                sid, seq = _ACK.unpack_from(body, 1)
                st = self._by_id[sid]
                st.acked = max(st.acked, seq)
                if st.shift is not None:  # acked frames may have been sent but not kept
                    st.next_seq = max(st.next_seq, seq + 1)
        except (msgspec.DecodeError, struct.error, KeyError) as exc:
            log.warning("spool %s: skipped a record it cannot read (%r)", seg.path, exc)

    def _apply_stream(self, seg: _Segment, rec: _StreamRecord) -> None:
        st = self._streams.get(rec.stream)
        if st is None:
            st = _Stream(
                rec.stream,
                rec.id,
                rec.channels,
                rec.driver,
                rec.car,
                rec.next_seq,
                rec.shift,
                rec.acked,
                list(rec.moves),
            )
            self._streams[rec.stream] = st
            self._by_id[rec.id] = st
            if rec.shift is not None:
                self._holder = seg
            return
        st.channels, st.driver, st.car = rec.channels, rec.driver, rec.car
        if rec.shift is not None and st.shift is None:
            self._shift(st, rec.shift)
            self._holder = seg
        for lo, hi, shift in rec.moves[len(st.moves) :]:  # moves made after the last seen
            self._move(st, lo, hi, shift)
            self._holder = seg
        if (rec.shift is None) == (st.shift is None):
            st.next_seq = max(st.next_seq, rec.next_seq)
        st.acked = max(st.acked, rec.acked)


def _record(kind: int, head: bytes, data: bytes = b"") -> list[bytes]:
    """One record, as parts to write together."""
    body_head = bytes((kind,)) + head
    crc = zlib.crc32(data, zlib.crc32(body_head))
    return [_RECORD.pack(len(body_head) + len(data), crc), body_head, data]


def _write_all(fd: int, parts: list[bytes]) -> None:
    """Write ``parts`` to ``fd`` in one system call where possible."""
    size = sum(len(p) for p in parts)
    # One system call per record (os.writev is missing on Windows).
    written = os.writev(fd, parts) if hasattr(os, "writev") else os.write(fd, b"".join(parts))
    if written < size:
        rest = memoryview(b"".join(parts))[written:]
        while rest:
            rest = rest[os.write(fd, rest) :]


def _records(path: Path, *, warn: bool = False) -> Iterator[tuple[int, bytes]]:
    """(kind, body) of each intact record of a segment, in order, up to the first damaged
    or incomplete one; a missing file has none."""
    try:
        f = open(path, "rb", buffering=0)  # noqa: SIM115 - held across yields
    except FileNotFoundError:
        return
    with f:
        if f.read(len(MAGIC)) != MAGIC:
            if warn:
                log.warning("spool: %s is not a spool segment; ignored", path)
            return
        buf = b""
        pos = 0
        offset = len(MAGIC)  # of buf[0] in the file
        while True:
            need = _RECORD.size
            if len(buf) - pos >= need:
                length, crc = _RECORD.unpack_from(buf, pos)
                if not 0 < length <= _MAX_BODY:
                    break
                need += length
            if len(buf) - pos < need:
                more = f.read(max(_READ_CHUNK, need))
                if not more:
                    break
                offset += pos
                buf = buf[pos:] + more
                pos = 0
                continue
            body = buf[pos + _RECORD.size : pos + need]
            if zlib.crc32(body) != crc:
                break
            pos += need
            yield body[0], body
        if pos < len(buf) and warn:
            log.warning(
                "spool: ignored a damaged or incomplete record at byte %d of %s and what "
                "follows it (the agent was probably stopped while writing it)",
                offset + pos,
                path,
            )


def _lock(path: Path) -> int:
    """Hold ``path`` locked for this process (released when it ends, even by a kill)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | _O_BINARY, 0o600)
    try:
        if sys.platform == "win32":
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise SpoolLocked(
            f"spool directory {path.parent} is in use by another running agent"
        ) from None
    return fd


def _private_dir(path: Path, *, own: bool = False) -> None:
    """Make the folder ``path`` private (0700) if it is missing (its missing parents get the
    usual permissions) or if it is ``own`` (a session's: only the agent uses it)."""
    if path.is_dir():
        if own and sys.platform != "win32":
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        return
    if path.exists():
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700, exist_ok=True)


def discard(directory: str | os.PathLike[str]) -> tuple[int, str]:
    """Delete the spool in ``directory`` (``agent --discard-spool``): how many frames were
    not acknowledged, and the server they were for (without password). Raises SpoolError
    if there is no spool there, SpoolLocked if an agent is using it."""
    directory = Path(directory)
    if not directory.is_dir():
        raise SpoolError(f"no spool in {directory}")
    spool = Spool(directory)
    info = spool.session_info
    return spool.discard(), info.server if info is not None else ""


def session_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """The session directories under a spool root that hold segments, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [d for d in root.iterdir() if d.is_dir() and any(d.glob(f"*{SUFFIX}"))]
    return sorted(found, key=lambda d: d.stat().st_mtime)
