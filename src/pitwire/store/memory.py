"""MemoryStore: the shipped fake. Full Store semantics in dicts, nothing on disk.

Use it in tests and for throwaway sessions (``memory://``). It keeps copies of what it is
given and hands out copies, so callers cannot change stored data by accident. Every method
runs to completion without awaiting, so concurrent tasks see each call as atomic.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import msgspec
import numpy as np

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store import _shared
from pitwire.store.base import OpensAsContext, SessionSummary, StoreError, StreamSummary


class _Stream:
    __slots__ = ("chunks", "firsts", "info", "spans_by_first")

    def __init__(self, info: StreamInfo) -> None:
        self.info = info
        self.firsts: list[int] = []  # sorted first seqs of the stored chunks
        self.chunks: dict[int, tuple[int, FrameBatch]] = {}  # first seq -> (last seq, frames)
        self.spans_by_first: dict[int, ChunkSpan] = {}  # first seq -> its index entry

    def spans(self, first: int, last: int) -> list[tuple[int, int]]:
        """Stored (first, last) seq spans that may overlap [first, last], in order."""
        i = max(bisect.bisect_right(self.firsts, first) - 1, 0)
        j = bisect.bisect_right(self.firsts, last)
        return [(lo, self.chunks[lo][0]) for lo in self.firsts[i:j]]


class _Session:
    __slots__ = ("info", "laps", "streams")

    def __init__(self, info: SessionInfo) -> None:
        self.info = info
        self.streams: dict[StreamId, _Stream] = {}
        self.laps: dict[tuple[str, int], LapInfo] = {}


def _copy(batch: FrameBatch) -> FrameBatch:
    return FrameBatch(
        np.array(batch.t_ns, dtype=np.int64),
        {name: np.array(col) for name, col in batch.columns.items()},
    )


def _clone_stream(info: StreamInfo) -> StreamInfo:
    return msgspec.structs.replace(info, channels=list(info.channels))


class MemoryStore(OpensAsContext):
    """A Store in process memory (``memory://``)."""

    def __init__(self) -> None:
        self._sessions: dict[SessionId, _Session] = {}
        self._open = False

    async def open(self) -> None:
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> None:
        if not self._open:
            raise StoreError("memory store is not open (call open() first)")

    def _session(self, session_id: SessionId) -> _Session:
        self._check_open()
        session = self._sessions.get(session_id)
        if session is None:
            raise _shared.unknown_session(session_id)
        return session

    def _stream(self, session_id: SessionId, stream_id: StreamId) -> _Stream:
        stream = self._session(session_id).streams.get(stream_id)
        if stream is None:
            raise _shared.unknown_stream(session_id, stream_id)
        return stream

    async def put_session(self, info: SessionInfo) -> None:
        self._check_open()
        session = self._sessions.get(SessionId(info.session_id))
        if session is None:
            self._sessions[SessionId(info.session_id)] = _Session(msgspec.structs.replace(info))
        else:
            session.info = msgspec.structs.replace(
                session.info, track=info.track, source=info.source
            )

    async def put_stream(self, session_id: SessionId, info: StreamInfo) -> None:
        _shared.channel_set(info)  # duplicate channel names raise ValueError here
        session = self._session(session_id)
        stream = session.streams.get(StreamId(info.stream_id))
        if stream is None:
            session.streams[StreamId(info.stream_id)] = _Stream(_clone_stream(info))
        else:
            stream.info = _clone_stream(info)

    async def write_chunk(
        self, *, session_id: SessionId, stream_id: StreamId, first_seq: int, batch: FrameBatch
    ) -> int:
        stream = self._stream(session_id, stream_id)
        batch = _shared.check_write(
            session_id=session_id,
            stream_id=stream_id,
            first_seq=first_seq,
            batch=batch,
            channels=_shared.channel_set(stream.info),
        )
        if batch.n == 0:
            return 0
        stored = 0
        last_seq = first_seq + batch.n - 1
        for lo, hi in _shared.gaps(first_seq, last_seq, stream.spans(first_seq, last_seq)):
            piece = _copy(batch.slice(lo - first_seq, hi - first_seq + 1))
            bisect.insort(stream.firsts, lo)
            stream.chunks[lo] = (hi, piece)
            stream.spans_by_first[lo] = _shared.chunk_span(lo, piece)
            stored += piece.n
        return stored

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        session = self._session(session_id)
        if StreamId(lap.stream_id) not in session.streams:
            raise _shared.unknown_stream(session_id, StreamId(lap.stream_id))
        session.laps[(lap.stream_id, lap.lap)] = lap

    async def list_sessions(self) -> list[SessionSummary]:
        self._check_open()
        sessions = sorted(
            self._sessions.values(), key=lambda s: (-s.info.started_ns, s.info.session_id)
        )
        return [self._summary(s) for s in sessions]

    async def get_session(self, session_id: SessionId) -> SessionSummary:
        return self._summary(self._session(session_id))

    def _summary(self, session: _Session) -> SessionSummary:
        streams: list[StreamSummary] = []
        for stream_id in sorted(session.streams):
            stream = session.streams[stream_id]
            summary = StreamSummary(info=_clone_stream(stream.info))
            if stream.firsts:
                batches = [stream.chunks[first][1] for first in stream.firsts]
                summary.frames = sum(b.n for b in batches)
                summary.first_seq = stream.firsts[0]
                summary.last_seq = stream.chunks[stream.firsts[-1]][0]
                summary.t0_ns = min(int(b.t_ns.min()) for b in batches)
                summary.t1_ns = max(int(b.t_ns.max()) for b in batches)
            streams.append(summary)
        laps = [session.laps[key] for key in sorted(session.laps)]
        return SessionSummary(
            info=msgspec.structs.replace(session.info), streams=streams, laps=laps
        )

    async def read_frames(
        self,
        *,
        session_id: SessionId,
        stream_id: StreamId,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> FrameBatch:
        stream = self._stream(session_id, stream_id)
        channels = _shared.channel_set(stream.info)
        pieces = [
            _shared.in_time(_shared.conform(stream.chunks[first][1], channels), t0_ns, t1_ns)
            for first in stream.firsts
        ]
        return _shared.join(pieces, channels)

    async def read_window(
        self,
        *,
        session_id: SessionId,
        t0_ns: int,
        t1_ns: int,
        streams: Sequence[StreamId] | None = None,
    ) -> dict[StreamId, FrameBatch]:
        session = self._session(session_id)
        wanted = sorted(session.streams) if streams is None else list(streams)
        out: dict[StreamId, FrameBatch] = {}
        for stream_id in wanted:
            out[stream_id] = await self.read_frames(
                session_id=session_id, stream_id=stream_id, t0_ns=t0_ns, t1_ns=t1_ns
            )
        return out

    async def stored_seqs(self, *, session_id: SessionId, stream_id: StreamId) -> int | None:
        stream = self._stream(session_id, stream_id)
        if not stream.firsts:
            return None
        high = stream.chunks[stream.firsts[0]][0]
        for first in stream.firsts[1:]:
            if first != high + 1:
                break
            high = stream.chunks[first][0]
        return high

    async def chunk_index(self, session_id: SessionId) -> dict[str, list[ChunkSpan]]:
        session = self._session(session_id)
        return {
            stream_id: [stream.spans_by_first[first] for first in stream.firsts]
            for stream_id, stream in sorted(session.streams.items())
            if stream.firsts
        }
