"""Pieces every store implementation uses: batch checks against a stream's channels,
exactly-once span arithmetic, time filtering and JSON that keeps non-finite floats."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import msgspec
import numpy as np

from pitwire.analysis.completeness import ChunkSpan, profile
from pitwire.codec import chunk
from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import Column, FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store.base import (
    SessionSummary,
    StoreError,
    StreamSummary,
    UnknownSession,
)

T = TypeVar("T")

log = logging.getLogger("pitwire.store")

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


def chunk_span(first_seq: int, batch: FrameBatch) -> ChunkSpan:
    """The chunk index entry of ``batch`` (non-empty) stored from ``first_seq``: seq and time
    range, period and the time gaps inside it."""
    period, holes = profile(batch.t_ns)
    return ChunkSpan(
        first_seq=first_seq,
        last_seq=first_seq + batch.n - 1,
        n=batch.n,
        t0_ns=int(batch.t_ns.min()),
        t1_ns=int(batch.t_ns.max()),
        period_ns=period,
        holes=holes,
    )


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


def frames_from_blobs(
    rows: Iterable[tuple[int, bytes]],
    channels: ChannelSet,
    t0_ns: int | None,
    t1_ns: int | None,
    where: str,
) -> FrameBatch:
    """The frames in [t0_ns, t1_ns] of chunks ``rows`` ((first_seq, blob) in seq order) as
    one batch of ``channels``; a chunk that fails to decode is skipped with a warning naming
    ``where`` (session/stream) and its first seq."""
    pieces: list[FrameBatch] = []
    for first_seq, blob in rows:
        try:
            batch = chunk.decode(blob)
        except chunk.CodecError as exc:
            log.warning("%s: skipping chunk at seq %d: %s", where, first_seq, exc)
            continue
        pieces.append(in_time(conform(batch, channels), t0_ns, t1_ns))
    return join(pieces, channels)


def join(batches: list[FrameBatch], channels: ChannelSet) -> FrameBatch:
    """One new batch of ``channels`` holding ``batches`` in order (never shares their arrays)."""
    if not batches:
        return FrameBatch.empty(channels)
    return FrameBatch(
        np.concatenate([b.t_ns for b in batches]),
        {n: np.concatenate([b.columns[n] for b in batches]) for n in channels},
    )


@functools.lru_cache(maxsize=1024)
def channels_from_json(text: str | bytes) -> tuple[Channel, ...]:
    """A stream's channels from their stored JSON (``encode_json`` of the list), parsed once
    per distinct text (channels are frozen, so the tuple is safe to share)."""
    return tuple(decode_json(text, list[Channel]))


def summaries(
    sessions: Iterable[Sequence[Any]],
    streams: Iterable[Sequence[Any]],
    figures: Iterable[Sequence[Any]],
    laps: Iterable[Sequence[Any]],
) -> list[SessionSummary]:
    """Session summaries from the rows the SQL stores read, in their order: sessions (id,
    track, source, started_ns), streams (session, stream, driver, car, channels JSON,
    colour), figures (session, stream, frames, first seq, last seq, t0_ns, t1_ns) and laps
    (session, stream, ``LAP_COLUMNS``)."""
    by_stream = {(row[0], row[1]): tuple(row[2:]) for row in figures}
    out = {
        row[0]: SessionSummary(
            info=SessionInfo(session_id=row[0], track=row[1], source=row[2], started_ns=row[3]),
            streams=[],
            laps=[],
        )
        for row in sessions
    }
    for session, stream, driver, car, channels, colour in streams:
        info = StreamInfo(
            stream_id=stream,
            driver=driver,
            car=car,
            channels=list(channels_from_json(channels)),
            colour=colour,
        )
        summary = StreamSummary(info=info)
        if (session, stream) in by_stream:
            frames, first, last, t0, t1 = by_stream[(session, stream)]
            summary = StreamSummary(
                info=info, frames=frames, first_seq=first, last_seq=last, t0_ns=t0, t1_ns=t1
            )
        out[session].streams.append(summary)
    for row in laps:
        out[row[0]].laps.append(lap_from_row(row[1], row[2:]))
    return list(out.values())


LAP_COLUMNS = (
    "lap",
    "t0_ns",
    "t1_ns",
    "frames",
    "lap_time",
    "sectors",
    "compound",
    "stint",
    "tyre_life",
    "pit_in",
    "pit_out",
)
"""The laps columns after (session, stream), in the order of ``lap_row``."""


def lap_row(lap: LapInfo) -> tuple[Any, ...]:
    """The values of ``LAP_COLUMNS`` for ``lap`` (sectors as a JSON array)."""
    return (
        lap.lap,
        lap.t0_ns,
        lap.t1_ns,
        lap.frames,
        lap.lap_time,
        encode_json(list(lap.sectors)),
        lap.compound,
        lap.stint,
        lap.tyre_life,
        lap.pit_in,
        lap.pit_out,
    )


def lap_from_row(stream: str, row: Sequence[Any]) -> LapInfo:
    """The LapInfo of ``stream`` from the values of ``LAP_COLUMNS``."""
    lap, t0, t1, frames, lap_time, sectors, compound, stint, tyre_life, pit_in, pit_out = row
    return LapInfo(
        stream_id=stream,
        lap=lap,
        t0_ns=t0,
        t1_ns=t1,
        frames=frames,
        lap_time=lap_time,
        sectors=_sectors_from_json(sectors),
        compound=compound,
        stint=stint,
        tyre_life=tyre_life,
        pit_in=bool(pit_in),
        pit_out=bool(pit_out),
    )


@functools.lru_cache(maxsize=256)
def _sectors_from_json(text: str | bytes) -> tuple[float | None, ...]:
    if text in ("[]", b"[]"):
        return ()
    return decode_json(text, tuple[float | None, ...])


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
