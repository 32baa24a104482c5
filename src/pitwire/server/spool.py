"""The server's spool: frames that wait on disk while the store is unavailable.

``Persistence`` appends chunks here instead of writing them to the store while the store is
down (and until everything spooled has been drained into it), and drains them oldest first.
This module is only the log: an append-only, CRC-checked record file in segments. It makes
no decision about when to spool or drain, and every method does blocking file I/O (call it
from one worker thread at a time; ``Persistence`` does).

Directory layout::

    lock                    flock'ed by the server using the directory (one server per spool)
    store                   the identity of the store it feeds (``store_identity``)
    000000000001.spool      segments, oldest first; a new one at every start and every
    000000000002.spool      ``segment_bytes``; deleted once every record in it is drained

Where: ``default_dir`` of the store (beside an SQLite file, else a folder in ``state_dir``
named after the store's identity, so that every spelling of its URL finds it). At start a
server takes over the segments of other folders there holding frames for its store
(``adopt_strays``: a URL spelt otherwise before, or a folder an older pitwire named), since
their frames were acknowledged to agents. A server that fails to start removes the folder
it created (``abandon``).

Segment format (little-endian)::

    segment := "PWSPOOL1" record*
    record  := u32 body length | u32 CRC-32 (zlib) of body | body
    body    := MessagePack of a tagged array, one of
               ["d", SessionInfo, StreamInfo]                                   Declare
               ["f", session, stream, first_seq, n, [[name, dtype], ...], data]  Frames
    data    := zstd frame of: t_ns as n x <i8, then each column as n x its dtype
               (numpy ``dtype.str``, little-endian: "<f4", "<f8")

Columns are kept raw, so every value comes back bit for bit (NaN payloads, -0.0); the
storage codec (quantization, deltas) is applied when the frames reach the store, and the
spool does not depend on its version. Every segment declares
(``Declare``) each stream before that stream's first frames in it, so a segment left by a
killed server can be drained on its own into a store that does not know the session yet.

Durability: ``append`` writes a group of records with one ``write`` and one ``fsync``, and a
new segment's directory entry is fsynced too, so a record ``append`` returned for survives a
kill of the process or the machine. A crash during ``append`` can leave a torn record at the
end of a segment; ``open`` ignores everything from the first record that is cut short or
fails its CRC to the end of that segment, with a warning (such a record was never
acknowledged: the agent still has it). Nothing is ever appended after a torn tail, because
each start appends to a new segment.

Exceptions::

    SpoolError          the spool cannot be used (not a spool, cannot be created)
    ├── SpoolInUse      another server holds its lock
    └── SpoolFull       the segments reached ``max_bytes``; nothing was written

OSError from the disk (ENOSPC, EIO) passes through; a failed ``append`` is rolled back.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

import msgspec
import numpy as np
import zstandard

from pitwire.model.frames import FrameBatch
from pitwire.model.records import SessionInfo, StreamInfo

try:
    import fcntl
except ImportError:  # Windows: no advisory lock, one server per --spool-dir is on the user
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger("pitwire.spool")

MAGIC = b"PWSPOOL1"
DEFAULT_MAX_BYTES = 4 * 10**9
"""Default bound of the spool's segments on disk [bytes]."""
DEFAULT_SEGMENT_BYTES = 64 * 2**20
"""A new segment starts once the active one holds this much [bytes]."""
_HEAD = struct.Struct("<II")
_MAX_RECORD = 1 << 30
_SEGMENT_NAME = re.compile(r"^(\d{12})\.spool$")
_ZSTD_LEVEL = 1  # the spool is transient: speed over ratio

Key = tuple[str, str]
"""(session, stream)."""
Position = tuple[int, int]
"""(segment number, offset just after a record): where ``consume`` may move the cursor."""


class SpoolError(Exception):
    """The spool cannot be used."""


class SpoolInUse(SpoolError):
    """Another server holds the spool's lock."""


class SpoolFull(SpoolError):
    """The spool reached its size bound; nothing was written."""


class Declare(msgspec.Struct, tag="d", array_like=True):
    """The session and stream that later ``Frames`` records of the stream belong to."""

    session: SessionInfo
    stream: StreamInfo


