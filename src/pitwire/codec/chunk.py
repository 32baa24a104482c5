"""The storage chunk codec: ``encode`` a FrameBatch to a self-describing blob, ``decode`` it back.

A blob carries its channel names and dtypes, so ``decode`` needs no schema. The first byte is
the codec version; this module writes v1 and dispatches on the version when reading, so a
later version (quantization to the channel's resolution) can be added beside it.

v1 layout, little-endian::

    0  u8   version (1)
    1  u8   flags (0)
    2  u16  column count C
    4  u32  frame count N
    8       one zstd frame (with content size and checksum) holding:
            C descriptors: u8 dtype (1 = f4, 2 = f8), u8 name length L, L bytes UTF-8 name
            time: N x i64 deltas of ``t_ns`` (the first from 0), byte-shuffled
            C columns: N x (u32 | u64) deltas of the values' bit patterns (the first from 0),
            byte-shuffled

Deltas wrap modulo 2**32 / 2**64, so every value round-trips bit for bit (NaN payloads,
-0.0, infinities, subnormals). On smooth signals the bit-pattern deltas have mostly-zero high
bytes, which the shuffle groups together for zstd.

``stats`` gives the per-column value range kept in the chunk index next to the blob.
"""

from __future__ import annotations

import struct

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from pitwire.model.frames import Column, FrameBatch

VERSION = 1
"""The codec version ``encode`` writes."""
DEFAULT_LEVEL = 3
"""zstd level used unless told otherwise."""

_HEADER = struct.Struct("<BBHI")
_DTYPES: dict[int, tuple[np.dtype[np.floating], np.dtype[np.unsignedinteger]]] = {
    1: (np.dtype("<f4"), np.dtype("<u4")),
    2: (np.dtype("<f8"), np.dtype("<u8")),
}
_CODES = {np.dtype("<f4"): 1, np.dtype("<f8"): 2}
_MAX_COLUMNS = 0xFFFF
_MAX_FRAMES = 0xFFFFFFFF


class CodecError(ValueError):
    """A blob is malformed (truncated, corrupt, unknown version) or a batch cannot be encoded."""


class ColumnStats(msgspec.Struct, frozen=True, array_like=True):
    """Value range of one column of a chunk.

    lo, hi: smallest and largest value ignoring NaN [channel unit]; NaN when no value is
    a number (an empty chunk or all NaN). Infinities count as values.
    nan: how many values are NaN
    """

    lo: float
    hi: float
    nan: int


class ChunkStats(msgspec.Struct, frozen=True, kw_only=True):
    """What the chunk index keeps about a chunk besides its blob.

    t0_ns, t1_ns: earliest and latest frame time [ns since epoch] (0 when empty); times need
    not be monotonic, so these are min/max, not first/last
    """

    n: int
    t0_ns: int
    t1_ns: int
    columns: dict[str, ColumnStats]


def stats(batch: FrameBatch) -> ChunkStats:
    """Frame count, time range and per-column value range of ``batch``."""
    columns: dict[str, ColumnStats] = {}
    for name, col in batch.columns.items():
        if len(col) == 0:
            columns[name] = ColumnStats(lo=float("nan"), hi=float("nan"), nan=0)
            continue
        columns[name] = ColumnStats(
            lo=float(np.fmin.reduce(col)),
            hi=float(np.fmax.reduce(col)),
            nan=int(np.count_nonzero(np.isnan(col))),
        )
    if batch.n == 0:
        return ChunkStats(n=0, t0_ns=0, t1_ns=0, columns=columns)
    return ChunkStats(
        n=batch.n, t0_ns=int(batch.t_ns.min()), t1_ns=int(batch.t_ns.max()), columns=columns
    )


def encode(batch: FrameBatch, *, level: int = DEFAULT_LEVEL) -> bytes:
    """The v1 blob of ``batch`` (columns in the batch's order); raises CodecError when a
    column is not float32/float64 or a name does not fit."""
    n = batch.n
    if len(batch.columns) > _MAX_COLUMNS or n > _MAX_FRAMES:
        raise CodecError(f"batch too large: {len(batch.columns)} columns x {n} frames")
    parts: list[bytes] = []
    for name, col in batch.columns.items():
        dtype = col.dtype.newbyteorder("<")
        code = _CODES.get(dtype)
        if code is None:
            raise CodecError(f"column {name!r}: dtype {col.dtype} is not float32 or float64")
        raw_name = name.encode()
        if not 0 < len(raw_name) <= 255:
            raise CodecError(f"column name {name!r} must be 1-255 bytes of UTF-8")
        parts.append(bytes((code, len(raw_name))) + raw_name)
    t = np.ascontiguousarray(batch.t_ns, dtype="<i8")
    parts.append(_shuffle(_delta(t.view("<u8"))))
    for col in batch.columns.values():
        float_dtype, bits_dtype = _DTYPES[_CODES[col.dtype.newbyteorder("<")]]
        values = np.ascontiguousarray(col, dtype=float_dtype)
        parts.append(_shuffle(_delta(values.view(bits_dtype))))
    payload = b"".join(parts)
    compressor = zstandard.ZstdCompressor(level=level, write_checksum=True)
    return _HEADER.pack(VERSION, 0, len(batch.columns), n) + compressor.compress(payload)


