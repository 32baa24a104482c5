"""The Source protocol: anything that produces frames (a game feed, a file, the simulator).

A source describes itself (``info``: session-level track/source and its streams with their
channel schemas) and is an async iterator of ``(stream_id, FrameBatch)``. Batches carry a
``packet_id`` column when the source has packet ids (the agent drops repeats), and the
standard ``lap`` column when it knows the lap.

Sources degrade rather than raise: a game that pauses or restarts yields nothing for a while
and logs a warning; only a source that cannot start at all raises ``SourceError``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

import msgspec

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import StreamId
from pitwire.model.records import StreamInfo


class SourceError(Exception):
    """A source cannot start (bad configuration, port in use, map missing)."""


class SourceInfo(msgspec.Struct, kw_only=True):
    source: str
    track: str = ""
    streams: list[StreamInfo] = msgspec.field(default_factory=list)


class Source(Protocol):
    @property
    def info(self) -> SourceInfo: ...

    def __aiter__(self) -> AsyncIterator[tuple[StreamId, FrameBatch]]: ...