class Frames(msgspec.Struct, tag="f", array_like=True):
    """Frames first_seq .. first_seq + n - 1 of one stream: (name, dtype) per column, and
    the zstd-compressed raw arrays (t_ns first)."""

    session: str
    stream: str
    first_seq: int
    n: int
    columns: list[tuple[str, str]]
    data: bytes


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Declare | Frames)


@dataclass(frozen=True, slots=True)
class Spooled:
    """A Frames record, decoded: what ``read`` returns for it."""

    session: str
    stream: str
    first_seq: int
    batch: FrameBatch


@dataclass(eq=False, slots=True)
class _Segment:
    number: int
    path: Path
    size: int  # bytes of whole records (a torn tail excluded)


class Spool:
    """An append-only record log in ``directory`` (see the module docstring).

    max_bytes: ``append`` raises SpoolFull once the segments hold this much [bytes] (one
    group of records may pass it)
    segment_bytes: start a new segment once the active one holds this much [bytes]
    store: the identity of the store it feeds (``store_identity``), kept in the file
    ``store``; ``open`` refuses a spool holding frames for another store (identities are
    compared normalised: one recorded by an older pitwire, or for another spelling of the
    same store's URL, is the same store)
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        store: str | None = None,
    ) -> None:
        if max_bytes <= 0 or segment_bytes <= 0:
            raise ValueError("max_bytes and segment_bytes must be positive")
        self.directory = Path(directory)
        self.store = store
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self.frames = 0
        """Frames in records not yet consumed."""
        self.bytes = 0
        """Bytes of the segments on disk (torn tails excluded)."""
        self.torn_bytes = 0
        """Bytes ignored by ``open`` after torn or corrupt records."""
        self._lock_fd: int | None = None
        self._created = False  # lock created the directory
        self._opened = False
        self._segments: list[_Segment] = []  # oldest first; the cursor is in the first
        self._offset = len(MAGIC)  # the cursor: offset in _segments[0]
        self._wfd: int | None = None  # the active (last) segment, open for appending
        self._reader: tuple[int, BinaryIO] | None = None
        self._next_number = 1
        self._decls: dict[Key, tuple[int, Declare]] = {}  # latest declaration and its version
        self._declared: dict[Key, int] = {}  # version declared in the active segment
        self._high: dict[Key, int] = {}
        self._zc = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
        self._zd = zstandard.ZstdDecompressor()

    def __repr__(self) -> str:
        return f"Spool({str(self.directory)!r})"

    # --- life cycle ----------------------------------------------------------------------

    def lock(self) -> None:
        """Create the directory and take its lock; SpoolError when another server holds it
        or it cannot be created. ``open`` calls it; call it early to fail early."""
        if self._lock_fd is not None:
            return
        try:
            self._created = not self.directory.is_dir()
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.directory / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise SpoolError(
                f"cannot use spool directory {self.directory}: {exc.strerror or exc}"
            ) from exc
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                raise SpoolInUse(
                    f"spool directory {self.directory} is in use by another pitwire server; "
                    "give each server its own --spool-dir"
                ) from exc
        self._lock_fd = fd

    def open(self) -> None:
        """Lock the directory and scan what an earlier run left (torn tails ignored)."""
        self.lock()
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        self._segments, self.bytes, self.frames, self.torn_bytes = [], 0, 0, 0
        highs: dict[Key, int] = {}
        for path in sorted(self.directory.iterdir()):
            match = _SEGMENT_NAME.match(path.name)
            if match is None or not path.is_file():
                continue
            seg = _Segment(int(match[1]), path, len(MAGIC))
            self._scan(seg, highs)
            self._segments.append(seg)
            self.bytes += seg.size
            self._next_number = max(self._next_number, seg.number + 1)
        self._offset = len(MAGIC)
        self._check_store()
        self._high = highs
        self._opened = True
        if self.frames:
            log.info(
                "spool %s: %d frames of %d streams in %d segments from an earlier run",
                self.directory,
                self.frames,
                len(highs),
                len(self._segments),
            )

    def _check_store(self) -> None:
        if self.store is None:
            return
        mark = self.directory / "store"
        known = mark.read_text().strip() if mark.is_file() else None
        if (
            known is not None
            and not _same_store(known, self.store, self.directory)
            and not self.is_empty()
        ):
            raise SpoolError(
                f"spool {self.directory} holds frames for the store {known}, not "
                f"{self.store}; start the server on that store to drain it, or move it away"
            )
        if known != self.store:
            mark.write_text(self.store + "\n")

    def _scan(self, seg: _Segment, highs: dict[Key, int]) -> None:
        data = seg.path.read_bytes()
        if len(data) < len(MAGIC):  # cut short while being created: holds nothing
            self.torn_bytes += len(data)
            return
        if data[: len(MAGIC)] != MAGIC:
            raise SpoolError(
                f"{seg.path} is not a pitwire spool segment; move it out of the spool directory"
            )
        off = len(MAGIC)
        view = memoryview(data)
        while off + _HEAD.size <= len(data):
            length, crc = _HEAD.unpack_from(data, off)
            end = off + _HEAD.size + length
            if length > _MAX_RECORD or end > len(data):
                break
            body = view[off + _HEAD.size : end]
            if zlib.crc32(body) != crc:
                break
            try:
                record = _decoder.decode(body)
            except msgspec.DecodeError:
                break
            match record:
                case Declare():
                    key = (record.session.session_id, record.stream.stream_id)
                    version = self._decls.get(key, (0, record))[0] + 1
                    self._decls[key] = (version, record)
                case Frames():
                    key = (record.session, record.stream)
                    highs[key] = max(highs.get(key, -1), record.first_seq + record.n - 1)
                    self.frames += record.n
            off = end
        seg.size = off
        if off < len(data):
            self.torn_bytes += len(data) - off
            log.warning(
                "spool segment %s: ignoring %d bytes after offset %d (a record cut short or "
                "corrupt; such a record was never acknowledged)",
                seg.path,
                len(data) - off,
                off,
            )

    def adopt(self, other: str | os.PathLike[str]) -> int:
        """Move the segments of the spool folder ``other`` (frames for the same store) behind
        this spool's, so that ``open`` finds them, and remove ``other`` once emptied; return
        how many segments moved. Call after ``lock``, before ``open``. SpoolInUse when
        another server uses ``other``; OSError from the disk (each segment is moved whole
        or not at all: a rename in one file system)."""
        if self._lock_fd is None or self._opened:
            raise RuntimeError("adopt needs a locked spool that is not open yet")
        theirs = Spool(other)
        theirs.lock()
        try:
            numbers = [
                int(m[1]) for p in self.directory.iterdir() if (m := _SEGMENT_NAME.match(p.name))
            ]
            number = max(numbers, default=0)
            moved = 0
            for path in sorted(theirs.directory.iterdir()):
                if _SEGMENT_NAME.match(path.name) is None or not path.is_file():
                    continue
                number += 1
                os.rename(path, self.directory / f"{number:012d}.spool")
                moved += 1
            _fsync_dir(self.directory)
            _fsync_dir(theirs.directory)
            for name in ("store", "lock"):
                with contextlib.suppress(FileNotFoundError):
                    (theirs.directory / name).unlink()
        finally:
            theirs.close()
        with contextlib.suppress(OSError):  # something else in it: leave it
            theirs.directory.rmdir()
        return moved

    def abandon(self) -> None:
        """Close after the server failed to start, and remove the directory if ``lock``
        created it and nothing was spooled in it: a failed start leaves nothing behind."""
        removed = False
        try:
            if self._lock_fd is not None and self._created and self._unused():
                for path in self.directory.iterdir():  # the lock stays held until close
                    path.unlink()
                removed = True
        except OSError as exc:
            log.warning("could not remove the unused spool %s: %s", self.directory, exc)
        finally:
            self.close()
        if removed:
            with contextlib.suppress(OSError):  # another server came meanwhile: leave it
                self.directory.rmdir()

    def _unused(self) -> bool:
        """The directory holds only the lock, the store's name and segments without records."""
        for path in self.directory.iterdir():
            if path.name in ("lock", "store"):
                continue
            if _SEGMENT_NAME.match(path.name) is None or path.stat().st_size > len(MAGIC):
                return False
        return True

    def close(self) -> None:
        """Release files and the lock; what is spooled stays for the next ``open``."""
        self._close_reader()
        if self._wfd is not None:
            os.close(self._wfd)
            self._wfd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None

    # --- state ---------------------------------------------------------------------------

    @property
    def full(self) -> bool:
        return self.bytes >= self.max_bytes

    def is_empty(self) -> bool:
        """True when every record was consumed (or none was ever written)."""
        if not self._segments:
            return True
        if self._offset < self._segments[0].size:
            return False
        return all(seg.size <= len(MAGIC) for seg in self._segments[1:])

    def high_waters(self) -> dict[Key, int]:
        """Per stream, the highest seq ever spooled (a gap below it stays a gap: frames an
        agent dropped, or a record the disk corrupted): where the stream continues. Kept
        until ``reset``."""
        return dict(self._high)

    def segment_paths(self) -> list[Path]:
        return [seg.path for seg in self._segments]

    # --- writing -------------------------------------------------------------------------

    def declare(self, session: SessionInfo, stream: StreamInfo) -> None:
        """Remember the session and stream of a key; written before its next frames. Safe to
        call from the event loop while another thread appends."""
        key = (session.session_id, stream.stream_id)
        record = Declare(session=session, stream=stream)
        known = self._decls.get(key)
        if known is None or _encoder.encode(known[1]) != _encoder.encode(record):
            self._decls[key] = ((known[0] if known else 0) + 1, record)

    def append(self, items: list[tuple[str, str, int, FrameBatch]]) -> None:
        """Append (session, stream, first_seq, batch) records durably (one write, one fsync).
        SpoolFull when the spool is full; OSError when the disk fails (nothing kept)."""
        if not items:
            return
        if self.full:
            raise SpoolFull(
                f"spool {self.directory} holds {self.bytes} bytes (limit {self.max_bytes})"
            )
        fd = self._wfd
        if fd is None or self._segments[-1].size >= self.segment_bytes:
            fd = self._rotate()
        buf = bytearray()
        declared: dict[Key, int] = {}
        highs: dict[Key, int] = {}
        frames = 0
        for session, stream, first_seq, batch in items:
            key = (session, stream)
            decl = self._decls.get(key)
            if decl is not None and self._declared.get(key) != decl[0] and key not in declared:
                _put(buf, decl[1])
                declared[key] = decl[0]
            _put(buf, self._frames(session, stream, first_seq, batch))
            frames += batch.n
            highs[key] = max(highs.get(key, -1), first_seq + batch.n - 1)
        seg = self._segments[-1]
        try:
            _write_all(fd, buf)
            _fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, seg.size)
            raise
        seg.size += len(buf)
        self.bytes += len(buf)
        self.frames += frames
        self._declared.update(declared)
        for key, high in highs.items():
            self._high[key] = max(self._high.get(key, -1), high)

    def _frames(self, session: str, stream: str, first_seq: int, batch: FrameBatch) -> Frames:
        arrays = [np.ascontiguousarray(batch.t_ns, "<i8")]
        arrays += [
            np.ascontiguousarray(c, c.dtype.newbyteorder("<")) for c in batch.columns.values()
        ]
        columns = [(name, a.dtype.str) for name, a in zip(batch.columns, arrays[1:], strict=True)]
        data = self._zc.compress(b"".join(a.tobytes() for a in arrays))
        return Frames(session, stream, first_seq, batch.n, columns, data)

    def _batch(self, record: Frames) -> FrameBatch:
        """The frames of a record; ValueError when they do not decode to its shape."""
        try:
            raw = bytearray(self._zd.decompress(record.data))
        except zstandard.ZstdError as exc:
            raise ValueError(str(exc)) from exc
        n = record.n
        t_ns = np.frombuffer(raw, "<i8", count=n)
        off, columns = 8 * n, {}
        for name, dtype in record.columns:
            dt = np.dtype(dtype)
            if dt.kind not in "fiu":
                raise ValueError(f"column {name!r} has dtype {dtype!r}")
            columns[name] = np.frombuffer(raw, dt, count=n, offset=off)
            off += dt.itemsize * n
        if off != len(raw):
            raise ValueError(f"{len(raw)} bytes for {n} frames of {len(columns)} columns")
        return FrameBatch(t_ns, columns)

    def _rotate(self) -> int:
        if self._wfd is not None:
            os.close(self._wfd)
            self._wfd = None
        path = self.directory / f"{self._next_number:012d}.spool"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | getattr(os, "O_BINARY", 0)
        fd = os.open(path, flags, 0o644)
        try:
            _write_all(fd, MAGIC)
            _fsync(fd)
            _fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        self._wfd = fd
        self._segments.append(_Segment(self._next_number, path, len(MAGIC)))
        self._next_number += 1
        self.bytes += len(MAGIC)
        self._declared = {}
        return fd

    # --- reading -------------------------------------------------------------------------

    def read(self, limit: int) -> list[tuple[Position, Declare | Spooled]]:
        """Up to ``limit`` records from the cursor, oldest first, without consuming them."""
        out: list[tuple[Position, Declare | Spooled]] = []
        k, off = 0, self._offset
        while len(out) < limit and k < len(self._segments):
            seg = self._segments[k]
            if off >= seg.size:
                k, off = k + 1, len(MAGIC)
                continue
            f = self._reader_of(seg)
            f.seek(off)
            head = f.read(_HEAD.size)
            length, crc = _HEAD.unpack(head) if len(head) == _HEAD.size else (0, 0)
            body = f.read(length)
            record: Declare | Frames | None = None
            if len(head) == _HEAD.size and len(body) == length and zlib.crc32(body) == crc:
                with contextlib.suppress(msgspec.DecodeError):
                    record = _decoder.decode(body)
            if record is None:
                # Written whole (or checked by open) before: the disk changed it since.
                log.error(
                    "spool segment %s is corrupt at offset %d; its %d remaining bytes are lost",
                    seg.path,
                    off,
                    seg.size - off,
                )
                self.bytes -= seg.size - off
                seg.size = off
                if seg is self._segments[-1] and self._wfd is not None:
                    os.close(self._wfd)  # append to a new segment, never after the damage
                    self._wfd = None
                continue
            off += _HEAD.size + length
            if isinstance(record, Frames):
                try:
                    batch = self._batch(record)
                except ValueError as exc:
                    log.error("spool segment %s: a record does not decode (%s)", seg.path, exc)
                    continue
                entry: Declare | Spooled = Spooled(
                    record.session, record.stream, record.first_seq, batch
                )
            else:
                entry = record
            out.append(((seg.number, off), entry))
        return out

    def consume(self, position: Position, frames: int) -> None:
        """Everything up to ``position`` (from ``read``), holding ``frames`` frames, is in the
        store: move the cursor there and delete the segments it left behind."""
        number, off = position
        self.frames = max(0, self.frames - frames)
        while self._segments and self._segments[0].number < number:
            self._delete(self._segments.pop(0))
        self._offset = off
        while (
            self._segments
            and self._offset >= self._segments[0].size
            and (len(self._segments) > 1 or self._wfd is None)
        ):
            self._delete(self._segments.pop(0))
            self._offset = len(MAGIC)

    def reset(self) -> None:
        """Delete every segment (call when ``is_empty``): the next ``append`` starts afresh."""
        if self._wfd is not None:
            os.close(self._wfd)
            self._wfd = None
        while self._segments:
            self._delete(self._segments.pop(0))
        self._offset = len(MAGIC)
        self.frames = 0
        self._declared = {}
        self._high = {}

    def _reader_of(self, seg: _Segment) -> BinaryIO:
        if self._reader is None or self._reader[0] != seg.number:
            self._close_reader()
            self._reader = (seg.number, open(seg.path, "rb"))  # noqa: SIM115 - kept open
        return self._reader[1]

    def _close_reader(self) -> None:
        if self._reader is not None:
            self._reader[1].close()
            self._reader = None

    def _delete(self, seg: _Segment) -> None:
        if self._reader is not None and self._reader[0] == seg.number:
            self._close_reader()
        with contextlib.suppress(FileNotFoundError):
            seg.path.unlink()
        self.bytes -= seg.size


