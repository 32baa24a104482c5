"""Chunk codec v2 payloads (the layout is drawn in ``pitwire.codec.chunk``).

``payload`` builds what the zstd frame holds, ``parse`` reads it back given the header's
column and frame counts. Columns are worked on together as (channels x frames) arrays, so a
chunk costs a few numpy passes whatever its number of channels; the loops are per group of
columns, per column only to name them, per exception only where it has to. What a schema
implies is worked out once (``Plan`` to encode, ``_Schema`` to decode) and kept. Large
temporaries live in per-thread scratch buffers: allocating fresh ones of that size costs
page faults on every call.
"""

from __future__ import annotations

import itertools
import math
import struct
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from pitwire.codec.errors import CodecError
from pitwire.model.frames import Column, FrameBatch

E4, E8, Q4, Q8 = 1, 2, 3, 4
"""Column kinds: exact float32, exact float64, quantized float32, quantized float64."""
KINDS = (E4, E8, Q4, Q8)
_LAYOUT = (Q8, Q4, E8, E4)
"""The order of the groups of columns in the deltas section."""
_GROUP = np.array([0, 3, 2, 1, 0])
"""Each kind's place in ``_LAYOUT``."""
_BOUNDS = np.arange(len(_LAYOUT) + 1)

_COUNTS = struct.Struct("<HII")
_RESOLUTION = struct.Struct("<d")
_TIME = struct.Struct("<qqB")
_COUNT = struct.Struct("<I")
_STEPS = float(2**53)
"""Values of this many steps or more are exceptions (int64 and float64 agree below it)."""
_MAX_RESOLUTION = {Q4: float(2**70), Q8: float(2**970)}
"""Coarser resolutions are coded exactly: below 2**53 steps of at most this, a decoded value
stays finite (in float32 for Q4)."""
_PLANE_TOPS = np.array([1 << (8 * b) for b in range(8)], np.uint64)
_PLANE = np.arange(8)
_U8 = np.dtype("<u8")
_NONE = np.zeros(0, np.intp)
_SCRATCH_FLOOR, _SCRATCH_LIMIT = 1 << 16, 1 << 24
"""Scratch buffers of this many bytes are kept for the next call (smaller ones are cheap to
allocate, larger ones too rare to keep)."""
_CACHE_LIMIT = 256
"""Parsed descriptor sections kept (streams of a store share a few)."""


def max_size(n_cols: int, n: int) -> int:
    """An upper bound of the payload size of ``n_cols`` x ``n`` values (every section at its
    largest: counts, descriptors, time, columns, exceptions)."""
    return 64 + 275 * n_cols + 20 * n + 26 * n_cols * n


def float_dtype(kind: int) -> np.dtype[np.floating]:
    """The native float dtype of a column kind."""
    return np.dtype(np.float32 if kind in (E4, Q4) else np.float64)


class _Scratch(threading.local):
    """Reusable temporary arrays and parsed schemas, one set per thread."""

    def __init__(self) -> None:
        self.buffers: dict[str, npt.NDArray[np.uint8]] = {}
        self.schemas: dict[bytes, _Schema] = {}

    def array(self, slot: str, shape: tuple[int, ...], dtype: type[np.generic]) -> npt.NDArray[Any]:
        """An uninitialised array, valid until ``slot`` is asked for again."""
        size = math.prod(shape) * np.dtype(dtype).itemsize
        if not _SCRATCH_FLOOR <= size <= _SCRATCH_LIMIT:
            return np.empty(shape, dtype)
        buffer = self.buffers.get(slot)
        if buffer is None or len(buffer) < size:
            buffer = self.buffers[slot] = np.empty(max(size, 1 << 16), np.uint8)
        return buffer[:size].view(dtype).reshape(shape)


_SCRATCH = _Scratch()


# -- encoding ---------------------------------------------------------------------------------


