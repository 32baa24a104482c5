"""The storage chunk codec: ``encode`` a FrameBatch to a self-describing blob, ``decode`` it back.

A blob carries its channel names, dtypes and resolutions, so ``decode`` needs no schema.
``encode`` writes v2 (``version=1`` on request); ``decode`` reads both, dispatching on the
first byte. Errors: ``CodecError`` (a ValueError, see ``pitwire.codec.errors``) for a batch
that cannot be encoded and for any blob that is truncated, corrupt or of an unknown version;
``decode`` lets no other exception out. Both versions share the header (little-endian, like
everything below)::

    0  u8   version (1 or 2)
    1  u8   flags (0)
    2  u16  column count C
    4  u32  frame count N
    8       one zstd frame (with content size and checksum) holding the payload

v1 payload, exact bit patterns::

    C descriptors: u8 dtype (1 = f4, 2 = f8), u8 name length L, L bytes UTF-8 name
    time: N x i64 deltas of ``t_ns`` (the first from 0), byte-shuffled
    C columns: N x (u32 | u64) deltas of the values' bit patterns (the first from 0),
    byte-shuffled

Its deltas wrap modulo 2**32 / 2**64, so every value round-trips bit for bit (NaN payloads,
-0.0, infinities, subnormals).

v2 payload, quantized to each channel's resolution. Two building blocks: *zigzag* maps a
signed integer ``d`` to ``(d << 1) ^ (d >> 63)`` (``>> 31`` for 32-bit ones: 0, -1, 1, -2
→ 0, 1, 2, 3), and a *packed* run of ``c`` rows of ``m`` unsigned integers is ``c`` x u8
plane counts ``k`` (0-8: the low bytes the row's largest value needs), then, row after row,
the row's ``k`` low byte planes of ``m`` bytes each, least significant first (a
byte-shuffle that leaves out the all-zero high planes)::

    u16 C, u32 N   the header's counts again (the zstd checksum covers these, not the header)
    u32 D          length of the descriptors [bytes]
    D bytes        C descriptors, in the batch's column order:
                   u8 kind: 1 = f4 exact, 2 = f8 exact, 3 = f4 quantized, 4 = f8 quantized
                   u8 name length L, L bytes UTF-8 name
                   kinds 3, 4: f64 resolution r [channel unit], 0 < r <= 2**70 (f4) or
                   2**970 (f8)
    i64 t0, i64 period, u8 mode
                   times: t[i] = t0 + i * period + e[0] + ... + e[i-1] (modulo 2**64),
                   period = the median of t[i+1] - t[i] (t0 = period = 0 when N = 0; period
                   = 0 when N = 1); mode 0: every e is 0, nothing follows
        mode 1:    u32 K (0 < K < N), packed 2 x K: the K indexes i whose e[i] != 0 as
                   deltas (the first from 0), and zigzag e[i]
        mode 2:    packed 1 x (N - 1): zigzag e[0 .. N-2]
    when N > 0:
        packed 1 x C   first values, by column: zigzag q[0] for quantized columns, the bit
                       pattern of the first value for exact ones (f4 zero-extended)
        C x u8         predictor order of each column: 1 or 2
        packed C x (N - 1)
                       deltas, rows in layout order: groups of kind 4, 3, 2, 1; in a group
                       the columns of order 1, then those of order 2, each in column order.
                       Of x = q (quantized) or the bit pattern (exact, wrapping modulo 2**32
                       for f4, 2**64 for f8): order 1 zigzag(x[i+1] - x[i]); order 2 the
                       same for i = 0, then zigzag((x[i+1] - x[i]) - (x[i] - x[i-1])).
    u32 X          exceptions (0 < X <= C x N, or 0), then when X > 0:
    packed 2 x X   their flat positions column * N + frame, strictly increasing, as deltas
                   (the first from 0), and their values' bit patterns (f4 zero-extended)

A quantized value ``v`` is stored as ``q = rint(v / r)`` and decoded as ``q * r``, or as
``q / k`` when ``r`` is ``1/k`` for a whole ``k`` (0.01, 1, 1/255): the correctly rounded
value, so a value already on a step (0.3 at 0.1) comes back bit for bit; float32 is
computed in float64 and rounded once. Decoded values are within half a step of the
originals (plus float rounding), and -0.0 comes back as 0.0. NaN, infinities and values of
2**53 steps or more are exceptions, kept bit for bit; the slot of an exception repeats the
step before it (0 before the first). The encoder codes a column exactly (kind 1, 2) when it
has no resolution, one coarser than the bounds above, or when more than half its values
would be exceptions (an all-NaN channel). Smooth signals leave small deltas (order 2 suits
ramps such as distance and lap time), so most columns need one or two byte planes, and zstd
does the rest.

``stats`` gives the per-column value range kept in the chunk index next to the blob.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping, Sequence

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from pitwire.codec import _chunk2
from pitwire.codec.errors import CodecError
from pitwire.model.channels import Channel
from pitwire.model.frames import Column, FrameBatch

__all__ = [
    "DEFAULT_LEVEL",
    "VERSION",
    "VERSIONS",
    "ChunkStats",
    "CodecError",
    "ColumnStats",
    "decode",
    "encode",
    "stats",
    "version_of",
]

VERSION = 2
"""The codec version ``encode`` writes unless told otherwise."""
VERSIONS = (1, 2)
"""The codec versions ``decode`` reads."""
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


def encode(
    batch: FrameBatch,
    *,
    channels: Sequence[Channel] | Mapping[str, Channel] | None = None,
    level: int = DEFAULT_LEVEL,
    version: int = VERSION,
) -> bytes:
    """The blob of ``batch``, columns in the batch's order.

    channels: declare each column's resolution (by name); a column without a channel or
    without a resolution is kept exactly. v1 ignores them (it is always exact).
    Raises CodecError when a column is not float32/float64, a name does not fit, a
    resolution is out of range or ``version`` is not one this build writes.
    """
    n = batch.n
    if len(batch.columns) > _MAX_COLUMNS or n > _MAX_FRAMES:
        raise CodecError(f"batch too large: {len(batch.columns)} columns x {n} frames")
    if version not in VERSIONS:
        raise CodecError(f"cannot write chunk codec version {version} (this build writes 1, 2)")
    described, plan = _plan(batch, channels if version == 2 else None)
    payload = _chunk2.payload(batch, plan) if version == 2 else _payload_v1(batch, described)
    header = _HEADER.pack(version, 0, len(batch.columns), n)
    return header + _ZSTD.compressor(level).compress(payload)


def decode(blob: bytes) -> FrameBatch:
    """The batch ``blob`` holds (v1: bit for bit; v2: at each column's resolution, see the
    module docstring); raises CodecError when it is truncated, corrupt or of an unknown
    version."""
    version = version_of(blob)
    if version not in VERSIONS:
        raise CodecError(f"unknown chunk codec version {version} (this build reads 1, 2)")
    if len(blob) < _HEADER.size:
        raise CodecError(f"truncated header: {len(blob)} bytes, need {_HEADER.size}")
    _, flags, n_cols, n = _HEADER.unpack_from(blob)
    if flags != 0:
        raise CodecError(f"unknown flags 0x{flags:02x}")
    body = memoryview(blob)[_HEADER.size :]
    if version == 1:
        return _parse_v1(_decompress(body, n_cols * 257 + 8 * n * (n_cols + 1)), n_cols, n)
    return _chunk2.parse(_decompress(body, _chunk2.max_size(n_cols, n)), n_cols, n)


def version_of(blob: bytes) -> int:
    """The codec version a blob was written with (its first byte); CodecError when empty."""
    if not blob:
        raise CodecError("empty blob")
    return blob[0]


class _Zstd(threading.local):
    """One compressor per level and one decompressor per thread, built once and reused."""

    def __init__(self) -> None:
        self.compressors: dict[int, zstandard.ZstdCompressor] = {}
        self.decompressor = zstandard.ZstdDecompressor()

    def compressor(self, level: int) -> zstandard.ZstdCompressor:
        zc = self.compressors.get(level)
        if zc is None:
            zc = zstandard.ZstdCompressor(level=level, write_checksum=True)
            self.compressors[level] = zc
        return zc


_ZSTD = _Zstd()


def _decompress(body: memoryview, limit: int) -> bytes:
    try:
        size = zstandard.frame_content_size(body)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupt compressed body: {exc}") from exc
    if size < 0 or size > limit:
        raise CodecError(f"compressed body declares {size} bytes, at most {limit} possible")
    try:
        return _ZSTD.decompressor.decompress(body)
    except zstandard.ZstdError as exc:
        raise CodecError(f"corrupt compressed body: {exc}") from exc


_PLANS: dict[tuple[object, ...], tuple[list[tuple[int, bytes]], _chunk2.Plan]] = {}
"""Coding plans by schema (names, dtypes, resolutions): chunks of a stream share one."""
_MAX_PLANS = 256


def _plan(
    batch: FrameBatch, channels: Sequence[Channel] | Mapping[str, Channel] | None
) -> tuple[list[tuple[int, bytes]], _chunk2.Plan]:
    """Each column's dtype code and UTF-8 name, and the v2 plan (built once per schema)."""
    names = tuple(batch.columns)
    if channels is None:
        resolutions: tuple[float | None, ...] = ()
    else:
        by_name = channels if isinstance(channels, Mapping) else {c.name: c for c in channels}
        steps = {name: c.resolution for name, c in by_name.items()}
        resolutions = tuple(steps.get(name) for name in names)
    key = (names, tuple(col.dtype for col in batch.columns.values()), resolutions)
    known = _PLANS.get(key)
    if known is None:
        described = [_descriptor(name, col) for name, col in batch.columns.items()]
        plan = _chunk2.Plan(described, resolutions or (None,) * len(names))
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        known = _PLANS[key] = described, plan
    return known


