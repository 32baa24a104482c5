"""Session, stream and lap records: what the store keeps about a session besides its frames."""

from __future__ import annotations

import msgspec

from pitwire.model.channels import Channel


class StreamInfo(msgspec.Struct, kw_only=True):
    """One car/driver in a session and its channel schema."""

    stream_id: str
    driver: str = ""
    car: str = ""
    channels: list[Channel] = msgspec.field(default_factory=list)


class SessionInfo(msgspec.Struct, kw_only=True):
    """A recorded or live session.

    started_ns: wall-clock start [ns since epoch]
    """

    session_id: str
    track: str = ""
    source: str = ""
    started_ns: int = 0


class LapInfo(msgspec.Struct, kw_only=True, frozen=True):
    """A completed (or, with ``t1_ns`` of the last frame, current) lap of one stream.

    t0_ns, t1_ns: first and last frame of the lap [ns since epoch]
    lap_time: official lap time when the source reported one [s], else t1 - t0
    """

    stream_id: str
    lap: int
    t0_ns: int
    t1_ns: int
    frames: int
    lap_time: float | None = None