class Plan:
    """How the columns of one schema (names, dtypes, resolutions) are coded: built once,
    reused for every chunk of it.

    The quantized columns and the exact float64 ones are worked on together as the rows of
    one int64 array (``wide``: kinds 4, 3, 2 in layout order), the exact float32 ones as
    another (int32, their deltas wrap modulo 2**32).
    """

    __slots__ = (
        "derived",
        "described",
        "exact4",
        "exact8",
        "head",
        "kinds",
        "quantized",
        "rank_key",
        "resolution",
        "resolutions",
        "wide",
    )

    def __init__(
        self, described: Sequence[tuple[int, bytes]], resolutions: Sequence[float | None]
    ) -> None:
        self.described = described
        self.resolutions = tuple(resolutions)
        kinds: list[int] = []
        pieces: list[bytes] = []
        for (code, raw_name), resolution in zip(described, resolutions, strict=True):
            if resolution is not None and not resolution > 0:
                raise CodecError(
                    f"column {raw_name.decode()!r}: resolution {resolution} is not > 0"
                )
            if resolution is None or not resolution <= _MAX_RESOLUTION[code + 2]:
                kinds.append(code)  # no resolution, or so coarse it is coded exactly
                pieces.append(bytes((code, len(raw_name))) + raw_name)
            else:
                kinds.append(code + 2)
                pieces.append(
                    bytes((code + 2, len(raw_name))) + raw_name + _RESOLUTION.pack(resolution)
                )
        self.kinds = kinds
        self.head = b"".join(pieces)
        by_kind = {kind: [j for j, k in enumerate(kinds) if k == kind] for kind in _LAYOUT}
        self.quantized = by_kind[Q8] + by_kind[Q4]
        self.resolution = np.array([resolutions[j] for j in self.quantized], np.float64)
        self.exact8, self.exact4 = by_kind[E8], by_kind[E4]
        self.wide = self.quantized + self.exact8
        self.rank_key = 2 * np.repeat([0, 1, 2], [len(by_kind[k]) for k in (Q8, Q4, E8)])
        self.derived: dict[frozenset[int], Plan] = {}

    def without(self, columns: Sequence[int]) -> Plan:
        """This plan with ``columns`` coded exactly."""
        key = frozenset(columns)
        plan = self.derived.get(key)
        if plan is None:
            if len(self.derived) >= _CACHE_LIMIT:
                self.derived.clear()
            steps = [None if j in key else r for j, r in enumerate(self.resolutions)]
            plan = self.derived[key] = Plan(self.described, steps)
        return plan


def payload(batch: FrameBatch, plan: Plan) -> bytes:
    """The v2 payload of ``batch`` coded as ``plan`` says (columns that are mostly
    exceptions in this batch coded exactly)."""
    n = batch.n
    body = [_COUNT.pack(0)]
    if n:
        columns = list(batch.columns.values())
        body, mostly = _encode_columns(columns, plan, n)
        if mostly:
            plan = plan.without(mostly)
            body, _ = _encode_columns(columns, plan, n)
    time = _encode_time(batch.t_ns)
    return b"".join([_COUNTS.pack(len(plan.kinds), n, len(plan.head)), plan.head, time, *body])


