"""Binary data frames: ``parse`` and ``serialize``, side by side (spec/protocol.md §Data frames).

Layout, little-endian::

    0  u8   opcode (0x01 = DATA)
    1  u8   flags (0)
    2  u16  column count C
    4  u32  group id
    8  u64  seq of the first frame
    16 i64  t0 [ns since epoch]
    24 u32  frame count N
    28 u32  epoch
    32      C column descriptors: u16 channel id, u8 dtype (1 = f4, 2 = f8), u8 0
            zero padding to a multiple of 8
            time column: N x f64, offsets from t0 [s]
            C columns, each N x f4|f8, zero-padded to a multiple of 8

Every column starts on an 8-byte boundary, so a browser reads it with a zero-copy typed-array
view.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

OP_DATA = 0x01

HEADER = struct.Struct("<BBHIQqII")
HEADER_SIZE = HEADER.size  # 32
SEQ_FIELD = struct.Struct("<Q")  # at offset 8
_DESC = np.dtype([("channel", "<u2"), ("dtype", "u1"), ("pad", "u1")])
_DTYPE_CODES = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype(">f4"): 1, np.dtype(">f8"): 2}
_CODE_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<f4"), 2: np.dtype("<f8")}
MAX_FRAMES = 1 << 20
MAX_COLUMNS = 4096


class FrameError(ValueError):
    """A binary frame is malformed: the message says which field and why."""


def _pad8(n: int) -> int:
    return (n + 7) & ~7


class DataFrame:
    """A decoded DATA frame: header fields plus columns.

    t_offsets: per-frame time offset from ``t0_ns`` [s] (float64)
    columns: channel id -> values (float32 or float64), views into the parsed buffer
    """

    __slots__ = ("columns", "epoch", "group", "seq", "t0_ns", "t_offsets")

    def __init__(
        self,
        *,
        group: int,
        seq: int,
        t0_ns: int,
        t_offsets: npt.NDArray[np.float64],
        columns: dict[int, npt.NDArray[np.floating]],
        epoch: int = 0,
    ) -> None:
        self.group = group
        self.seq = seq
        self.t0_ns = t0_ns
        self.t_offsets = t_offsets
        self.columns = columns
        self.epoch = epoch

    @property
    def n(self) -> int:
        return len(self.t_offsets)

    def t_ns(self) -> npt.NDArray[np.int64]:
        """Absolute frame times [ns since epoch]."""
        return self.t0_ns + np.rint(self.t_offsets * 1e9).astype(np.int64)

    def __repr__(self) -> str:
        return (
            f"DataFrame(group={self.group}, seq={self.seq}, t0_ns={self.t0_ns}, n={self.n}, "
            f"channels={list(self.columns)}, epoch={self.epoch})"
        )


def serialize(
    *,
    group: int,
    seq: int,
    t_ns: npt.NDArray[np.int64],
    columns: Sequence[tuple[int, npt.NDArray[np.floating]]],
    epoch: int = 0,
) -> bytes:
    """Encode one DATA frame.

    t_ns: absolute frame times [ns since epoch]; the first becomes t0
    columns: (channel id, values) pairs; values must be float32 or float64 of len(t_ns)
    """
    n = len(t_ns)
    if not 0 <= group < 1 << 32:
        raise FrameError(f"group {group} out of u32 range")
    if not 0 <= seq < 1 << 64:
        raise FrameError(f"seq {seq} out of u64 range")
    if not 0 <= epoch < 1 << 32:
        raise FrameError(f"epoch {epoch} out of u32 range")
    if n > MAX_FRAMES or len(columns) > MAX_COLUMNS:
        raise FrameError(f"frame too large: {n} frames x {len(columns)} columns")
    t0 = int(t_ns[0]) if n else 0
    parts: list[bytes] = [HEADER.pack(OP_DATA, 0, len(columns), group, seq, t0, n, epoch)]
    cids = [cid for cid, _ in columns]
    if cids and not (min(cids) >= 0 and max(cids) < 1 << 16):
        bad = next(c for c in cids if not 0 <= c < 1 << 16)
        raise FrameError(f"channel id {bad} out of u16 range")
    if len(set(cids)) != len(cids):
        seen: set[int] = set()
        twice = next(c for c in cids if c in seen or seen.add(c))  # type: ignore[func-returns-value]
        raise FrameError(f"channel {twice} appears twice")
    codes = [_DTYPE_CODES.get(values.dtype, 0) for _, values in columns]
    for (cid, values), code in zip(columns, codes, strict=True):
        if not code:
            raise FrameError(f"channel {cid}: dtype {values.dtype} is not float32/float64")
        if len(values) != n:
            raise FrameError(f"channel {cid}: {len(values)} values for {n} frames")
    desc = np.zeros(len(columns), _DESC)
    desc["channel"] = cids
    desc["dtype"] = codes
    desc_bytes = desc.tobytes()
    parts.append(desc_bytes + bytes(_pad8(len(desc_bytes)) - len(desc_bytes)))
    offsets = (np.asarray(t_ns, np.int64) - t0).astype("<f8") / 1e9
    parts.append(offsets.tobytes())
    # Runs of columns of one dtype go out as one padded block: one copy, not one per column.
    start = 0
    while start < len(columns):
        code = codes[start]
        stop = start + 1
        while stop < len(columns) and codes[stop] == code:
            stop += 1
        dt = _CODE_DTYPES[code]
        width = _pad8(n * dt.itemsize) // dt.itemsize
        run = [values for _, values in columns[start:stop]]
        if width == n:  # no padding needed: the run is one (columns x frames) array
            parts.append(np.asarray(run, dtype=dt).tobytes())
        else:
            block = np.zeros((stop - start, width), dt)
            block[:, :n] = run
            parts.append(block.tobytes())
        start = stop
    return b"".join(parts)


def parse(data: bytes | bytearray | memoryview) -> DataFrame:
    """Decode one DATA frame; raise FrameError naming the first problem found.

    Columns are read-only views into ``data`` (no copy).
    """
    buf = memoryview(data).cast("B")
    if len(buf) < HEADER_SIZE:
        raise FrameError(f"frame is {len(buf)} bytes, shorter than the {HEADER_SIZE}-byte header")
    opcode, _flags, ncols, group, seq, t0, n, epoch = HEADER.unpack_from(buf, 0)
    if opcode != OP_DATA:
        raise FrameError(f"unknown opcode 0x{opcode:02x}")
    if n > MAX_FRAMES:
        raise FrameError(f"frame count {n} exceeds {MAX_FRAMES}")
    pos = HEADER_SIZE
    desc_len = _pad8(ncols * _DESC.itemsize)
    if len(buf) < pos + desc_len:
        raise FrameError("truncated column table")
    desc = np.frombuffer(buf, _DESC, ncols, pos)
    pos += desc_len
    expected = pos + 8 * n
    dtypes: list[tuple[int, np.dtype[Any]]] = []
    for cid, code in zip(desc["channel"].tolist(), desc["dtype"].tolist(), strict=True):
        dt = _CODE_DTYPES.get(code)
        if dt is None:
            raise FrameError(f"channel {cid}: unknown dtype code {code}")
        dtypes.append((cid, dt))
        expected += _pad8(n * dt.itemsize)
    if len(buf) != expected:
        raise FrameError(f"frame is {len(buf)} bytes, header says {expected}")
    t_offsets = np.frombuffer(buf, "<f8", n, pos)
    pos += 8 * n
    columns: dict[int, npt.NDArray[np.floating]] = {}
    for cid, dt in dtypes:
        if cid in columns:
            raise FrameError(f"channel {cid} appears twice")
        columns[cid] = np.frombuffer(buf, dt, n, pos)
        pos += _pad8(n * dt.itemsize)
    return DataFrame(
        group=group, seq=seq, t0_ns=t0, t_offsets=t_offsets, columns=columns, epoch=epoch
    )
