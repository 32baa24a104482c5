"""Connection state machines, sans-I/O (spec/protocol.md §Handshake).

Feed what arrived (``receive_text``/``receive_bytes``), then drain ``events()`` and
``outgoing()``; nothing here touches a socket or a clock.

- ``IngestPeer``: the server's side of an agent connection.
- ``ViewerPeer``: the server's side of a viewer connection.
- ``AgentPeer``: the agent's side of its uplink: numbers frames, keeps what is not yet acked
  and re-sends it after a reconnect.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pitwire import __version__
from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol import PROTOCOL_VERSION, frames, messages
from pitwire.protocol.messages import (
    Ack,
    Advertise,
    ChannelDesc,
    Hello,
    ServerInfo,
    Status,
    StreamDesc,
    Subscribe,
    Unsubscribe,
)

CLOSE_TOO_SLOW = 4001
CLOSE_PROTOCOL_ERROR = 4002
CLOSE_UNSUPPORTED = 4003

SERVER_NAME = f"pitwire/{__version__}"
CAPABILITIES = ["subscribe", "maxRate", "status", "ack"]

Outgoing = str | bytes


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StreamsAdvertised:
    """An agent announced (more) streams: ``streams`` maps wire id → (name, channel set)."""

    session: str
    track: str
    source: str
    streams: dict[int, tuple[StreamDesc, ChannelSet]]
    started_ns: int = 0


@dataclass(frozen=True, slots=True)
class DataReceived:
    """An agent sent frames seq .. seq + n - 1 of one stream."""

    stream: str
    seq: int
    batch: FrameBatch


@dataclass(frozen=True, slots=True)
class SubscribeRequested:
    request: Subscribe


@dataclass(frozen=True, slots=True)
class UnsubscribeRequested:
    id: int


@dataclass(frozen=True, slots=True)
class Acked:
    """The server has durably stored every frame of ``stream`` up to ``seq``."""

    stream: str
    seq: int


@dataclass(frozen=True, slots=True)
class StatusReceived:
    status: Status


@dataclass(frozen=True, slots=True)
class CloseRequested:
    """The peer broke the protocol: close the connection with ``code``."""

    code: int
    reason: str


Event = (
    StreamsAdvertised
    | DataReceived
    | SubscribeRequested
    | UnsubscribeRequested
    | Acked
    | StatusReceived
    | CloseRequested
)


def channel_desc(cid: int, ch: Channel) -> ChannelDesc:
    finite = np.isfinite
    return ChannelDesc(
        id=cid,
        name=ch.name,
        unit=ch.unit,
        dtype=ch.dtype,
        resolution=ch.resolution,
        lo=ch.lo if finite(ch.lo) else None,
        hi=ch.hi if finite(ch.hi) else None,
    )


def channel_from_desc(d: ChannelDesc) -> Channel:
    return Channel(
        name=d.name,
        unit=d.unit,
        dtype=d.dtype,
        resolution=d.resolution,
        lo=-np.inf if d.lo is None else d.lo,
        hi=np.inf if d.hi is None else d.hi,
    )


class _Peer:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._out: list[Outgoing] = []
        self.closed = False

    def events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def send(self, msg: messages.Message) -> None:
        self._out.append(messages.encode(msg))

    def _fail(self, code: str, message: str, close: int | None = None) -> None:
        self.send(Status(level="error", code=code, message=message))
        if close is not None and not self.closed:
            self.closed = True
            self._events.append(CloseRequested(close, message[:120]))

    def _decode(self, text: str | bytes) -> messages.Message | None:
        try:
            return messages.decode(text)
        except messages.ProtocolError as exc:
            self._on_bad_message(str(exc))
            return None

    def _on_bad_message(self, message: str) -> None:
        self._fail("bad_message", message, CLOSE_PROTOCOL_ERROR)

    def _hello(self, msg: Hello, session: str | None) -> None:
        if msg.protocol != PROTOCOL_VERSION:
            self._fail(
                "unsupported",
                f"protocol {msg.protocol} is not supported; this server speaks {PROTOCOL_VERSION}",
                CLOSE_UNSUPPORTED,
            )
            return
        self.send(
            ServerInfo(
                protocol=PROTOCOL_VERSION,
                server=SERVER_NAME,
                capabilities=CAPABILITIES,
                session=session,
            )
        )


class IngestPeer(_Peer):
    """Server side of an agent connection: hello → advertise → data frames; sends acks."""

    def __init__(self) -> None:
        super().__init__()
        self.session: str | None = None
        self._streams: dict[int, tuple[StreamDesc, ChannelSet, list[tuple[int, Channel]]]] = {}
        self._ids_by_name: dict[str, int] = {}

    def receive_text(self, text: str | bytes) -> None:
        msg = self._decode(text)
        match msg:
            case None:
                return
            case Hello():
                self._hello(msg, None)
            case Advertise():
                self._advertise(msg)
            case Status():
                self._events.append(StatusReceived(msg))
            case _:
                self._on_bad_message(f"op {type(msg).__name__!r} is not valid from an agent")

    def _advertise(self, msg: Advertise) -> None:
        if self.session is not None and msg.session != self.session:
            self._on_bad_message(f"connection is for session {self.session!r}, not {msg.session!r}")
            return
        table = {d.id: d for d in msg.channels}
        added: dict[int, tuple[StreamDesc, ChannelSet]] = {}
        for sd in msg.streams:
            try:
                chans = [(cid, channel_from_desc(table[cid])) for cid in sd.channels]
                cset = ChannelSet(c for _, c in chans)
            except KeyError as exc:
                self._on_bad_message(f"stream {sd.stream!r} names unknown channel id {exc}")
                return
            except ValueError as exc:
                self._on_bad_message(f"stream {sd.stream!r}: {exc}")
                return
            self._streams[sd.id] = (sd, cset, chans)
            self._ids_by_name[sd.stream] = sd.id
            added[sd.id] = (sd, cset)
        self.session = msg.session
        self._events.append(
            StreamsAdvertised(msg.session, msg.track, msg.source, added, msg.started_ns)
        )

    def receive_bytes(self, data: bytes) -> None:
        try:
            df = frames.parse(data)
        except frames.FrameError as exc:
            self._fail("bad_frame", str(exc), CLOSE_PROTOCOL_ERROR)
            return
        entry = self._streams.get(df.group)
        if entry is None:
            self._fail(
                "unknown_stream",
                f"data for stream id {df.group} before its advertise",
                CLOSE_PROTOCOL_ERROR,
            )
            return
        sd, _cset, chans = entry
        columns = {}
        for cid, ch in chans:
            col = df.columns.get(cid)
            if col is None or col.dtype != np.dtype(ch.dtype):
                self._fail(
                    "bad_frame",
                    f"stream {sd.stream!r}: column for channel {ch.name!r} "
                    "missing or of the wrong dtype",
                    CLOSE_PROTOCOL_ERROR,
                )
                return
            columns[ch.name] = col
        self._events.append(DataReceived(sd.stream, df.seq, FrameBatch(df.t_ns(), columns)))

    def ack(self, stream: str, seq: int) -> None:
        sid = self._ids_by_name.get(stream)
        if sid is not None:
            self.send(Ack(stream=sid, seq=seq))


class ViewerPeer(_Peer):
    """Server side of a binary viewer connection: hello (optional), subscribe, unsubscribe."""

    def __init__(self, session: str) -> None:
        super().__init__()
        self.session = session
        self.subscriptions: set[int] = set()

    def connection_made(self) -> None:
        """The server speaks first: serverInfo (the adapter sends advertise next)."""
        self.send(
            ServerInfo(
                protocol=PROTOCOL_VERSION,
                server=SERVER_NAME,
                capabilities=CAPABILITIES,
                session=self.session,
            )
        )

    def receive_text(self, text: str | bytes) -> None:
        msg = self._decode(text)
        match msg:
            case None:
                return
            case Hello():
                if msg.protocol != PROTOCOL_VERSION:
                    self._fail(
                        "unsupported",
                        f"protocol {msg.protocol} is not supported; this server speaks "
                        f"{PROTOCOL_VERSION}",
                        CLOSE_UNSUPPORTED,
                    )
            case Subscribe():
                if msg.maxRate < 0:
                    self.send(
                        Status(
                            level="error",
                            code="bad_message",
                            message="maxRate must be >= 0",
                            subscription=msg.id,
                        )
                    )
                    return
                self.subscriptions.add(msg.id)
                self._events.append(SubscribeRequested(msg))
            case Unsubscribe():
                self.subscriptions.discard(msg.id)
                self._events.append(UnsubscribeRequested(msg.id))
            case _:
                self.send(
                    Status(
                        level="warning",
                        code="bad_message",
                        message=f"op {type(msg).__name__!r} is not valid from a viewer",
                    )
                )

    def _on_bad_message(self, message: str) -> None:
        # A viewer's mistake is answered, not punished: it may be a newer client.
        self.send(Status(level="warning", code="bad_message", message=message))

    def receive_bytes(self, data: bytes) -> None:
        self.send(
            Status(level="warning", code="bad_message", message="viewers send no binary frames")
        )


class AgentPeer(_Peer):
    """The agent's side: advertise, numbered data frames, acks, re-send after reconnect.

    Frames are kept until acked. Past ``max_unacked`` frames in total the oldest batches are
    dropped and counted in ``dropped`` (a gap the server will report).

    Resuming: the server answers an advertise with an ack of what it already stores of each
    stream (-1 for nothing). Until that first ack a stream's frames are numbered
    provisionally and held back; the ack shifts them to follow what is stored, so a restarted
    agent continues a stream instead of colliding with its earlier frames.
    """

    def __init__(
        self,
        *,
        session: str,
        streams: Sequence[tuple[str, ChannelSet, str, str]],
        track: str = "",
        source: str = "",
        max_unacked: int = 2_000_000,
        name: str = f"pitwire-agent/{__version__}",
        started_ns: int = 0,
    ) -> None:
        super().__init__()
        self.started_ns = started_ns
        self.session = session
        self.track = track
        self.source = source
        self.name = name
        self.max_unacked = max_unacked
        self.dropped = 0
        self._table: dict[str, int] = {}
        self._streams: dict[str, tuple[int, ChannelSet, str, str]] = {}
        self._next_seq: dict[str, int] = {}
        # per stream: (last seq, encoded frame, frame count), oldest first
        self._unacked: dict[str, deque[tuple[int, bytes, int]]] = {}
        self._unacked_frames = 0
        self._synced: set[str] = set()
        self.acked: dict[str, int] = {}
        self.connected = False
        for name_, cset, driver, car in streams:
            self.add_stream(name_, cset, driver=driver, car=car)

    def add_stream(
        self, stream: str, channels: ChannelSet, *, driver: str = "", car: str = ""
    ) -> None:
        known = self._streams.get(stream)
        if known is not None:
            # A driver or car learned later (a game's participant list) is re-advertised.
            driver, car = driver or known[2], car or known[3]
            if (driver, car) != known[2:]:
                self._streams[stream] = (known[0], known[1], driver, car)
                if self.connected:
                    self._out.append(self._advertise_text())
            return
        for ch in channels:
            self._table.setdefault(ch, len(self._table))
        self._streams[stream] = (len(self._streams) + 1, channels, driver, car)
        self._next_seq.setdefault(stream, 0)
        self._unacked.setdefault(stream, deque())
        if self.connected:
            self._out.append(self._advertise_text())

    def set_track(self, track: str) -> None:
        """The track became known (or changed): re-advertise it."""
        if track and track != self.track:
            self.track = track
            if self.connected and self._streams:
                self._out.append(self._advertise_text())

    def _advertise_text(self) -> str:
        chans: dict[int, ChannelDesc] = {}
        sds = []
        for stream, (sid, cset, driver, car) in self._streams.items():
            ids = [self._table[n] for n in cset]
            for n, c in cset.items():
                chans[self._table[n]] = channel_desc(self._table[n], c)
            sds.append(StreamDesc(id=sid, stream=stream, driver=driver, car=car, channels=ids))
        adv = Advertise(
            session=self.session,
            streams=sds,
            channels=list(chans.values()),
            track=self.track,
            source=self.source,
            started_ns=self.started_ns,
        )
        return messages.encode(adv)

    def connection_made(self) -> None:
        """A (re)connection: hello, advertise, then every frame not yet acked."""
        self.connected = True
        self.send(Hello(protocol=PROTOCOL_VERSION, role="agent", name=self.name))
        if self._streams:  # a game source may know no car yet: it advertises on the first
            self._out.append(self._advertise_text())
        for stream, pending in self._unacked.items():
            if stream in self._synced:
                self._out.extend(data for _, data, _ in pending)

    def connection_lost(self) -> None:
        self.connected = False
        self._out.clear()

    def next_seq(self, stream: str) -> int:
        return self._next_seq[stream]

    def send_batch(self, stream: str, batch: FrameBatch) -> int:
        """Number ``batch`` and queue it (sent now if connected, else on reconnect).

        Returns its first seq.
        """
        sid, cset, _, _ = self._streams[stream]
        seq = self._next_seq[stream]
        data = frames.serialize(
            group=sid,
            seq=seq,
            t_ns=batch.t_ns,
            columns=[(self._table[n], batch.columns[n]) for n in cset],
        )
        self._next_seq[stream] = seq + batch.n
        self._unacked[stream].append((seq + batch.n - 1, data, batch.n))
        self._unacked_frames += batch.n
        while self._unacked_frames > self.max_unacked:
            fullest = max(self._unacked.values(), key=len)
            if len(fullest) <= 1:
                break
            _, _, n = fullest.popleft()
            self._unacked_frames -= n
            self.dropped += n
        if self.connected and stream in self._synced:
            self._out.append(data)
        return seq

    @property
    def unacked_frames(self) -> int:
        return self._unacked_frames

    def receive_text(self, text: str | bytes) -> None:
        msg = self._decode(text)
        match msg:
            case None:
                return
            case ServerInfo():
                pass
            case Ack():
                self._ack(msg)
            case Status():
                self._events.append(StatusReceived(msg))
            case _:
                pass  # newer servers may send more; nothing for an agent to do

    def _on_bad_message(self, message: str) -> None:
        self._events.append(
            StatusReceived(Status(level="warning", code="bad_message", message=message))
        )

    def _resume(self, stream: str, stored: int) -> None:
        """First ack of a stream: renumber held-back frames to follow ``stored``, send them."""
        shift = stored + 1
        pending = self._unacked[stream]
        if shift:
            for i, (last, data, n) in enumerate(pending):
                patched = bytearray(data)
                frames.SEQ_FIELD.pack_into(
                    patched, 8, frames.SEQ_FIELD.unpack_from(data, 8)[0] + shift
                )
                pending[i] = (last + shift, bytes(patched), n)
            self._next_seq[stream] += shift
        self._synced.add(stream)
        self.acked[stream] = stored
        if self.connected:
            self._out.extend(data for _, data, _ in pending)
        self._events.append(Acked(stream, stored))

    def _ack(self, msg: Ack) -> None:
        stream = next((s for s, v in self._streams.items() if v[0] == msg.stream), None)
        if stream is None:
            return
        pending = self._unacked[stream]
        if stream not in self._synced:
            self._resume(stream, msg.seq)
            return
        self.acked[stream] = max(self.acked.get(stream, -1), msg.seq)
        while pending and pending[0][0] <= msg.seq:
            self._unacked_frames -= pending.popleft()[2]
        self._events.append(Acked(stream, msg.seq))