def _put(buf: bytearray, record: Declare | Frames) -> None:
    body = _encoder.encode(record)
    buf += _HEAD.pack(len(body), zlib.crc32(body))
    buf += body


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync(fd: int) -> None:
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def _fsync_dir(directory: Path) -> None:
    if sys.platform == "win32":  # directories cannot be opened (nor need syncing) there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def store_identity(store_url: str) -> str:
    """Which store ``store_url`` names: what identifies its data, safe to write down (no
    password). A spool keeps it (file ``store``) and ``default_dir`` is named after it, so
    that every spelling of one store's URL finds the same spool.

    PostgreSQL: ``postgresql://user@host:port/database?schema=NAME``: ``postgres://`` is
    ``postgresql://``, the port defaults to 5432, the schema to ``public`` and the database to
    the user (as in libpq); host, port, user and database may come from the query (``?host=``
    for a socket folder); options that change how the store is reached, not what it holds
    (pool size, timeouts, ssl, application_name), are left out. Nothing is taken from the
    environment (``PGHOST``...). SQLite: ``sqlite:///`` and the file's resolved absolute
    path. Other schemes: the URL without its password. An identity is its own identity, and
    one an older pitwire wrote (the URL without its password) comes out the same."""
    parts = urlsplit(store_url)
    scheme = parts.scheme.lower()
    if scheme in ("postgresql", "postgres"):
        return _postgres_identity(parts.netloc, parts.path, parts.query)
    if scheme == "sqlite":
        return f"sqlite:///{_sqlite_path(store_url).resolve()}"
    user = f"{parts.username}@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    query = sorted((k, v) for k, v in parse_qsl(parts.query) if "pass" not in k.lower())
    where = f"{parts.scheme}://{user}{parts.hostname or ''}{port}{parts.path}"
    return f"{where}?{urlencode(query)}" if query else where


