"""The ``.pwr`` session file format (spec/sessionfile.md): constants, the header, block
framing and the index, as pure functions over bytes. ``writer`` and ``reader`` do the I/O.
"""

from __future__ import annotations

import struct
import zlib

import msgspec

from pitwire.model.records import LapInfo, SessionInfo, StreamInfo

MAGIC = b"\x89PWR\r\n\x1a\n"
"""First 8 bytes of every session file (binary-safe: a text-mode copy breaks it visibly)."""
VERSION = 1
"""The format version this module writes; readers refuse newer ones."""

FILE_HEAD = struct.Struct("<8sHHI")  # magic, version, flags, header length
BLOCK_SYNC = b"PWBK"
BLOCK_HEAD = struct.Struct("<4sBBHII")  # sync, kind, flags, reserved, payload length, crc32
TRAILER = struct.Struct("<8sQ")  # b"PWRINDEX", offset of the index block
TRAILER_MAGIC = b"PWRINDEX"

DATA, STREAM, LAP, SESSION, INDEX = 1, 2, 3, 4, 16
"""Block kinds."""
KIND_NAMES = {DATA: "data", STREAM: "stream", LAP: "lap", SESSION: "session", INDEX: "index"}
SEGMENT_START = 0x01
"""DATA flag: a new segment (fresh compression and delta state) starts with this block."""

ENTRY = struct.Struct("<HIQqq")  # stream number, frames, first seq, t0_ns, t1_ns
ENTRY_COUNT = struct.Struct("<H")
MAX_PAYLOAD = 1 << 30


class SessionFileError(ValueError):
    """A file is not a pitwire session file, is of a newer version, or its header is
    damaged (nothing can be read from it)."""


class FileHeader(msgspec.Struct, kw_only=True):
    """What the file starts with: the session and the streams known when it was created."""

    session: SessionInfo
    streams: list[StreamInfo] = msgspec.field(default_factory=list)
    created_ns: int = 0
    writer: str = ""


class StreamDecl(msgspec.Struct, kw_only=True):
    """A STREAM block: stream ``number`` is (now) ``info``. Later declarations of the same
    number replace earlier ones (a driver learned late, channels added)."""

    number: int
    info: StreamInfo


class Entry(msgspec.Struct, array_like=True, frozen=True):
    """One stream's frames in one DATA block (kept in clear, before the compressed part)."""

    stream: int
    n: int
    first_seq: int
    t0_ns: int
    t1_ns: int


class Segment(msgspec.Struct, array_like=True):
    """A run of DATA blocks decoded from one start: its first block's offset and its entries'
    union per stream: stream number -> [t0_ns, t1_ns, first_seq, frames]."""

    offset: int
    streams: dict[int, list[int]] = msgspec.field(default_factory=dict)

    def add(self, e: Entry) -> None:
        known = self.streams.get(e.stream)
        if known is None:
            self.streams[e.stream] = [e.t0_ns, e.t1_ns, e.first_seq, e.n]
        else:
            known[0], known[1] = min(known[0], e.t0_ns), max(known[1], e.t1_ns)
            known[3] += e.n


class Declared(msgspec.Struct, array_like=True):
    """A STREAM block's declaration and where it is in the file."""

    offset: int
    decl: StreamDecl


class Index(msgspec.Struct, kw_only=True):
    """The INDEX block written on close: everything needed to open the file in one read."""

    session: SessionInfo
    declarations: list[Declared]
    laps: list[LapInfo]
    segments: list[Segment]
    data_end: int
    """Offset where the INDEX block starts (= the end of the data)."""
    data_start: int = 0
    """Offset of the first block: lets a reader use the index when the header is damaged."""
    header_streams: int = 0
    """How many of ``declarations`` come from the header (offset 0)."""


_msgpack = msgspec.msgpack.Encoder()


def file_head(header: FileHeader) -> bytes:
    body = _msgpack.encode(header)
    head = FILE_HEAD.pack(MAGIC, VERSION, 0, len(body))
    return head + body + struct.pack("<I", zlib.crc32(head[8:] + body))


def block(kind: int, payload: bytes, flags: int = 0) -> bytes:
    head = BLOCK_HEAD.pack(BLOCK_SYNC, kind, flags, 0, len(payload), 0)
    crc = zlib.crc32(payload, zlib.crc32(head[:12]))
    return head[:12] + struct.pack("<I", crc) + payload


def block_crc(head: bytes, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(head[:12]))


def data_payload(entries: list[Entry], compressed: bytes) -> bytes:
    clear = ENTRY_COUNT.pack(len(entries)) + b"".join(
        ENTRY.pack(e.stream, e.n, e.first_seq, e.t0_ns, e.t1_ns) for e in entries
    )
    return clear + compressed


def split_data_payload(payload: bytes | memoryview) -> tuple[list[Entry], memoryview]:
    """The entries of a DATA payload and its compressed part; ValueError if malformed."""
    view = memoryview(payload)
    if len(view) < ENTRY_COUNT.size:
        raise ValueError("DATA block too short for its entry count")
    (count,) = ENTRY_COUNT.unpack_from(view)
    end = ENTRY_COUNT.size + count * ENTRY.size
    if len(view) < end:
        raise ValueError(f"DATA block too short for {count} entries")
    entries = [
        Entry(*ENTRY.unpack_from(view, ENTRY_COUNT.size + i * ENTRY.size)) for i in range(count)
    ]
    return entries, view[end:]


def encode_record(value: object) -> bytes:
    """A STREAM, LAP or SESSION block's payload (MessagePack: infinite channel bounds and
    exact floats survive)."""
    return _msgpack.encode(value)


def encode_index(index: Index) -> bytes:
    return _msgpack.encode(index)


def decode_index(payload: bytes | memoryview) -> Index:
    return msgspec.msgpack.decode(payload, type=Index)


def decode_stream(payload: bytes | memoryview) -> StreamDecl:
    return msgspec.msgpack.decode(payload, type=StreamDecl)


def decode_lap(payload: bytes | memoryview) -> LapInfo:
    return msgspec.msgpack.decode(payload, type=LapInfo)


def decode_session(payload: bytes | memoryview) -> SessionInfo:
    return msgspec.msgpack.decode(payload, type=SessionInfo)


def decode_header(body: bytes) -> FileHeader:
    return msgspec.msgpack.decode(body, type=FileHeader)
