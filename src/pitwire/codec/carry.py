"""Carried-delta column coding: successive batches of a stream, each coded against the last
frame of the one before (the session file's blocks, a few frames every 100 ms).

Like the v1 chunk (``codec.chunk``), values are coded as wrapping deltas of their bit
patterns, byte-shuffled per column, so every value round-trips bit for bit (NaN payloads,
-0.0, infinities); unlike it, the first frame of a batch is a delta from the previous
batch's last frame, so small batches stay small. A coder's state starts at zero: a reader
must start decoding where the writer's coder started (a session-file segment). All columns
of a dtype are coded in one numpy operation.

Entry layout (little-endian), ``N`` frames, the stream's float32 channels ``A`` and float64
channels ``B``, each group in channel order::

    N x u64          time deltas (``t_ns`` as u64), byte-shuffled
    A x (N x u32)    bit-pattern deltas of each float32 channel, byte-shuffled per channel
    B x (N x u64)    the same for each float64 channel
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from itertools import chain
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from pitwire.codec.chunk import CodecError
from pitwire.model.frames import Column, FrameBatch

Rows = tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float64]]
"""A batch as (t_ns [n], float32 channels [n x A], float64 channels [n x B])."""


class Layout:
    """Which channels are float32 and float64, in the entry's order."""

    def __init__(self, channels: Sequence[tuple[str, str]]) -> None:
        self.names = [name for name, _ in channels]
        self.f4 = [name for name, d in channels if d == "f4"]
        self.f8 = [name for name, d in channels if d != "f4"]
        self.width = 8 + 4 * len(self.f4) + 8 * len(self.f8)
        self._get4 = _getter(self.f4)
        self._get8 = _getter(self.f8)

    def stacked(self, batches: Sequence[FrameBatch]) -> Rows:
        """Several batches as one set of rows (CodecError names a missing channel)."""
        if len(batches) == 1:
            return self.rows(batches[0])
        if all(b.n == 1 for b in batches):  # live capture: one frame per batch, one C loop each
            k = len(batches)
            try:
                columns = [b.columns for b in batches]
                f4 = list(chain.from_iterable(map(self._get4, columns)))
                f8 = list(chain.from_iterable(map(self._get8, columns)))
            except KeyError as exc:
                raise CodecError(f"the batch has no column {exc}") from None
            return (
                np.concatenate([b.t_ns for b in batches]).astype(np.int64, copy=False),
                (np.concatenate(f4) if f4 else np.zeros(0)).astype(np.float32).reshape(k, -1),
                (np.concatenate(f8) if f8 else np.zeros(0)).astype(np.float64).reshape(k, -1),
            )
        parts = [self.rows(b) for b in batches]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]),
        )

    def rows(self, batch: FrameBatch) -> Rows:
        cols = batch.columns
        n = batch.n
        try:  # (channels x n) built in C, returned as its (n x channels) transpose
            m4 = np.array([cols[c] for c in self.f4], np.float32).reshape(len(self.f4), n).T
            m8 = np.array([cols[c] for c in self.f8], np.float64).reshape(len(self.f8), n).T
        except KeyError as exc:
            raise CodecError(f"the batch has no column {exc}") from None
        return np.asarray(batch.t_ns, np.int64), m4, m8


def _getter(names: list[str]) -> Callable[[Mapping[str, Column]], tuple[Column, ...]]:
    """A C-speed ``lambda cols: tuple(cols[n] for n in names)``."""
    if not names:
        return lambda _: ()
    get = itemgetter(*names)
    return get if len(names) > 1 else lambda cols: (get(cols),)


def _shuffled(bits: npt.NDArray[np.unsignedinteger]) -> bytes:
    """(n x c) values → per column, all first bytes, then all second bytes, ..."""
    n, c = bits.shape
    width = bits.dtype.itemsize
    planes = np.ascontiguousarray(bits.T).view(np.uint8).reshape(c, n, width)
    return planes.transpose(0, 2, 1).tobytes()