def _postgres_identity(netloc: str, path: str, query_text: str) -> str:
    query = dict(parse_qsl(query_text, keep_blank_values=True))  # the last of each wins
    userinfo, _, hostinfo = netloc.rpartition("@")
    user = unquote(userinfo.partition(":")[0]) or query.get("user", "")
    hosts = unquote(hostinfo) or query.get("host", "")
    port = query.get("port", "")
    database = unquote(path[1:]) or query.get("dbname") or query.get("database") or user
    where = ",".join(_host_port(entry, port) for entry in hosts.split(","))
    who = f"{quote(user, safe='')}@" if user else ""
    schema = urlencode({"schema": query.get("schema") or "public"})
    return f"postgresql://{who}{quote(where, safe='[]:,')}/{quote(database, safe='')}?{schema}"


def _host_port(entry: str, default_port: str) -> str:
    """``host:port`` of one libpq host entry (``db``, ``db:5433``, ``[::1]:5432``, a socket
    folder), the host lower-cased (but a socket folder) and the port defaulted."""
    if entry.startswith("["):
        host, _, rest = entry.partition("]")
        host, port = f"{host}]".lower(), rest[1:]
    elif entry.count(":") == 1:
        host, _, port = entry.partition(":")
    else:
        host, port = entry, ""
    if not host.startswith("/"):
        host = host.lower()
    port = port or default_port or "5432"
    with contextlib.suppress(ValueError):
        port = str(int(port))
    return f"{host}:{port}"


