"""What a source is, in two layers.

**Decoder** (sans-I/O, one per game format): fed raw bytes with their receive time and a tag
naming where they came from (a shared-memory page, ``""`` for a datagram), it returns events:
:class:`Sample` (one frame of one car as raw field values, named as in the format's document),
:class:`StreamSeen` (a car appeared or its driver/car changed), :class:`SessionStarted` (the
game began a new session), :class:`Send` (bytes the transport must send back, e.g. a
handshake) and :class:`Notice` (something worth a warning). Its ``manifest`` maps raw fields
to channels. A decoder never touches a socket, a map or a clock.

**Source** (the asyncio side): a transport (UDP, shared memory, a file) feeding a decoder,
an async iterator of ``(stream_id, FrameBatch)`` pairs and :data:`SourceEvent` items. Batches
carry a ``packet_id`` column when the source has packet ids (the agent drops repeats) and the
standard ``lap`` column when it knows the lap.

Error policy: sources degrade rather than raise. A game that pauses, restarts, goes to menus
or sends garbage yields nothing for a while and logs a warning; only a source that cannot
start at all raises ``SourceError``. Decoders raise ``DecodeError`` for bytes they cannot
read; the transport counts and logs it and carries on.

Exceptions::

    Exception
     ├── SourceError     a source cannot start (bad configuration, port in use, map missing)
     └── ValueError
          └── DecodeError  bytes a decoder cannot read (wrong length, unknown format)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

import msgspec

from pitwire.model.frames import FrameBatch
from pitwire.model.ids import StreamId
from pitwire.model.manifest import Manifest
from pitwire.model.records import StreamInfo


class SourceError(Exception):
    """A source cannot start (bad configuration, port in use, map missing)."""


class DecodeError(ValueError):
    """Bytes a decoder cannot read; the message says what was wrong with them."""


class SourceInfo(msgspec.Struct, kw_only=True):
    """What a source says of itself; ``started_ns``: a recording's start [ns since epoch]
    (0 for live sources: the session starts now)."""

    source: str
    track: str = ""
    streams: list[StreamInfo] = msgspec.field(default_factory=list)
    started_ns: int = 0


# -- decoder events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    """One frame of ``stream`` at ``t_ns`` [ns since epoch]: raw values by field name.

    Fields the manifest maps but ``values`` lacks become NaN (not yet known)."""

    stream: str
    t_ns: int
    values: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class StreamSeen:
    """A car appeared, or what is known of it (driver, car) changed."""

    stream: str
    driver: str = ""
    car: str = ""


@dataclass(frozen=True, slots=True)
class SessionStarted:
    """The game began a new session (``key`` identifies it, e.g. the F1 session UID)."""

    key: str
    track: str = ""


@dataclass(frozen=True, slots=True)
class Send:
    """Bytes the transport must send to the game (handshakes, subscriptions)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should hear about (logged as a warning, rate-limited)."""

    message: str


DecoderEvent = Sample | StreamSeen | SessionStarted | Send | Notice


class Decoder(Protocol):
    """A game format's parser: bytes in, events out (see the module docstring)."""

    name: ClassVar[str]
    """The source name (``f1``, ``forza``, ...)."""

    manifest: Manifest
    """Raw field → channel mapping for every stream of this source."""

    def feed(self, data: bytes, recv_ns: int, tag: str = "") -> list[DecoderEvent]:
        """Decode ``data`` received at ``recv_ns`` [ns since epoch] from ``tag``."""
        ...

    def greeting(self) -> list[bytes]:
        """Bytes to send when starting and after silence (handshakes); usually none."""
        ...


# -- sources --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamUpdate:
    """A stream to advertise now: new, or with new driver/car."""

    info: StreamInfo


@dataclass(frozen=True, slots=True)
class SessionChange:
    """The source began a new session: what follows belongs to a new pitwire session."""

    key: str
    track: str = ""


SourceEvent = StreamUpdate | SessionChange
SourceItem = tuple[StreamId, FrameBatch] | SourceEvent


class Source(Protocol):
    @property
    def info(self) -> SourceInfo: ...

    def __aiter__(self) -> AsyncIterator[SourceItem]: ...


# -- transports -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """Bytes a transport received at ``recv_ns`` [ns since epoch], from ``tag``."""

    data: bytes
    recv_ns: int
    tag: str = ""


class Transport(Protocol):
    """Where a decoder's bytes come from: a UDP socket, shared memory, a capture file."""

    describe: str
    """Where it listens or reads, for messages (``udp 0.0.0.0:20777``)."""

    hint: str
    """What to check when nothing arrives (which game setting sends here)."""

    async def open(self) -> None:
        """Start listening; raise SourceError when that is impossible."""
        ...

    async def receive(self, wait_s: float) -> list[Received]:
        """What arrived, waiting up to ``wait_s`` [s] for something; [] on silence.

        Raises EOFError when the transport has nothing more (a capture file ended)."""
        ...

    def send(self, data: bytes) -> None:
        """Send ``data`` to the game (no-op for read-only transports)."""
        ...

    async def close(self) -> None: ...
