"""Carried-delta column coding: successive batches of a stream, each coded against the last
frame of the one before (the session file's blocks, a few frames every 100 ms).

Like the v1 chunk (``codec.chunk``), values are coded as wrapping deltas of their bit
patterns, byte-shuffled per column, so every value round-trips bit for bit; unlike it, the
first frame of a batch is a delta from the previous batch's last frame, so small batches stay
small. A coder's state starts at zero: a reader must start decoding where the writer's coder
started (a session-file segment).

Entry layout (little-endian), ``C`` columns of known dtypes, ``N`` frames::

    N x u64   time deltas (of ``t_ns`` as u64), byte-shuffled
    C times   N x (u32 | u64) value bit-pattern deltas, byte-shuffled
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pitwire.codec.chunk import CodecError, _shuffle, _unshuffle
from pitwire.model.frames import Column, FrameBatch

_BITS = {np.dtype("<f4"): np.dtype("<u4"), np.dtype("<f8"): np.dtype("<u8")}


def _bits_dtype(dtype: str) -> np.dtype[np.unsignedinteger]:
    return np.dtype("<u4") if dtype == "f4" else np.dtype("<u8")


class CarryEncoder:
    """Codes batches of one stream whose columns are ``channels`` (name, 'f4'|'f8')."""

    def __init__(self, channels: Sequence[tuple[str, str]]) -> None:
        self.channels = list(channels)
        self._t = np.uint64(0)
        self._last = [np.zeros(1, _bits_dtype(d)) for _, d in self.channels]

    def encode(self, batch: FrameBatch) -> bytes:
        n = batch.n
        if n == 0:
            return b""
        parts = [_shuffle(self._deltas(np.ascontiguousarray(batch.t_ns, "<i8").view("<u8"), -1))]
        for i, (name, dtype) in enumerate(self.channels):
            col = batch.columns.get(name)
            if col is None:
                raise CodecError(f"the batch has no column {name!r}")
            values = np.ascontiguousarray(col, dtype="<f4" if dtype == "f4" else "<f8")
            parts.append(_shuffle(self._deltas(values.view(_bits_dtype(dtype)), i)))
        return b"".join(parts)

    def _deltas(
        self, bits: npt.NDArray[np.unsignedinteger], column: int
    ) -> npt.NDArray[np.unsignedinteger]:
        out = np.empty_like(bits)
        previous = self._t if column < 0 else self._last[column][0]
        with np.errstate(over="ignore"):
            out[0] = bits[0] - bits.dtype.type(previous)
            np.subtract(bits[1:], bits[:-1], out=out[1:])
        if column < 0:
            self._t = np.uint64(bits[-1])
        else:
            self._last[column][0] = bits[-1]
        return out


class CarryDecoder:
    """Decodes what a ``CarryEncoder`` of the same channels coded, in the same order."""

    def __init__(self, channels: Sequence[tuple[str, str]]) -> None:
        self.channels = list(channels)
        self._t = np.uint64(0)
        self._last = [np.zeros(1, _bits_dtype(d)) for _, d in self.channels]

    @property
    def entry_width(self) -> int:
        """Bytes per frame of an entry."""
        return 8 + sum(_bits_dtype(d).itemsize for _, d in self.channels)

    def decode(self, data: bytes | memoryview, pos: int, n: int) -> tuple[FrameBatch, int]:
        """The batch of ``n`` frames at ``pos`` in ``data``, and the position after it."""
        end = pos + n * self.entry_width
        if end > len(data):
            raise CodecError(f"entry of {n} frames needs {end - pos} bytes, {len(data) - pos} left")
        t_bits = self._undelta(
            _unshuffle(bytes(data[pos : pos + 8 * n]), 0, n, np.dtype("<u8")), -1
        )
        pos += 8 * n
        t_ns = t_bits.view("<i8").astype(np.int64)
        columns: dict[str, Column] = {}
        for i, (name, dtype) in enumerate(self.channels):
            bits_dtype = _bits_dtype(dtype)
            width = bits_dtype.itemsize * n
            bits = self._undelta(_unshuffle(bytes(data[pos : pos + width]), 0, n, bits_dtype), i)
            pos += width
            float_dtype = np.dtype("<f4" if dtype == "f4" else "<f8")
            columns[name] = bits.view(float_dtype).astype(float_dtype.newbyteorder("="))
        return FrameBatch.trusted(t_ns, columns), pos

    def _undelta(
        self, deltas: npt.NDArray[np.unsignedinteger], column: int
    ) -> npt.NDArray[np.unsignedinteger]:
        previous = self._t if column < 0 else self._last[column][0]
        if not deltas.flags.writeable:  # one frame: the unshuffled view is the input buffer
            deltas = deltas.copy()
        with np.errstate(over="ignore"):
            deltas[0] = deltas[0] + deltas.dtype.type(previous)
        out = np.cumsum(deltas, dtype=deltas.dtype)
        if len(out):
            if column < 0:
                self._t = np.uint64(out[-1])
            else:
                self._last[column][0] = out[-1]
        return out
