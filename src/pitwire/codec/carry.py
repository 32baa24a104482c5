"""Carried-delta column coding: successive batches of a stream, each coded against the last
frame of the one before (the session file's blocks, a few frames every 100 ms).

Channels with a declared resolution are **quantized**: a value ``v`` is stored as the integer
``q = rint(v / resolution)``, exact at the channel's resolution (decoded ``q * resolution``
is within half a step of ``v``). Values that cannot be quantized (NaN, infinities, beyond
2**53 steps) are kept exactly as exceptions. Channels without a resolution keep their exact
bit patterns. Either way a column is coded as wrapping deltas (zigzag for quantized ones),
byte-shuffled, so smooth signals leave mostly zero high bytes for zstd. The first frame of a
batch is a delta from the previous batch's last frame, so small batches stay small; a coder's
state starts at zero, so a reader must start where the writer's coder started (a segment).

Entry layout (little-endian), ``N`` frames; the stream's channels in three groups, each in
channel order: ``Q`` quantized, ``A`` exact float32, ``B`` exact float64::

    N x u64          time deltas (``t_ns`` as u64), byte-shuffled
    Q x (N x u64)    zigzag deltas of the quantized values, byte-shuffled per channel
    A x (N x u32)    bit-pattern deltas of each exact float32 channel, byte-shuffled
    B x (N x u64)    the same for each exact float64 channel
    u32 X            exceptions, then X x (u32 frame, u16 quantized channel, f64 value)
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from pitwire.codec.chunk import CodecError
from pitwire.model.channels import Channel
from pitwire.model.frames import Column, FrameBatch

Rows = tuple[
    npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float32], npt.NDArray[np.float64]
]
"""A batch as (t_ns [n], quantized channels [n x Q] as float64, exact float32 [n x A],
exact float64 [n x B])."""

_EXCEPTION = struct.Struct("<IHd")
_COUNT = struct.Struct("<I")
_LIMIT = float(2**53)


class Layout:
    """How a stream's channels are coded: quantized, exact float32, exact float64."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.names = [c.name for c in channels]
        quantized = [c for c in channels if c.resolution is not None and c.resolution > 0]
        self.q = [c.name for c in quantized]
        self.q_dtypes = [c.dtype for c in quantized]
        self.resolution = np.array([c.resolution for c in quantized], np.float64)
        # Steps of 1/k (0.01, 1, 1/127): decoded as q / k, the correctly rounded value, so
        # a value already on a step (0.3 at 0.1) comes back bit for bit in float64 too.
        inverse = 1.0 / self.resolution if len(self.resolution) else self.resolution
        whole = np.abs(inverse - np.rint(inverse)) <= 1e-9 * np.maximum(inverse, 1)
        self.divided = np.flatnonzero(whole)
        self.divisor = np.rint(inverse[whole])[:, None]
        self.q4 = np.array([j for j, c in enumerate(quantized) if c.dtype == "f4"], np.intp)
        self.q8 = np.array([j for j, c in enumerate(quantized) if c.dtype != "f4"], np.intp)
        self.q4_names = [self.q[j] for j in self.q4]
        self.q8_names = [self.q[j] for j in self.q8]
        exact = [c for c in channels if c not in quantized]
        self.f4 = [c.name for c in exact if c.dtype == "f4"]
        self.f8 = [c.name for c in exact if c.dtype != "f4"]
        self.width = 8 + 8 * len(self.q) + 4 * len(self.f4) + 8 * len(self.f8)
        self._get = (_getter(self.q), _getter(self.f4), _getter(self.f8))

    def rows(self, batch: FrameBatch) -> Rows:
        """``batch`` as rows (CodecError names a missing channel)."""
        return self.stacked([batch])

    def stacked(self, batches: Sequence[FrameBatch]) -> Rows:
        """Several batches of this stream as one set of rows (CodecError: a missing channel)."""
        sizes = [len(b.t_ns) for b in batches]
        k = sum(sizes)
        single = k == len(batches)  # one frame per batch (live capture)
        try:
            columns = [b.columns for b in batches]
            groups = [list(chain.from_iterable(map(get, columns))) for get in self._get]
        except KeyError as exc:
            raise CodecError(f"the batch has no column {exc}") from None
        t = np.concatenate([b.t_ns for b in batches]).astype(np.int64, copy=False)
        out = []
        for values, width, dtype in zip(
            groups,
            (len(self.q), len(self.f4), len(self.f8)),
            (np.float64, np.float32, np.float64),
            strict=True,
        ):
            if not width:
                out.append(np.zeros((k, 0), dtype))
            elif single:  # (batches x channels) straight from one concatenation
                out.append(np.concatenate(values).astype(dtype).reshape(k, width))
            else:  # per batch (channels x n), transposed and joined
                per = [
                    np.array(values[i * width : (i + 1) * width], dtype).T
                    for i in range(len(batches))
                ]
                out.append(np.concatenate(per))
        return t, out[0], out[1], out[2]