def decode(blob: bytes) -> FrameBatch:
    """The batch ``blob`` holds, bit for bit as encoded; raises CodecError when it is
    truncated, corrupt or of an unknown version."""
    if len(blob) < 1:
        raise CodecError("empty blob")
    version = blob[0]
    if version == 1:
        return _decode_v1(blob)
    raise CodecError(f"unknown chunk codec version {version} (this build reads 1)")


def version_of(blob: bytes) -> int:
    """The codec version a blob was written with (its first byte); CodecError when empty."""
    if not blob:
        raise CodecError("empty blob")
    return blob[0]


def _decode_v1(blob: bytes) -> FrameBatch:
    if len(blob) < _HEADER.size:
        raise CodecError(f"truncated header: {len(blob)} bytes, need {_HEADER.size}")
    _, flags, n_cols, n = _HEADER.unpack_from(blob)
    if flags != 0:
        raise CodecError(f"unknown flags 0x{flags:02x}")
    body = memoryview(blob)[_HEADER.size :]
    limit = n_cols * 257 + 8 * n * (n_cols + 1)
    try:
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupt compressed body: {exc}") from exc
    if size < 0 or size > limit:
        raise CodecError(f"compressed body declares {size} bytes, at most {limit} possible")
    try:
        payload = zstandard.ZstdDecompressor().decompress(body)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupt compressed body: {exc}") from exc
    return _parse_payload(payload, n_cols, n)


def _parse_payload(payload: bytes, n_cols: int, n: int) -> FrameBatch:
    pos = 0
    names: list[tuple[str, int]] = []
    for _ in range(n_cols):
        if pos + 2 > len(payload):
            raise CodecError("truncated column descriptors")
        code, length = payload[pos], payload[pos + 1]
        pos += 2
        raw_name = payload[pos : pos + length]
        pos += length
        if code not in _DTYPES or len(raw_name) != length or length == 0:
            raise CodecError(f"bad column descriptor (dtype code {code}, name length {length})")
        try:
            names.append((raw_name.decode(), code))
        except UnicodeDecodeError as exc:
            raise CodecError(f"column name is not UTF-8: {exc}") from exc
    expected = pos + 8 * n + sum(n * _DTYPES[code][0].itemsize for _, code in names)
    if len(payload) != expected:
        raise CodecError(f"payload has {len(payload)} bytes, the header implies {expected}")
    if len({name for name, _ in names}) != len(names):
        raise CodecError("duplicate column names")
    t_bits = _undelta(_unshuffle(payload, pos, n, np.dtype("<u8")))
    pos += 8 * n
    t_ns: npt.NDArray[np.int64] = t_bits.view("<i8").astype(np.int64, copy=False)
    columns: dict[str, Column] = {}
    for name, code in names:
        float_dtype, bits_dtype = _DTYPES[code]
        bits = _undelta(_unshuffle(payload, pos, n, bits_dtype))
        pos += n * bits_dtype.itemsize
        columns[name] = bits.view(float_dtype).astype(float_dtype.newbyteorder("="), copy=False)
    return FrameBatch(t_ns, columns)


def _delta(bits: npt.NDArray[np.unsignedinteger]) -> npt.NDArray[np.unsignedinteger]:
    """Differences of consecutive values, the first from 0 (wrapping)."""
    out = np.empty_like(bits)
    if len(bits):
        out[0] = bits[0]
        np.subtract(bits[1:], bits[:-1], out=out[1:])
    return out


def _undelta(deltas: npt.NDArray[np.unsignedinteger]) -> npt.NDArray[np.unsignedinteger]:
    return np.cumsum(deltas, dtype=deltas.dtype)


def _shuffle(values: npt.NDArray[np.unsignedinteger]) -> bytes:
    """Byte-shuffle: all first bytes, then all second bytes, ..."""
    width = values.dtype.itemsize
    return np.frombuffer(values.tobytes(), np.uint8).reshape(-1, width).T.tobytes()


def _unshuffle(
    payload: bytes, pos: int, n: int, dtype: np.dtype[np.unsignedinteger]
) -> npt.NDArray[np.unsignedinteger]:
    width = dtype.itemsize
    planes = np.frombuffer(payload, np.uint8, count=n * width, offset=pos).reshape(width, n)
    return np.ascontiguousarray(planes.T).view(dtype).reshape(n)
