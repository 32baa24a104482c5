"""JSON control messages (spec/protocol.md §Control messages).

Every message is a msgspec Struct tagged by its ``op`` field; ``decode`` returns one of them or
raises ``ProtocolError`` naming the problem, and ``encode`` is its inverse. Dispatch with
``match``.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from pitwire.model.channels import DType


class ProtocolError(ValueError):
    """A control message is malformed or not allowed in the current state."""


class _Msg(msgspec.Struct, tag_field="op", forbid_unknown_fields=False, omit_defaults=True):
    pass


class Hello(_Msg, tag="hello", kw_only=True):
    """First message of a client. role: ``agent`` (sends data) or ``viewer`` (receives)."""

    protocol: int
    role: Literal["agent", "viewer"]
    name: str = ""


class ServerInfo(_Msg, tag="serverInfo", kw_only=True):
    """First message of the server: its protocol version and what it can do."""

    protocol: int
    server: str
    capabilities: list[str]
    session: str | None = None


class ChannelDesc(msgspec.Struct, kw_only=True):
    """A channel as advertised: ``id`` is its index in the session's channel table."""

    id: int
    name: str
    unit: str = ""
    dtype: DType = "f4"
    resolution: float | None = None
    lo: float | None = None
    hi: float | None = None


class StreamDesc(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A stream (car) as advertised; ``channels`` lists channel ids it carries."""

    id: int
    stream: str
    driver: str = ""
    car: str = ""
    channels: list[int] = []


class Advertise(_Msg, tag="advertise", kw_only=True):
    """Streams and channels that exist (server → viewer) or will be sent (agent → server).

    Sent again whenever streams or channels are added; ids never change meaning within a
    connection.
    """

    session: str
    streams: list[StreamDesc]
    channels: list[ChannelDesc]
    track: str = ""
    source: str = ""
    started_ns: int = 0
    """When the session began [ns since epoch] (a recording's start; 0: now)."""


class Subscribe(_Msg, tag="subscribe", kw_only=True):
    """Viewer asks for data. ``streams``/``channels``: ids, ``None`` = all (including future
    streams). ``maxRate``: at most this many messages per second per stream [Hz], 0 = every
    batch as it arrives."""

    id: int
    streams: list[int] | None = None
    channels: list[int] | None = None
    maxRate: float = 0.0


class GroupDesc(msgspec.Struct, kw_only=True):
    """Binary frames with this ``group`` id carry ``channels`` of ``stream``."""

    group: int
    stream: int
    channels: list[int]


class Subscribed(_Msg, tag="subscribed", kw_only=True):
    """Server confirms a subscription and names the groups its frames will carry."""

    id: int
    groups: list[GroupDesc]


class Unsubscribe(_Msg, tag="unsubscribe", kw_only=True):
    id: int


class Status(_Msg, tag="status", kw_only=True):
    """Something the peer should know. Codes: ``lagging`` (frames were skipped for this
    viewer), ``recovered``, ``bad_message``, ``bad_frame``, ``unsupported``, ``stream_ended``."""

    level: Literal["info", "warning", "error"]
    code: str
    message: str
    subscription: int | None = None


class Ack(_Msg, tag="ack", kw_only=True):
    """Server → agent: every frame of ``stream`` with seq <= ``seq`` is durably stored."""

    stream: int
    seq: int


class Replay(_Msg, tag="replay", kw_only=True):
    """Viewer opens a replay of the session on this connection (one per connection; a new
    one replaces it). ``streams``/``channels`` as in ``subscribe``; ``fps``: STATE frames per
    second [Hz]; ``t``: where to start [ns since epoch], None = the session's start;
    ``delay``: delayed-live instead, following the live session this many seconds behind."""

    id: int
    streams: list[int] | None = None
    channels: list[int] | None = None
    fps: float = 25.0
    speed: float = 1.0
    t: int | None = None
    paused: bool = False
    delay: float | None = None


class Control(_Msg, tag="control", kw_only=True):
    """Viewer controls its replay. action: ``play``, ``pause``, ``seek`` (to ``t`` [ns since
    epoch], or to the start of ``lap`` of ``stream`` (id; None = the first car to start that
    lap)), ``speed`` (``speed``, 0.1 to 64), ``step`` (pause, then move ``by`` [s], default
    one tick), ``live`` (delayed-live: back to the set delay behind live)."""

    id: int
    action: Literal["play", "pause", "seek", "speed", "step", "live"]
    t: int | None = None
    lap: int | None = None
    stream: int | None = None
    speed: float | None = None
    by: float | None = None


class Clock(_Msg, tag="clock", kw_only=True):
    """Server → viewer: the replay clock. Sent when the replay opens, after every control,
    every second while playing, and when it stops at the end. ``t`` [ns since epoch] is the
    clock's instant when sent; ``start``/``end`` bound what can be played (``end`` moves
    with a live session); ``delay`` [s] is set for delayed-live."""

    id: int
    epoch: int
    t: int
    playing: bool
    speed: float
    start: int
    end: int
    fps: float
    delay: float | None = None
    ended: bool = False


Message = (
    Hello
    | ServerInfo
    | Advertise
    | Subscribe
    | Subscribed
    | Unsubscribe
    | Status
    | Ack
    | Replay
    | Control
    | Clock
)

_decoder: msgspec.json.Decoder[Message] = msgspec.json.Decoder(Message)
_encoder = msgspec.json.Encoder()


def decode(text: str | bytes) -> Message:
    """Parse one control message; raise ProtocolError with msgspec's explanation."""
    try:
        return _decoder.decode(text)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad control message: {exc}") from None


def encode(msg: Message) -> str:
    return _encoder.encode(msg).decode()