def _encode_columns(columns: list[Column], plan: Plan, n: int) -> tuple[list[bytes], list[int]]:
    """First values, orders, deltas and exceptions; or nothing and the quantized columns
    that are mostly exceptions, to be coded exactly."""
    c = len(columns)
    first = np.empty(c, np.uint64)
    orders = np.empty(c, np.uint8)
    deltas = _SCRATCH.array("deltas", (c, n - 1), np.uint64)  # rows in layout order
    nq, nw = len(plan.quantized), len(plan.wide)
    exceptions = _COUNT.pack(0)
    if nw:
        wide = _SCRATCH.array("wide", (nw, n), np.int64)
        if nq:
            raw = _SCRATCH.array("raw", (nq, n), np.float64)
            with np.errstate(all="ignore"):  # widening a signalling NaN is "invalid"
                np.stack([columns[j] for j in plan.quantized], out=raw, casting="same_kind")
            mostly, rows, frames = _quantize(raw, plan.resolution, wide[:nq])
            if mostly.any():
                return [], [plan.quantized[r] for r in np.flatnonzero(mostly).tolist()]
            if len(rows):
                exceptions = _exceptions(columns, plan.quantized, rows, frames, n)
            first[plan.quantized] = _zigzag(wide[:nq, 0])
        if plan.exact8:
            exact = wide[nq:].view(np.float64)
            np.stack([columns[j] for j in plan.exact8], out=exact, casting="same_kind")
            first[plan.exact8] = wide[nq:, 0].view(np.uint64)
        orders[plan.wide] = _predict(wide, deltas[:nw], plan.rank_key)
    if plan.exact4:
        raw4 = _SCRATCH.array("raw4", (len(plan.exact4), n), np.float32)
        np.stack([columns[j] for j in plan.exact4], out=raw4, casting="same_kind")
        ints = raw4.view(np.int32)
        first[plan.exact4] = ints[:, 0].view(np.uint32)
        orders[plan.exact4] = _predict(ints, deltas[nw:], None)
    return [_pack(first[None, :]), orders.tobytes(), _pack(deltas), exceptions], []


def _exceptions(
    columns: list[Column],
    ordinals: list[int],
    rows: npt.NDArray[np.intp],
    frames: npt.NDArray[np.intp],
    n: int,
) -> bytes:
    """The exceptions section: the values at (``rows`` of ``ordinals``, ``frames``)."""
    flat = np.array(ordinals, np.int64)[rows] * n + frames
    bits = np.empty(len(rows), np.uint64)
    for row in np.unique(rows).tolist():  # a row at a time: the columns have their dtypes
        at = rows == row
        col = columns[ordinals[row]]
        native = col.astype(col.dtype.newbyteorder("="), copy=False)
        bits[at] = native.view(np.uint32 if native.itemsize == 4 else np.uint64)[frames[at]]
    order = np.argsort(flat)
    flat = flat[order].view(np.uint64)
    at_deltas = np.diff(flat, prepend=np.uint64(0))
    return _COUNT.pack(len(flat)) + _pack(np.stack([at_deltas, bits[order]]))


