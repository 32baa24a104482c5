"""Session, stream and lap records: what the store keeps about a session besides its frames."""

from __future__ import annotations

import msgspec

from pitwire.model.channels import Channel


class StreamInfo(msgspec.Struct, kw_only=True):
    """One car/driver in a session and its channel schema.

    colour: display colour ``#rrggbb`` (e.g. an F1 team colour); empty = the UI picks one
    """

    stream_id: str
    driver: str = ""
    car: str = ""
    channels: list[Channel] = msgspec.field(default_factory=list)
    colour: str = ""


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
    sectors: sector times in order [s]; None for a sector without a time; () = not reported
    compound: tyre compound as the source names it (e.g. ``SOFT``); empty = unknown
    stint: stint number (1 = first set of tyres); None = unknown
    tyre_life: laps driven on this set of tyres at the end of the lap; None = unknown
    pit_in, pit_out: the lap ended in the pit lane / started from it
    """

    stream_id: str
    lap: int
    t0_ns: int
    t1_ns: int
    frames: int
    lap_time: float | None = None
    sectors: tuple[float | None, ...] = ()
    compound: str = ""
    stint: int | None = None
    tyre_life: int | None = None
    pit_in: bool = False
    pit_out: bool = False
