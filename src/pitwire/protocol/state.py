"""STATE frames: what a replay viewer is sent each tick (spec/protocol.md §Replay).

A STATE frame carries, for one instant of the replay clock, the value of every subscribed
channel of every subscribed stream: in full after a seek (a *keyframe*), and afterwards only
what changed since the previous STATE frame of the same epoch (a *delta*). Values of channels
with a declared resolution travel as integer steps, deltas as zigzag varints, so a car
cruising at 25 frames a second costs a few bytes.

Layout, little-endian::

    0  u8   opcode (0x02 = STATE)
    1  u8   flags: bit 0 = keyframe (every group, every column, nothing relative)
    2  u16  entry count E
    4  u32  epoch
    8  i64  t [ns since epoch]: the replay clock's instant this state is for
    16      E entries, each:
              varint  group id (as in ``subscribed``)
              ceil(C/4) bytes: a 2-bit code per column (column j in bits 2*(j%4) of byte j//4)
              then, in column order, for code 1 a zigzag varint, for code 2 an f64

Column codes: 0 unchanged, 1 steps (value = steps x resolution; a delta when the column's
previous value was also steps, otherwise absolute), 2 exact value (f64), 3 no value (the
stream has no frame at or before t). C is the number of the group's channels and the
resolutions come from ``advertise``; a channel without a resolution is always code 2.

``StateEncoder`` (server) and ``StateDecoder`` (clients, tests) keep the per-group state that
deltas refer to; both start over on a keyframe.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pitwire.protocol.frames import FrameError

OP_STATE = 0x02
FLAG_KEYFRAME = 0x01
HEADER = struct.Struct("<BBHIq")
HEADER_SIZE = HEADER.size  # 16
_F64 = struct.Struct("<d")
_MAX_STEPS = float(1 << 53)

UNCHANGED, STEPS, EXACT, NONE = 0, 1, 2, 3


def _varint(out: bytearray, u: int) -> None:
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)


class StateEncoder:
    """Encodes STATE frames for one viewer, the columns of every group side by side so a
    tick is a few numpy operations and a loop over what changed.

    groups: group id -> the resolution of each of its columns (None = exact)
    """

    def __init__(self, groups: Mapping[int, Sequence[float | None]]) -> None:
        self._gids: list[int] = []
        self._bounds: list[tuple[int, int]] = []  # each group's columns in the arrays
        self._code_bounds: list[tuple[int, int]] = []  # ... and its bytes of packed codes
        self._res = np.zeros(0)  # NaN: exact
        self._code_pos = np.zeros(0, np.intp)  # where each column's code goes, 4 a byte
        self._kind = np.zeros(0, np.int8)  # what the viewer holds: 0 nothing, or a code
        self._steps = np.zeros(0, np.int64)
        self._value = np.zeros(0)
        for gid, res in groups.items():
            self.add_group(gid, res)

    def add_group(self, gid: int, resolutions: Sequence[float | None]) -> None:
        """A stream joined the replay: its first entry will be absolute."""
        n, width = len(self._res), len(resolutions)
        code_start = self._code_bounds[-1][1] if self._code_bounds else 0
        self._gids.append(gid)
        self._bounds.append((n, n + width))
        self._code_bounds.append((code_start, code_start + (width + 3) // 4))
        res = np.array([r if r else np.nan for r in resolutions], np.float64)
        self._res = np.concatenate([self._res, res])
        self._code_pos = np.concatenate([self._code_pos, 4 * code_start + np.arange(width)])
        self._kind = np.concatenate([self._kind, np.zeros(width, np.int8)])
        self._steps = np.concatenate([self._steps, np.zeros(width, np.int64)])
        self._value = np.concatenate([self._value, np.full(width, np.nan)])

    def encode(
        self,
        *,
        epoch: int,
        t_ns: int,
        values: Mapping[int, npt.NDArray[np.floating] | None],
        keyframe: bool,
    ) -> bytes:
        """One STATE frame. values: group -> its column values at ``t_ns`` (NaN = no value)
        or None (the stream has no frame yet); groups left out are unchanged (a keyframe
        sends every group, left-out ones as no value)."""
        v = np.full(len(self._res), np.nan)
        left_out = []
        for k, gid in enumerate(self._gids):
            row = values.get(gid)
            if row is not None:
                a, b = self._bounds[k]
                v[a:b] = row
            elif gid not in values and not keyframe:
                left_out.append(k)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            q = v / self._res
            stepped = np.abs(q) < _MAX_STEPS  # False for NaN and for exact channels
            steps = np.rint(np.where(stepped, q, 0.0)).astype(np.int64)
        kind = np.where(stepped, STEPS, np.where(np.isnan(v), NONE, EXACT)).astype(np.int8)
        before = np.zeros_like(kind) if keyframe else self._kind
        changed = (kind != before) | np.where(
            kind == STEPS, steps != self._steps, (kind == EXACT) & (v != self._value)
        )
        for k in left_out:  # keep what the viewer holds of groups not sampled
            a, b = self._bounds[k]
            changed[a:b] = False
            kind[a:b], steps[a:b], v[a:b] = before[a:b], self._steps[a:b], self._value[a:b]
        delta = np.where(before == STEPS, steps - self._steps, steps)
        zigzag = ((delta << 1) ^ (delta >> 63)).tolist()  # |delta| < 2**54
        self._kind, self._steps, self._value = kind, steps, v
        codes = np.where(changed, kind, 0).astype(np.uint8)
        slots = np.zeros(4 * (self._code_bounds[-1][1] if self._code_bounds else 0), np.uint8)
        slots[self._code_pos] = codes
        packed = (slots.reshape(-1, 4) << np.array([0, 2, 4, 6], np.uint8)).sum(1, np.uint8)
        packed_bytes = packed.tobytes()
        code_list, value_list = codes.tolist(), v.tolist()
        nonzero = np.flatnonzero(codes).tolist()  # the columns to write, in order
        end = len(nonzero)
        body = bytearray()
        entries = done = 0
        for k, gid in enumerate(self._gids):
            stop = self._bounds[k][1]
            upto = done
            while upto < end and nonzero[upto] < stop:
                upto += 1
            if upto == done and not keyframe:
                continue
            entries += 1
            _varint(body, gid)
            ca, cb = self._code_bounds[k]
            body += packed_bytes[ca:cb]
            for j in nonzero[done:upto]:
                if code_list[j] == STEPS:
                    _varint(body, zigzag[j])
                elif code_list[j] == EXACT:
                    body += _F64.pack(value_list[j])
            done = upto
        flags = FLAG_KEYFRAME if keyframe else 0
        return HEADER.pack(OP_STATE, flags, entries, epoch, t_ns) + bytes(body)


class StateFrame:
    """A decoded STATE frame applied to a decoder's state.

    values: group -> every column's value after this frame (NaN = no value), for the groups
    this frame touched
    """

    __slots__ = ("epoch", "keyframe", "t_ns", "values")

    def __init__(
        self, *, epoch: int, t_ns: int, keyframe: bool, values: dict[int, npt.NDArray[np.float64]]
    ) -> None:
        self.epoch = epoch
        self.t_ns = t_ns
        self.keyframe = keyframe
        self.values = values

    def __repr__(self) -> str:
        kind = "keyframe" if self.keyframe else "delta"
        groups = list(self.values)
        return f"StateFrame({kind}, epoch={self.epoch}, t_ns={self.t_ns}, groups={groups})"


def header(data: bytes | bytearray | memoryview) -> tuple[int, int, int, int]:
    """(flags, entry count, epoch, t_ns) of a STATE frame; raises FrameError."""
    if len(data) < HEADER_SIZE:
        raise FrameError(f"STATE frame is {len(data)} bytes, shorter than its 16-byte header")
    op, flags, n, epoch, t_ns = HEADER.unpack_from(data, 0)
    if op != OP_STATE:
        raise FrameError(f"unknown opcode 0x{op:02x}")
    return flags, n, epoch, t_ns


class StateDecoder:
    """A client's view of a replay: applies STATE frames, dropping stale epochs.

    groups: group id -> the resolution of each of its columns (None = exact)
    """

    def __init__(self, groups: Mapping[int, Sequence[float | None]]) -> None:
        self.epoch = 0
        self._res: dict[int, list[float | None]] = {}
        self.state: dict[int, npt.NDArray[np.float64]] = {}
        self._steps: dict[int, list[int | None]] = {}
        for gid, res in groups.items():
            self.add_group(gid, res)

    def add_group(self, gid: int, resolutions: Sequence[float | None]) -> None:
        self._res[gid] = [r if r else None for r in resolutions]
        self.state[gid] = np.full(len(resolutions), np.nan)
        self._steps[gid] = [None] * len(resolutions)

    def apply(self, data: bytes | bytearray | memoryview) -> StateFrame | None:
        """Apply one STATE frame; None when it belongs to an older epoch than one already
        seen (a seek made it stale). Raises FrameError on a malformed frame or a delta of an
        epoch whose keyframe never came."""
        buf = bytes(data)
        flags, n, epoch, t_ns = header(buf)
        keyframe = bool(flags & FLAG_KEYFRAME)
        if epoch < self.epoch:
            return None
        if epoch > self.epoch and not keyframe:
            raise FrameError(f"delta of epoch {epoch} before its keyframe")
        self.epoch = epoch
        if keyframe:
            for gid, width in self._res.items():
                self.state[gid] = np.full(len(width), np.nan)
                self._steps[gid] = [None] * len(width)
        pos = HEADER_SIZE
        touched: dict[int, npt.NDArray[np.float64]] = {}
        try:
            for _ in range(n):
                gid, pos = _read_varint(buf, pos)
                if gid not in self._res:
                    raise FrameError(f"STATE entry for unknown group {gid}")
                res = self._res[gid]
                ncols = len(res)
                codes = buf[pos : pos + (ncols + 3) // 4]
                if len(codes) < (ncols + 3) // 4:
                    raise FrameError("truncated STATE entry")
                pos += len(codes)
                row, steps = self.state[gid], self._steps[gid]
                for j in range(ncols):
                    code = (codes[j // 4] >> (2 * (j % 4))) & 3
                    if code == STEPS:
                        z, pos = _read_varint(buf, pos)
                        d = (z >> 1) ^ -(z & 1)
                        r = res[j]
                        if r is None:
                            raise FrameError(f"group {gid} column {j} has no resolution")
                        prev = steps[j]
                        s = d if prev is None else prev + d
                        steps[j] = s
                        row[j] = s * r
                    elif code == EXACT:
                        if pos + 8 > len(buf):
                            raise FrameError("truncated STATE value")
                        (row[j],) = _F64.unpack_from(buf, pos)
                        pos += 8
                        steps[j] = None
                    elif code == NONE:
                        row[j] = math.nan
                        steps[j] = None
                touched[gid] = row.copy()
        except IndexError:
            raise FrameError("truncated STATE frame") from None
        if pos != len(buf):
            raise FrameError(f"STATE frame has {len(buf) - pos} bytes after its last entry")
        return StateFrame(epoch=epoch, t_ns=t_ns, keyframe=keyframe, values=touched)


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise FrameError("varint longer than 10 bytes")


def describe(data: bytes) -> dict[str, Any]:
    """Header fields of a STATE frame, for logs and test vectors."""
    flags, n, epoch, t_ns = header(data)
    return {"keyframe": bool(flags & FLAG_KEYFRAME), "entries": n, "epoch": epoch, "t_ns": t_ns}