def _quantize(
    raw: npt.NDArray[np.float64], resolution: npt.NDArray[np.float64], out: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The steps of ``raw`` (channels x frames, overwritten) into ``out``; which rows are
    mostly exceptions (then nothing else is done); the (row, frame) of the exceptions, whose
    step repeats the one before (0 before the first)."""
    m, n = raw.shape
    mostly = np.zeros(m, np.bool_)
    rows, frames = _NONE, _NONE
    with np.errstate(all="ignore"):
        np.divide(raw, resolution[:, None], out=raw)
        np.rint(raw, out=raw)
        # row-wise min/max (NaN propagates and fails the test) find the rows to look into
        dirty = np.flatnonzero(~((raw.min(axis=1) > -_STEPS) & (raw.max(axis=1) < _STEPS)))
        if len(dirty):
            ok = np.abs(raw[dirty]) < _STEPS
            mostly[dirty] = 2 * np.count_nonzero(ok, axis=1) < n
            if mostly.any():
                return mostly, rows, frames
            last = np.where(ok, np.arange(n), 0)  # forward fill from the last good step
            np.maximum.accumulate(last, axis=1, out=last)
            raw[dirty] = np.take_along_axis(np.where(ok, raw[dirty], 0.0), last, axis=1)
            bad, frames = np.nonzero(~ok)
            rows = dirty[bad]
        np.copyto(out, raw, casting="unsafe")
    return mostly, rows, frames


def _predict(
    ints: npt.NDArray[np.signedinteger],
    out: npt.NDArray[np.uint64],
    key: npt.NDArray[np.int64] | None,
) -> npt.NDArray[np.uint8]:
    """Zigzag deltas of the rows of ``ints`` into ``out`` and each row's order: 2 (deltas of
    deltas after the first delta) where that makes smaller numbers, else 1. Rows keep their
    order within a group (``key``: twice the group of each row), order 1 before order 2."""
    m, n = ints.shape
    signed = ints.dtype.type
    d = out.view(np.int64) if signed is np.int64 else _SCRATCH.array("d", (m, n - 1), signed)
    np.subtract(ints[:, 1:], ints[:, :-1], out=d)  # wraps for bit patterns
    second = np.zeros(m, np.bool_)
    if n > 2:
        d2 = np.subtract(d[:, 1:], d[:, :-1], out=_SCRATCH.array("d2", (m, n - 2), signed))
        magnitude = _SCRATCH.array("abs", (m, n - 2), signed)
        l1 = np.abs(d[:, 1:], out=magnitude).sum(axis=1, dtype=np.float64)
        second = np.abs(d2, out=magnitude).sum(axis=1, dtype=np.float64) < l1
        if second.any():
            d[second, 1:] = d2[second]
            if not second.all():
                d[:] = d[np.argsort(second if key is None else key + second, kind="stable")]
    sign = np.right_shift(d, 8 * d.itemsize - 1, out=_SCRATCH.array("sign", d.shape, signed))
    np.left_shift(d, 1, out=d)
    np.bitwise_xor(d, sign, out=d)
    if signed is np.int32:
        out[:] = d.view(np.uint32)
    return np.where(second, 2, 1).astype(np.uint8)


def _encode_time(t_ns: npt.NDArray[np.int64]) -> bytes:
    """t0, the median period and the steps that differ from it (see the layout)."""
    t = np.asarray(t_ns).astype(np.int64, copy=False)
    n = len(t)
    if n < 2:
        return _TIME.pack(int(t[0]) if n else 0, 0, 0)
    steps = t[1:] - t[:-1]  # wraps, like everything after it
    period = int(np.partition(steps, (n - 2) // 2)[(n - 2) // 2])
    e = steps - np.int64(period)
    off = np.flatnonzero(e)
    if not len(off):
        return _TIME.pack(int(t[0]), period, 0)
    if 4 * len(off) <= n - 1:
        index = np.diff(off, prepend=0).astype(np.uint64)
        sparse = _pack(np.stack([index, _zigzag(e[off])]))
        return _TIME.pack(int(t[0]), period, 1) + _COUNT.pack(len(off)) + sparse
    return _TIME.pack(int(t[0]), period, 2) + _pack(_zigzag(e)[None, :])


def _zigzag(d: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """Signed as unsigned, small magnitudes first: 0, -1, 1, -2, ... → 0, 1, 2, 3, ..."""
    return ((d << 1) ^ (d >> 63)).view(np.uint64)


def _pack(rows: npt.NDArray[np.uint64]) -> bytes:
    """A packed run of ``rows`` (c x m): c plane counts, then each row's low byte planes."""
    c, m = rows.shape
    if m == 0:
        return bytes(c)
    if c == 1:  # first values, time steps: fewer numpy calls
        k = (int(rows.max()).bit_length() + 7) // 8
        return bytes((k,)) + rows.astype(_U8).view(np.uint8).reshape(m, 8)[:, :k].T.tobytes()
    planes = np.count_nonzero(rows.max(axis=1)[:, None] >= _PLANE_TOPS, axis=1).astype(np.uint8)
    cube = np.ascontiguousarray(rows, _U8).view(np.uint8).reshape(c, m, 8).transpose(0, 2, 1)
    return b"".join((planes.tobytes(), cube[planes[:, None] > _PLANE].tobytes()))


# -- decoding ---------------------------------------------------------------------------------


def parse(payload: bytes, n_cols: int, n: int) -> FrameBatch:
    """The batch a v2 payload of ``n_cols`` columns and ``n`` frames holds."""
    try:
        return _parse(payload, n_cols, n)
    except struct.error as exc:
        raise CodecError(f"truncated payload: {exc}") from None