def _getter(names: list[str]) -> Callable[[Mapping[str, Column]], tuple[Column, ...]]:
    """A C-speed ``lambda cols: tuple(cols[n] for n in names)``."""
    if not names:
        return lambda _: ()
    get = itemgetter(*names)
    return get if len(names) > 1 else lambda cols: (get(cols),)


def _shuffled(values: npt.NDArray[np.unsignedinteger]) -> bytes:
    """(n x c) values → per column, all first bytes, then all second bytes, ..."""
    n, c = values.shape
    width = values.dtype.itemsize
    planes = np.ascontiguousarray(values.T).view(np.uint8).reshape(c, n, width)
    return planes.transpose(0, 2, 1).tobytes()


def _unshuffled(
    data: bytes | memoryview, pos: int, n: int, c: int, dtype: np.dtype[np.unsignedinteger]
) -> npt.NDArray[np.unsignedinteger]:
    """The (c x n) values ``_shuffled`` wrote at ``pos`` (a new, writable array)."""
    width = dtype.itemsize
    planes = np.frombuffer(data, np.uint8, count=c * n * width, offset=pos).reshape(c, width, n)
    return planes.transpose(0, 2, 1).copy().view(dtype).reshape(c, n)


class CarryEncoder:
    """Codes batches of one stream with ``channels``."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.layout = Layout(channels)
        self._t = np.zeros(1, np.uint64)
        self._lastq = np.zeros(len(self.layout.q), np.int64)
        self._last4 = np.zeros(len(self.layout.f4), np.uint32)
        self._last8 = np.zeros(len(self.layout.f8), np.uint64)

    def encode(self, batch: FrameBatch) -> bytes:
        return self.encode_rows(*self.layout.rows(batch))

    def encode_rows(
        self,
        t_ns: npt.NDArray[np.int64],
        mq: npt.NDArray[np.float64],
        m4: npt.NDArray[np.float32],
        m8: npt.NDArray[np.float64],
    ) -> bytes:
        n = len(t_ns)
        if n == 0:
            return b""
        t = np.ascontiguousarray(t_ns, "<i8").view("<u8").reshape(-1, 1)
        parts = [_shuffled(self._deltas(t, self._t))]
        exceptions: list[bytes] = []
        if mq.shape[1]:
            with np.errstate(invalid="ignore", over="ignore"):
                steps = np.rint(mq / self.layout.resolution)
                ok = np.abs(steps) < _LIMIT  # False for NaN, infinities, too many steps
            if ok.all():
                q = steps.astype(np.int64)
            else:
                q = np.where(ok, steps, 0.0).astype(np.int64)
                # An exception's slot repeats the step before it (delta 0); frames in order.
                for frame, column in zip(*np.nonzero(~ok), strict=True):
                    exceptions.append(_EXCEPTION.pack(frame, column, mq[frame, column]))
                    q[frame, column] = q[frame - 1, column] if frame else self._lastq[column]
            deltas = np.empty_like(q)
            deltas[0] = q[0] - self._lastq
            np.subtract(q[1:], q[:-1], out=deltas[1:])
            self._lastq[:] = q[-1]
            zigzag = ((deltas << 1) ^ (deltas >> 63)).view(np.uint64)
            parts.append(_shuffled(zigzag))
        if m4.shape[1]:
            bits4 = np.ascontiguousarray(m4, "<f4").view("<u4")
            parts.append(_shuffled(self._deltas(bits4, self._last4)))
        if m8.shape[1]:
            bits8 = np.ascontiguousarray(m8, "<f8").view("<u8")
            parts.append(_shuffled(self._deltas(bits8, self._last8)))
        parts.append(_COUNT.pack(len(exceptions)))
        parts.extend(exceptions)
        return b"".join(parts)

    @staticmethod
    def _deltas(
        bits: npt.NDArray[np.unsignedinteger], last: npt.NDArray[np.unsignedinteger]
    ) -> npt.NDArray[np.unsignedinteger]:
        out = np.empty_like(bits)
        out[0] = bits[0] - last  # unsigned: wraps
        np.subtract(bits[1:], bits[:-1], out=out[1:])
        last[:] = bits[-1]
        return out


class CarryDecoder:
    """Decodes what a ``CarryEncoder`` of the same channels coded, in the same order."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.layout = Layout(channels)
        self._t = np.zeros(1, np.uint64)
        self._lastq = np.zeros(len(self.layout.q), np.int64)
        self._last4 = np.zeros(len(self.layout.f4), np.uint32)
        self._last8 = np.zeros(len(self.layout.f8), np.uint64)

    def decode(self, data: bytes | memoryview, pos: int, n: int) -> tuple[FrameBatch, int]:
        """The batch of ``n`` frames at ``pos`` in ``data``, and the position after it.

        Each column is a contiguous row of one (channels x frames) array per group."""
        lay = self.layout
        end = pos + n * lay.width + _COUNT.size
        if n == 0:
            return FrameBatch.trusted(np.zeros(0, np.int64), {}), pos
        if end > len(data):
            raise CodecError(f"entry of {n} frames needs {end - pos} bytes, {len(data) - pos} left")
        t = self._undelta(_unshuffled(data, pos, n, 1, np.dtype("<u8")), self._t)
        pos += 8 * n
        by_name: dict[str, Column] = {}
        cq, c4, c8 = len(lay.q), len(lay.f4), len(lay.f8)
        values_q = None
        if cq:
            zigzag = _unshuffled(data, pos, n, cq, np.dtype("<u8"))
            pos += 8 * n * cq
            deltas = (zigzag >> np.uint64(1)).view(np.int64) ^ -(zigzag & np.uint64(1)).view(
                np.int64
            )
            deltas[:, 0] += self._lastq
            q = np.cumsum(deltas, axis=1)
            self._lastq[:] = q[:, -1]
            values_q = q * lay.resolution[:, None]
            if lay.divided.size:
                values_q[lay.divided] = q[lay.divided] / lay.divisor
        if c4:
            v4 = self._undelta(_unshuffled(data, pos, n, c4, np.dtype("<u4")), self._last4)
            pos += 4 * n * c4
            by_name.update(zip(lay.f4, v4.view("<f4"), strict=True))
        if c8:
            v8 = self._undelta(_unshuffled(data, pos, n, c8, np.dtype("<u8")), self._last8)
            pos += 8 * n * c8
            by_name.update(zip(lay.f8, v8.view("<f8"), strict=True))
        (count,) = _COUNT.unpack_from(data, pos)
        pos += _COUNT.size
        if pos + count * _EXCEPTION.size > len(data):
            raise CodecError(f"{count} exceptions do not fit in the entry")
        if values_q is not None:
            for i in range(count):
                frame, column, value = _EXCEPTION.unpack_from(data, pos + i * _EXCEPTION.size)
                if frame >= n or column >= cq:
                    raise CodecError(f"exception at frame {frame}, channel {column}: out of range")
                values_q[column, frame] = value
            if lay.q4_names:
                by_name.update(zip(lay.q4_names, values_q[lay.q4].astype(np.float32), strict=True))
            if lay.q8_names:
                by_name.update(zip(lay.q8_names, values_q[lay.q8], strict=True))
        elif count:
            raise CodecError("exceptions in an entry without quantized channels")
        pos += count * _EXCEPTION.size
        columns = {name: by_name[name] for name in lay.names}
        return FrameBatch.trusted(t[0].view("<i8").astype(np.int64), columns), pos

    @staticmethod
    def _undelta(
        deltas: npt.NDArray[np.unsignedinteger], last: npt.NDArray[np.unsignedinteger]
    ) -> npt.NDArray[np.unsignedinteger]:
        deltas[:, 0] += last  # (c x n): each column continues from its last value; wraps
        out = np.cumsum(deltas, axis=1, dtype=deltas.dtype)
        last[:] = out[:, -1]
        return out