def _unshuffled(
    data: bytes | memoryview, pos: int, n: int, c: int, dtype: np.dtype[np.unsignedinteger]
) -> npt.NDArray[np.unsignedinteger]:
    """The (c x n) values ``_shuffled`` wrote at ``pos`` (a new, writable array)."""
    width = dtype.itemsize
    planes = np.frombuffer(data, np.uint8, count=c * n * width, offset=pos).reshape(c, width, n)
    return planes.transpose(0, 2, 1).copy().view(dtype).reshape(c, n)


class CarryEncoder:
    """Codes batches of one stream whose columns are ``channels`` (name, 'f4'|'f8')."""

    def __init__(self, channels: Sequence[tuple[str, str]]) -> None:
        self.layout = Layout(channels)
        self._t = np.zeros(1, np.uint64)
        self._last4 = np.zeros(len(self.layout.f4), np.uint32)
        self._last8 = np.zeros(len(self.layout.f8), np.uint64)

    def rows(self, batch: FrameBatch) -> Rows:
        """``batch`` as the rows ``encode_rows`` takes (CodecError names a missing channel)."""
        return self.layout.rows(batch)

    def encode(self, batch: FrameBatch) -> bytes:
        return self.encode_rows(*self.rows(batch))

    def encode_rows(
        self,
        t_ns: npt.NDArray[np.int64],
        m4: npt.NDArray[np.float32],
        m8: npt.NDArray[np.float64],
    ) -> bytes:
        if len(t_ns) == 0:
            return b""
        t = np.ascontiguousarray(t_ns, "<i8").view("<u8").reshape(-1, 1)
        parts = [_shuffled(self._deltas(t, self._t))]
        if m4.shape[1]:
            bits4 = np.ascontiguousarray(m4, "<f4").view("<u4")
            parts.append(_shuffled(self._deltas(bits4, self._last4)))
        if m8.shape[1]:
            bits8 = np.ascontiguousarray(m8, "<f8").view("<u8")
            parts.append(_shuffled(self._deltas(bits8, self._last8)))
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

    def __init__(self, channels: Sequence[tuple[str, str]]) -> None:
        self.layout = Layout(channels)
        self._t = np.zeros(1, np.uint64)
        self._last4 = np.zeros(len(self.layout.f4), np.uint32)
        self._last8 = np.zeros(len(self.layout.f8), np.uint64)

    @property
    def entry_width(self) -> int:
        """Bytes per frame of an entry."""
        return self.layout.width

    def decode(self, data: bytes | memoryview, pos: int, n: int) -> tuple[FrameBatch, int]:
        """The batch of ``n`` frames at ``pos`` in ``data``, and the position after it.

        Each column is a contiguous row of one (channels x frames) array per dtype."""
        end = pos + n * self.layout.width
        if end > len(data):
            raise CodecError(f"entry of {n} frames needs {end - pos} bytes, {len(data) - pos} left")
        if n == 0:
            return FrameBatch.trusted(np.zeros(0, np.int64), {}), pos
        t = self._undelta(_unshuffled(data, pos, n, 1, np.dtype("<u8")), self._t)
        pos += 8 * n
        by_name: dict[str, Column] = {}
        c4, c8 = len(self.layout.f4), len(self.layout.f8)
        if c4:
            v4 = self._undelta(_unshuffled(data, pos, n, c4, np.dtype("<u4")), self._last4)
            pos += 4 * n * c4
            f4 = v4.view("<f4")
            by_name.update((name, f4[j]) for j, name in enumerate(self.layout.f4))
        if c8:
            v8 = self._undelta(_unshuffled(data, pos, n, c8, np.dtype("<u8")), self._last8)
            pos += 8 * n * c8
            f8 = v8.view("<f8")
            by_name.update((name, f8[j]) for j, name in enumerate(self.layout.f8))
        columns = {name: by_name[name] for name in self.layout.names}
        return FrameBatch.trusted(t[0].view("<i8").astype(np.int64), columns), pos

    @staticmethod
    def _undelta(
        deltas: npt.NDArray[np.unsignedinteger], last: npt.NDArray[np.unsignedinteger]
    ) -> npt.NDArray[np.unsignedinteger]:
        deltas[:, 0] += last  # (c x n): each column continues from its last value; wraps
        out = np.cumsum(deltas, axis=1, dtype=deltas.dtype)
        last[:] = out[:, -1]
        return out