def _sqlite_path(store_url: str) -> Path:
    """The file of an SQLite URL, as the store reads it (relative to the working folder)."""
    from pitwire.store.base import StoreError
    from pitwire.store.sqlite import SqliteStore

    try:
        return SqliteStore.from_url(store_url).path
    except StoreError:  # options this pitwire does not know: an identity written by another
        return Path(unquote(urlsplit(store_url).path)[1:])


def _same_store(known: str, store: str, directory: Path) -> bool:
    """Whether the identity ``known`` a spool in ``directory`` recorded is ``store``."""
    try:
        if store_identity(known) == store_identity(store):
            return True
    except ValueError:  # not a URL (e.g. a bad IPv6 host): not this store
        return False
    # Older pitwires wrote an SQLite path as given, maybe relative to the folder the server
    # ran in; its spool sat beside the file (``<db>.spool``), which tells that folder.
    if urlsplit(known).scheme != "sqlite":
        return False
    relative = Path(unquote(urlsplit(known).path)[1:])
    beside = Path(f"{relative}.spool").parts
    here = directory.resolve().parts
    if relative.is_absolute() or here[-len(beside) :] != beside:
        return False
    ran_in = Path(*here[: -len(beside)])
    return store_identity(f"sqlite:///{ran_in / relative}") == store_identity(store)