def _parse(payload: bytes, n_cols: int, n: int) -> FrameBatch:
    # The zstd checksum covers the payload, not the header: its counts are checked here.
    cols, frames, size = _COUNTS.unpack_from(payload)
    if (cols, frames) != (n_cols, n):
        raise CodecError(f"header says {n_cols} columns x {n} frames, the payload does not")
    pos = _COUNTS.size + size
    schema = _schema(payload[_COUNTS.size : pos], n_cols)
    t_ns, pos = _decode_time(payload, pos, n)
    if n:
        (first,), _, pos = _unpack(payload, pos, 1, n_cols)
        if pos + n_cols > len(payload):
            raise CodecError("truncated payload: no predictor orders")
        orders = np.frombuffer(payload, np.uint8, count=n_cols, offset=pos)
        pos += n_cols
        if ((orders - 1) > 1).any():
            raise CodecError(f"bad predictor order {orders.max()} (1 or 2)")
        rank = np.lexsort((orders, schema.group))  # the columns in layout order
        deltas, planes, pos = _unpack(payload, pos, n_cols, n - 1, scratch=True)
        if schema.e4.any() and (
            (planes[schema.e4[rank]] > 4).any() or (first[schema.e4] >> np.uint64(32)).any()
        ):
            raise CodecError("a float32 column has values wider than 32 bits")
    (count,) = _COUNT.unpack_from(payload, pos)
    pos += _COUNT.size
    if count:
        col, frame, bits, pos = _parse_exceptions(payload, pos, count, schema.kinds, n)
    if pos != len(payload):
        raise CodecError(f"payload has {len(payload)} bytes, its sections end at {pos}")
    if n == 0:
        empty = zip(schema.names, schema.kinds.tolist(), strict=True)
        return FrameBatch.trusted(t_ns, {name: np.zeros(0, float_dtype(k)) for name, k in empty})
    slot = np.empty(n_cols, np.intp)  # each column's row in layout order
    slot[rank] = np.arange(n_cols)
    bounds = np.searchsorted(schema.group[rank], _BOUNDS).tolist()
    head = first.view(np.int64)
    if schema.quantized.any():
        head = head.copy()
        head[schema.quantized] = _unzigzag(first[schema.quantized])
    rows: list[Column] = []
    with np.errstate(over="ignore", invalid="ignore"):
        ints = _undo_deltas(deltas, head[rank], orders[rank], bounds)
        for kind, a, b in zip(_LAYOUT, bounds, bounds[1:], strict=False):
            if a == b:
                continue
            values = _values(kind, ints[a:b], schema, rank[a:b])
            if count and kind in (Q4, Q8):
                mine = schema.kinds[col] == kind
                unsigned = np.uint32 if kind == Q4 else np.uint64
                values.view(unsigned)[slot[col[mine]] - a, frame[mine]] = bits[mine]
            rows.extend(values)
    at = slot.tolist()
    return FrameBatch.trusted(t_ns, {name: rows[at[j]] for j, name in enumerate(schema.names)})


class _Schema:
    """What a descriptor section says, with what decoding derives from it."""

    __slots__ = ("divisor", "e4", "group", "kinds", "names", "quantized", "resolution", "whole")

    def __init__(
        self, names: list[str], kinds: npt.NDArray[np.int64], resolution: npt.NDArray[np.float64]
    ) -> None:
        self.names = names
        self.kinds = kinds
        self.resolution = resolution
        self.group = _GROUP[kinds]
        self.e4 = kinds == E4
        self.quantized = kinds >= Q4
        with np.errstate(all="ignore"):
            inverse = 1.0 / resolution
            divisor = np.rint(inverse)
            # Steps of 1/k (0.01, 1, 1/255): decoded as q / k, the correctly rounded value,
            # so a value already on a step (0.3 at 0.1) comes back bit for bit.
            self.whole = (np.abs(inverse - divisor) <= 1e-9 * inverse) & (divisor >= 1)
        self.divisor = np.where(self.whole, divisor, 1.0)


