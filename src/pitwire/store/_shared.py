"""Pieces every store implementation uses: batch checks against a stream's channels,
exactly-once span arithmetic, time filtering and JSON that keeps non-finite floats."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, TypeVar

import msgspec
import numpy as np

from pitwire.model.channels import ChannelSet
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import StreamInfo
from pitwire.store.base import StoreError, UnknownSession

T = TypeVar("T")

T_MIN = -(2**63)
T_MAX = 2**63 - 1


def unknown_session(session_id: SessionId) -> UnknownSession:
    return UnknownSession(f"unknown session {session_id!r}")


def unknown_stream(session_id: SessionId, stream_id: StreamId) -> UnknownSession:
    return UnknownSession(f"unknown stream {stream_id!r} in session {session_id!r}")


def channel_set(info: StreamInfo) -> ChannelSet:
    return ChannelSet(info.channels)


def check_write(
    *,
    session_id: SessionId,
    stream_id: StreamId,
    first_seq: int,
    batch: FrameBatch,
    channels: ChannelSet,
) -> FrameBatch:
    """``batch`` with its columns in the stream's channel order; StoreError when its columns
    are not exactly the stream's channels (names and dtypes) or a seq is outside 0..2**63-1."""
    where = f"session {session_id!r} stream {stream_id!r}"
    if first_seq < 0 or first_seq + batch.n - 1 > T_MAX:
        raise StoreError(f"{where}: seqs {first_seq}..{first_seq + batch.n - 1} out of range")
    names = set(batch.columns)
    if names != set(channels):
        missing = ", ".join(sorted(set(channels) - names)) or "-"
        extra = ", ".join(sorted(names - set(channels))) or "-"
        raise StoreError(
            f"{where}: batch columns do not match the stream's channels "
            f"(missing: {missing}; not declared: {extra}); put_stream the new channels first"
        )
    for name, channel in channels.items():
        col = batch.columns[name]
        if col.dtype.kind != "f" or col.dtype.itemsize != np.dtype(channel.dtype).itemsize:
            raise StoreError(f"{where}: column {name!r} is {col.dtype}, channel is {channel.dtype}")
    return FrameBatch(batch.t_ns, {name: batch.columns[name] for name in channels})


def conform(batch: FrameBatch, channels: ChannelSet) -> FrameBatch:
    """``batch`` with exactly ``channels``: reordered, cast to the channel's dtype, a channel
    the batch lacks (stored before it was declared) filled with NaN."""
    columns: dict[str, Column] = {}
    for name, channel in channels.items():
        col = batch.columns.get(name)
        if col is None:
            columns[name] = np.full(batch.n, np.nan, dtype=channel.dtype)
        else:
            columns[name] = col.astype(channel.dtype, copy=False)
    return FrameBatch(batch.t_ns, columns)


def gaps(first: int, last: int, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The sub-ranges of [first, last] not covered by ``spans`` (inclusive (first, last)
    pairs, sorted and non-overlapping)."""
    out: list[tuple[int, int]] = []
    cursor = first
    for lo, hi in spans:
        if hi < cursor:
            continue
        if lo > last:
            break
        if lo > cursor:
            out.append((cursor, lo - 1))
        cursor = hi + 1
        if cursor > last:
            break
    if cursor <= last:
        out.append((cursor, last))
    return out


def in_time(batch: FrameBatch, t0_ns: int | None, t1_ns: int | None) -> FrameBatch:
    """The frames of ``batch`` with t0_ns <= t <= t1_ns (None = unbounded); ``batch`` itself
    when both are None."""
    if t0_ns is None and t1_ns is None:
        return batch
    keep = np.ones(batch.n, dtype=bool)
    if t0_ns is not None:
        keep &= batch.t_ns >= t0_ns
    if t1_ns is not None:
        keep &= batch.t_ns <= t1_ns
    return FrameBatch(batch.t_ns[keep], {n: c[keep] for n, c in batch.columns.items()})


def join(batches: list[FrameBatch], channels: ChannelSet) -> FrameBatch:
    """One new batch of ``channels`` holding ``batches`` in order (never shares their arrays)."""
    if not batches:
        return FrameBatch.empty(channels)
    return FrameBatch(
        np.concatenate([b.t_ns for b in batches]),
        {n: np.concatenate([b.columns[n] for b in batches]) for n in channels},
    )


def encode_json(obj: Any) -> str:
    """JSON of ``obj`` in which non-finite floats are written as "inf", "-inf", "nan"
    (plain JSON has no spelling for them); read back with ``decode_json``."""
    return msgspec.json.encode(_finite(msgspec.to_builtins(obj))).decode()


def decode_json(text: str | bytes, type: type[T]) -> T:
    return msgspec.json.decode(text, type=type, strict=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