def state_dir() -> Path:
    """Where ``default_dir`` puts the spools of stores other than SQLite: the user's state
    folder (``$XDG_STATE_HOME`` or ``~/.local/state``, ``%LOCALAPPDATA%`` on Windows)
    ``/pitwire/server-spool``."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        state = Path(os.environ["LOCALAPPDATA"])
    else:
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
    return state / "pitwire" / "server-spool"


def default_dir(store_url: str) -> Path | None:
    """Where the spool of a server on ``store_url`` lives unless told: beside an SQLite file
    (``data/pitwire.db`` → ``data/pitwire.db.spool``); none for ``memory://`` (nothing to wait
    for, and nothing of it survives a restart anyway); else a per-store folder in
    ``state_dir()``: ``<scheme>-<hash of store_identity>``, the same for every spelling of the
    store's URL."""
    parts = urlsplit(store_url)
    if parts.scheme == "memory":
        return None
    if parts.scheme == "sqlite":
        path = _sqlite_path(store_url)
        return path.with_name(path.name + ".spool")
    identity = store_identity(store_url)
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return state_dir() / f"{urlsplit(identity).scheme or 'store'}-{digest}"


def strays(directory: str | os.PathLike[str], store: str) -> list[Path]:
    """The spool folders in ``state_dir()``, other than ``directory``, that hold frames for
    ``store`` (a URL or identity): left by a server on another spelling of its URL, or named
    by an older pitwire. Their frames were acknowledged to agents and wait to be stored."""
    root = state_dir()
    if not root.is_dir():
        return []
    here = Path(directory).resolve()
    found = []
    for folder in sorted(root.iterdir()):
        mark = folder / "store"
        if folder.resolve() == here or not mark.is_file():
            continue
        try:
            known = mark.read_text().strip()
            holds = any(
                _SEGMENT_NAME.match(p.name) and p.stat().st_size > len(MAGIC)
                for p in folder.iterdir()
            )
        except OSError:
            continue
        if holds and _same_store(known, store, folder):
            found.append(folder)
    return found


def adopt_strays(spool: Spool) -> None:
    """Move into ``spool`` (locked, not opened) the segments of every stray spool folder of
    its store (``strays``), so that they are drained with its own; log an error naming
    those that cannot be (the disk refused), and skip those another server uses (it stores
    them)."""
    if spool.store is None:
        return
    try:
        found = strays(spool.directory, spool.store)
    except OSError as exc:
        log.warning("could not look for other spools of this store in %s: %s", state_dir(), exc)
        return
    for folder in found:
        try:
            moved = spool.adopt(folder)
        except SpoolInUse:
            log.info("spool %s also holds frames for this store; its server stores them", folder)
            continue
        except (SpoolError, OSError) as exc:
            log.error(
                "spool %s holds frames for this store (%s), acknowledged to agents and not "
                "stored, and cannot be taken over (%s); run a server on this store with "
                "--spool-dir %s to store them",
                folder,
                spool.store,
                exc,
                folder,
            )
            continue
        log.warning(
            "took over %d segments of the spool %s (frames for this store, left by a server "
            "on another spelling of its URL or by an older pitwire): they are stored from %s",
            moved,
            folder,
            spool.directory,
        )