def _schema(section: bytes, n_cols: int) -> _Schema:
    """The schema of a descriptor section (parsed once: chunks of a stream share theirs)."""
    known = _SCRATCH.schemas.get(section)
    if known is not None and len(known.names) == n_cols:
        return known
    pos = 0
    names: list[str] = []
    kinds = np.zeros(n_cols, np.int64)
    resolution = np.zeros(n_cols, np.float64)
    for j in range(n_cols):
        if pos + 2 > len(section):
            raise CodecError("truncated column descriptors")
        kind, length = section[pos], section[pos + 1]
        raw_name = section[pos + 2 : pos + 2 + length]
        pos += 2 + length
        if kind not in KINDS or len(raw_name) != length or length == 0:
            raise CodecError(f"bad column descriptor (kind {kind}, name length {length})")
        try:
            names.append(raw_name.decode())
        except UnicodeDecodeError as exc:
            raise CodecError(f"column name is not UTF-8: {exc}") from exc
        kinds[j] = kind
        if kind in (Q4, Q8):
            (step,) = _RESOLUTION.unpack_from(section, pos)
            pos += _RESOLUTION.size
            if not 0 < step <= _MAX_RESOLUTION[kind]:
                raise CodecError(f"column {names[-1]!r}: bad resolution {step}")
            resolution[j] = step
    if pos != len(section):
        raise CodecError(f"column descriptors end at byte {pos} of {len(section)}")
    if len(set(names)) != len(names):
        raise CodecError("duplicate column names")
    if len(_SCRATCH.schemas) >= _CACHE_LIMIT:
        _SCRATCH.schemas.clear()
    schema = _SCRATCH.schemas[bytes(section)] = _Schema(names, kinds, resolution)
    return schema


def _decode_time(payload: bytes, pos: int, n: int) -> tuple[npt.NDArray[np.int64], int]:
    t0, period, mode = _TIME.unpack_from(payload, pos)
    pos += _TIME.size
    t = np.arange(n, dtype=np.uint64) * np.uint64(period % 2**64)  # wraps
    t += np.uint64(t0 % 2**64)
    if mode == 0:
        return t.view(np.int64), pos
    if mode not in (1, 2) or n < 2:
        raise CodecError(f"bad time mode {mode} for {n} frames")
    if mode == 1:
        (k,) = _COUNT.unpack_from(payload, pos)
        if not 0 < k < n:
            raise CodecError(f"{k} irregular time steps in {n} frames")
        (index, z), _, pos = _unpack(payload, pos + _COUNT.size, 2, k)
        if index.max() >= n or (index[1:] == 0).any():
            raise CodecError("bad indexes of irregular time steps")
        at = np.cumsum(index)
        if at[-1] >= n - 1:
            raise CodecError("bad indexes of irregular time steps")
        e = np.zeros(n - 1, np.uint64)
        e[at] = _unzigzag(z).view(np.uint64)
    else:
        (z,), _, pos = _unpack(payload, pos, 1, n - 1)
        e = _unzigzag(z).view(np.uint64)
    t[1:] += np.cumsum(e, dtype=np.uint64)
    return t.view(np.int64), pos


def _parse_exceptions(
    payload: bytes, pos: int, count: int, kinds: npt.NDArray[np.int64], n: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.uint64], int]:
    """Column, frame and bit pattern of each exception, and the position after them."""
    cells = len(kinds) * n
    if count > cells:
        raise CodecError(f"{count} exceptions in {len(kinds)} x {n} values")
    (at, bits), _, pos = _unpack(payload, pos, 2, count)
    flat = np.cumsum(at, dtype=np.uint64)  # cannot wrap unless a step is out of range
    if at.max() >= cells or flat[-1] >= cells or (flat[1:] <= flat[:-1]).any():
        raise CodecError("exception positions are out of range or out of order")
    col, frame = np.divmod(flat, np.uint64(n))
    col, frame = col.astype(np.intp), frame.astype(np.intp)
    if ((kinds[col] != Q4) & (kinds[col] != Q8)).any():
        raise CodecError("an exception in a column that is not quantized")
    if (bits[kinds[col] == Q4] >> np.uint64(32)).any():
        raise CodecError("a float32 exception wider than 32 bits")
    return col, frame, bits, pos


