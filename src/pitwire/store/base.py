"""The Store protocol: where sessions, streams, laps and frame chunks live.

Implementations: ``memory`` (the shipped fake), ``sqlite`` (embedded default) and ``postgres``
(asyncpg, for leagues). They share one contract test suite (tests/store/test_contract.py).

Exceptions::

    StoreError                 anything the store cannot do
    ├── StoreUnavailable       the backend is down or refused; retry later, nothing was written
    └── UnknownSession         a session/stream that does not exist (API input → 404)

Writes are idempotent by (session, stream, seq): writing a chunk whose frames are already
stored stores nothing twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, Self, runtime_checkable

import msgspec

from pitwire.analysis.completeness import ChunkSpan
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo


class StoreError(Exception):
    """The store could not do what was asked."""


class StoreUnavailable(StoreError):
    """The backend is unreachable or failed; nothing from the failed call was written."""


class UnknownSession(StoreError, KeyError):
    """No such session (or stream in it)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown session"


class StreamSummary(msgspec.Struct, kw_only=True):
    """What the store knows of one stream: its info and stored-frame figures.

    first_seq, last_seq: seq range stored (None when nothing stored)
    t0_ns, t1_ns: time range stored [ns since epoch] (0 when nothing stored)
    """

    info: StreamInfo
    frames: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    t0_ns: int = 0
    t1_ns: int = 0


class SessionSummary(msgspec.Struct, kw_only=True):
    info: SessionInfo
    streams: list[StreamSummary]
    laps: list[LapInfo]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.streams)


class OpensAsContext:
    """``async with store:`` opens the store and closes it on the way out."""

    if TYPE_CHECKING:  # defined by each store

        async def open(self) -> None: ...

        async def close(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


@runtime_checkable
class Store(Protocol):
    """Async storage of sessions. All methods may raise StoreUnavailable."""

    async def open(self) -> None:
        """Connect / create the schema. Called once before use."""

    async def close(self) -> None:
        """Flush and release resources."""

    async def put_session(self, info: SessionInfo) -> None:
        """Create the session, or update track/source of an existing one."""

    async def put_stream(self, session_id: SessionId, info: StreamInfo) -> None:
        """Create the stream in the session (which must exist), or update its info."""

    async def write_chunk(
        self, *, session_id: SessionId, stream_id: StreamId, first_seq: int, batch: FrameBatch
    ) -> int:
        """Store ``batch`` whose frames have seq first_seq .. first_seq + n - 1.

        Frames whose seq is already stored for this stream are skipped (exactly-once).
        Returns the number of frames newly stored. Durable when it returns.
        """

    async def put_lap(self, session_id: SessionId, lap: LapInfo) -> None:
        """Record (or replace) lap ``lap.lap`` of ``lap.stream_id``."""

    async def list_sessions(self) -> list[SessionSummary]:
        """Every session, newest first (by started_ns)."""

    async def get_session(self, session_id: SessionId) -> SessionSummary:
        """One session; raises UnknownSession."""

    async def read_frames(
        self,
        *,
        session_id: SessionId,
        stream_id: StreamId,
        t0_ns: int | None = None,
        t1_ns: int | None = None,
    ) -> FrameBatch:
        """Frames of one stream in [t0_ns, t1_ns] (None = unbounded), in seq order, with the
        stream's channels; raises UnknownSession."""

    async def read_window(
        self,
        *,
        session_id: SessionId,
        t0_ns: int,
        t1_ns: int,
        streams: Sequence[StreamId] | None = None,
    ) -> dict[StreamId, FrameBatch]:
        """Frames of every stream of the session (or of ``streams``) in [t0_ns, t1_ns], each
        in seq order with its channels (an empty batch for a stream with none there), read
        from one snapshot: what a seek needs. Raises UnknownSession (also for a named stream
        the session lacks)."""

    async def stored_seqs(self, *, session_id: SessionId, stream_id: StreamId) -> int | None:
        """Highest seq such that every seq from the stream's first stored seq to it is stored
        (the contiguous high-water mark); None when nothing is stored."""

    async def chunk_index(self, session_id: SessionId) -> dict[str, list[ChunkSpan]]:
        """Every stored chunk of the session without its data: stream → spans in seq order
        (streams with nothing stored are absent); raises UnknownSession."""