def _descriptor(name: str, col: Column) -> tuple[int, bytes]:
    """The dtype code (1 = f4, 2 = f8) and UTF-8 name of a column."""
    code = _CODES.get(col.dtype.newbyteorder("<"))
    if code is None:
        raise CodecError(f"column {name!r}: dtype {col.dtype} is not float32 or float64")
    raw_name = name.encode()
    if not 0 < len(raw_name) <= 255:
        raise CodecError(f"column name {name!r} must be 1-255 bytes of UTF-8")
    return code, raw_name


# -- v1 ---------------------------------------------------------------------------------------


def _payload_v1(batch: FrameBatch, described: list[tuple[int, bytes]]) -> bytes:
    parts = [bytes((code, len(raw_name))) + raw_name for code, raw_name in described]
    t = np.ascontiguousarray(batch.t_ns, dtype="<i8")
    parts.append(_shuffle(_delta(t.view("<u8"))))
    for (code, _), col in zip(described, batch.columns.values(), strict=True):
        float_dtype, bits_dtype = _DTYPES[code]
        values = np.ascontiguousarray(col, dtype=float_dtype)
        parts.append(_shuffle(_delta(values.view(bits_dtype))))
    return b"".join(parts)


def _parse_v1(payload: bytes, n_cols: int, n: int) -> FrameBatch:
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
        names.append((_utf8(raw_name), code))
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


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise CodecError(f"column name is not UTF-8: {exc}") from exc


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