def _undo_deltas(
    deltas: npt.NDArray[np.uint64],
    first: npt.NDArray[np.int64],
    orders: npt.NDArray[np.uint8],
    bounds: list[int],
) -> npt.NDArray[np.int64]:
    """The integers (c x n, a scratch array) of rows of zigzag deltas (c x n-1, undone in
    place) after their first values, in layout order; wrapping, so a float32 row is right
    modulo 2**32. ``bounds``: where each group starts."""
    c, m = deltas.shape
    sign = np.bitwise_and(deltas, np.uint64(1), out=_SCRATCH.array("sign", (c, m), np.uint64))
    np.right_shift(deltas, np.uint64(1), out=deltas)
    np.negative(sign.view(np.int64), out=sign.view(np.int64))
    np.bitwise_xor(deltas, sign, out=deltas)
    signed = deltas.view(np.int64)
    for a, b in itertools.pairwise(bounds):
        second = a + int(np.count_nonzero(orders[a:b] == 1))  # order 2 rows come last
        if second < b:
            np.cumsum(signed[second:b], axis=1, out=signed[second:b])
    ints = _SCRATCH.array("ints", (c, m + 1), np.int64)
    ints[:, 0] = first
    if m:
        signed[:, 0] += first
        np.cumsum(signed, axis=1, out=ints[:, 1:])
    return ints


def _values(
    kind: int, ints: npt.NDArray[np.int64], schema: _Schema, columns: npt.NDArray[np.intp]
) -> npt.NDArray[np.floating]:
    """The (channels x frames) values of a group's integers (of ``columns``), new arrays."""
    if kind == E4:
        return ints.astype(np.int32).view(np.float32)
    if kind == E8:
        return ints.view(np.float64).copy()
    out = np.empty(ints.shape, float_dtype(kind))  # float32 is rounded once, from float64
    whole = schema.whole[columns]
    if whole.all():
        np.divide(ints, schema.divisor[columns, None], out=out, casting="same_kind")
    elif not whole.any():
        np.multiply(ints, schema.resolution[columns, None], out=out, casting="same_kind")
    else:
        divided = ints / schema.divisor[columns, None]
        out[...] = np.where(whole[:, None], divided, ints * schema.resolution[columns, None])
    return out


def _unzigzag(z: npt.NDArray[np.uint64]) -> npt.NDArray[np.int64]:
    return (z >> np.uint64(1)).view(np.int64) ^ -(z & np.uint64(1)).view(np.int64)


def _unpack(
    payload: bytes, pos: int, c: int, m: int, *, scratch: bool = False
) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint8], int]:
    """The rows (c x m; a scratch array if asked), plane counts and the position after the
    packed run at ``pos``."""
    if pos + c > len(payload):
        raise CodecError(f"truncated payload: {c} plane counts at byte {pos}")
    planes = np.frombuffer(payload, np.uint8, count=c, offset=pos)
    pos += c
    if c and planes.max() > 8:
        raise CodecError(f"bad plane count {planes.max()} (at most 8)")
    stored = int(planes.sum(dtype=np.int64))
    size = stored * m
    if pos + size > len(payload):
        raise CodecError(f"truncated payload: {size} bytes of planes at byte {pos}")
    if scratch:
        cube = _SCRATCH.array("cube", (c, m, 8), np.uint8)
        cube.fill(0)
    else:
        cube = np.zeros((c, m, 8), np.uint8)
    data = np.frombuffer(payload, np.uint8, count=size, offset=pos)
    cube.transpose(0, 2, 1)[planes[:, None] > _PLANE] = data.reshape(stored, m)
    rows = cube.view(_U8).reshape(c, m).astype(np.uint64, copy=False)
    return rows, planes, pos + size
