"""Connection state machines, sans-I/O (spec/protocol.md §Handshake).

Feed what arrived (``receive_text``/``receive_bytes``), then drain ``events()`` and
``outgoing()``; nothing here touches a socket or a clock.

- ``IngestPeer``: the server's side of an agent connection.
- ``ViewerPeer``: the server's side of a viewer connection.
- ``AgentPeer``: the agent's side of its uplink: numbers frames, keeps what is not yet acked
  (in a ``FrameKeeper`` of ``pitwire.protocol.keeper``: ``MemoryKeeper``, or the agent's
  on-disk spool in ``pitwire.agent.spool``) and re-sends it after a reconnect; tells which
  frames its keeper dropped were lost (``FramesDropped``) and which the server stored all
  the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pitwire import __version__
from pitwire.model.channels import Channel, ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol import PROTOCOL_VERSION, frames, messages
from pitwire.protocol.keeper import FrameKeeper, KeptStream, MemoryKeeper
from pitwire.protocol.messages import (
    Ack,
    Advertise,
    ChannelDesc,
    Control,
    Hello,
    Replay,
    ServerInfo,
    Status,
    StreamDesc,
    Subscribe,
    Unsubscribe,
)

log = logging.getLogger(__name__)

CLOSE_TOO_SLOW = 4001
CLOSE_PROTOCOL_ERROR = 4002
CLOSE_UNSUPPORTED = 4003
CLOSE_STREAM_TAKEN = 4009
"""The server refuses an agent connection advertising a stream that another connection of
the same session is sending (after a ``status`` error with code ``stream_taken``)."""
STREAM_TAKEN = "stream_taken"

SERVER_NAME = f"pitwire/{__version__}"
CAPABILITIES = ["subscribe", "maxRate", "status", "ack", "replay", "delayedLive"]
MIN_SPEED, MAX_SPEED = 0.1, 64.0
MIN_FPS, MAX_FPS = 1.0, 60.0

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
class ReplayRequested:
    request: Replay


@dataclass(frozen=True, slots=True)
class ControlRequested:
    request: Control


@dataclass(frozen=True, slots=True)
class Acked:
    """The server has durably stored every frame of ``stream`` up to ``seq``."""

    stream: str
    seq: int


@dataclass(frozen=True, slots=True)
class StatusReceived:
    status: Status


@dataclass(frozen=True, slots=True)
class FramesDropped:
    """The agent's keeper dropped ``n`` frames of ``stream`` (seqs within first..last) that
    the server has not acknowledged, and as far as the agent can tell never received: a gap
    in the stored session. ``provisional``: the seqs are the agent's provisional numbering
    (the stream had no ack yet). ``reason`` says why (e.g. ``spool full (--spool-max)``)."""

    stream: str
    first: int
    last: int
    n: int
    reason: str
    provisional: bool = False


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
    | FramesDropped
    | CloseRequested
    | ReplayRequested
    | ControlRequested
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
        self.replay: int | None = None

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
            case Replay():
                problem = _replay_problem(msg)
                if problem:
                    self._refuse(msg.id, problem)
                    return
                self.replay = msg.id
                self._events.append(ReplayRequested(msg))
            case Control():
                problem = _control_problem(msg)
                if self.replay != msg.id:
                    problem = f"no replay {msg.id} is open on this connection"
                if problem:
                    self._refuse(msg.id, problem)
                    return
                self._events.append(ControlRequested(msg))
            case _:
                self.send(
                    Status(
                        level="warning",
                        code="bad_message",
                        message=f"op {type(msg).__name__!r} is not valid from a viewer",
                    )
                )

    def _refuse(self, sid: int, message: str) -> None:
        self.send(Status(level="error", code="bad_message", message=message, subscription=sid))

    def _on_bad_message(self, message: str) -> None:
        # A viewer's mistake is answered, not punished: it may be a newer client.
        self.send(Status(level="warning", code="bad_message", message=message))

    def receive_bytes(self, data: bytes) -> None:
        self.send(
            Status(level="warning", code="bad_message", message="viewers send no binary frames")
        )


def _replay_problem(msg: Replay) -> str:
    if not MIN_FPS <= msg.fps <= MAX_FPS:
        return f"fps must be between {MIN_FPS:g} and {MAX_FPS:g}, not {msg.fps:g}"
    if not MIN_SPEED <= msg.speed <= MAX_SPEED:
        return f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {msg.speed:g}"
    if msg.delay is not None and not msg.delay >= 0:
        return f"delay must be >= 0 s, not {msg.delay:g}"
    return ""


def _control_problem(msg: Control) -> str:
    match msg.action:
        case "seek" if (msg.t is None) == (msg.lap is None):
            return "seek needs either t [ns since epoch] or lap"
        case "speed":
            if msg.speed is None:
                return f"speed needs a speed, from {MIN_SPEED:g} to {MAX_SPEED:g}"
            if not MIN_SPEED <= msg.speed <= MAX_SPEED:
                return f"speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}, not {msg.speed:g}"
        case "step" if msg.by is not None and not abs(msg.by) < 1e6:
            return f"step: by must be seconds within ±1e6 (about 11 days), not {msg.by:g}"
    return ""


# --- the agent's side ---------------------------------------------------------------------


class AgentPeer(_Peer):
    """The agent's side: advertise, numbered data frames, acks, re-send after reconnect.

    Frames are kept until acked, by ``keeper`` (default: a ``MemoryKeeper`` of
    ``max_unacked`` frames, which drops the oldest batches past it and counts them in
    ``dropped``: a gap the server will report).

    Resuming: the server answers an advertise with an ack of what it already stores of each
    stream (-1 for nothing). Until that first ack a stream's frames are numbered
    provisionally and held back; the ack shifts them to follow what is stored, so a restarted
    agent continues a stream instead of colliding with its earlier frames. Streams a keeper
    restores (a spool of an earlier run) continue their own numbering.

    On every (re)connection a stream sends nothing before its ack on that connection (the
    resume point); then every kept frame not yet acked is re-sent before newer ones of the
    stream. An ack of seqs past any the agent knew of (the server holds frames of an earlier
    run its keeper lost: a failed write, a power cut) moves the frames numbered since, and
    the numbering, past it, so no seq is used twice.

    ``max_out_bytes`` bounds how many bytes of data frames wait in ``outgoing()``: past it
    frames wait in the keeper and are read back from it (``backlog`` is true until caught
    up; drain ``outgoing()`` again). None leaves it unbounded (it then grows with a slow
    link, and frames the keeper drops are sent all the same).

    Drops: the keeper may drop frames that were already sent and only wait for their ack
    (a small spool and a server that acks a second later). An ack does not prove that frames
    below it arrived (the server acks past seqs it never received: the gaps of frames an
    agent dropped), so the peer keeps the dropped seqs that were queued on the latest
    connection that acked their stream. Frames arrive in order on a connection, so an ack
    on that connection, or the resume ack of the next one (which speaks of what arrived
    before it), covering them means they were stored: they leave ``dropped``. Every other
    dropped frame is lost (a gap) and reported as a ``FramesDropped`` event; ``settle()``
    reports those still waiting when the agent stops.
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
        keeper: FrameKeeper | None = None,
        max_out_bytes: int | None = None,
    ) -> None:
        super().__init__()
        self.started_ns = started_ns
        self.session = session
        self.track = track
        self.source = source
        self.name = name
        self.max_unacked = max_unacked
        self.keeper: FrameKeeper = keeper if keeper is not None else MemoryKeeper(max_unacked)
        self.max_out_bytes = max_out_bytes
        self._table: dict[str, int] = {}
        self._streams: dict[str, tuple[int, ChannelSet, str, str]] = {}
        self._next_seq: dict[str, int] = {}
        self._next_sid = 1
        self._next_cid = 0
        self._synced: set[str] = set()
        # Per synced stream, the highest seq the server can hold a frame of the agent under:
        # queued for sending, acked, or numbered by the run that left a restored stream.
        self._known: dict[str, int] = {}
        self.acked: dict[str, int] = {}
        self.connected = False
        # Re-sending on a connection: the last seq queued per stream that got its ack on it,
        # and the keeper's frames still being read.
        self._sent: dict[str, int] = {}
        self._catching_up = False
        self._backlog: Iterator[tuple[str, int, bytes]] | None = None
        self._pass_found = False
        self._queued_bytes = 0
        # Per stream, the seqs queued on the latest connection that acked it (lo excluded,
        # hi included), and the dropped frames among them not acked yet: [first, last, n].
        self._window: dict[str, list[int]] = {}
        self._unsure: dict[str, list[list[int]]] = {}
        self._unsure_reason: dict[str, str] = {}
        self.recovered = 0
        """Frames the keeper dropped that the server then acknowledged (stored after all)."""
        for kept in self.keeper.restored():
            self._restore(kept)
        self._note_session()
        for name_, cset, driver, car in streams:
            self.add_stream(name_, cset, driver=driver, car=car)

    @property
    def dropped(self) -> int:
        """Frames the keeper dropped (its bound, a failed write) that the server has not
        acknowledged: lost, or (until ``settle()``) possibly still to be acknowledged."""
        return self.keeper.dropped - self.recovered

    @property
    def streams(self) -> list[str]:
        """The names of the streams advertised (or to be)."""
        return list(self._streams)

    def _take_drops(self) -> None:
        """Sort what the keeper dropped: frames queued on the latest connection that acked
        their stream may still be acknowledged; the others are lost."""
        for d in self.keeper.drops():
            window = self._window.get(d.stream) if d.stream in self._synced else None
            lo, hi, unsure = d.first, d.last, 0
            if window is not None:
                lo, hi = max(d.first, window[0] + 1), min(d.last, window[1])
                if lo <= hi:  # at least the frames not outside lo..hi (a range may have holes)
                    unsure = max(0, d.n - (lo - d.first) - (d.last - hi))
            if unsure:
                self._unsure_reason[d.stream] = d.reason
                entries = self._unsure.setdefault(d.stream, [])
                if entries and entries[-1][1] + 1 == lo:
                    entries[-1][1] = hi
                    entries[-1][2] += unsure
                else:
                    entries.append([lo, hi, unsure])
            if unsure < d.n:  # the seqs outside lo..hi if they are on one side
                first = d.first if not unsure or lo > d.first else hi + 1
                last = d.last if not unsure or hi < d.last else lo - 1
                if first > last:
                    first, last = d.first, d.last
                self._events.append(
                    FramesDropped(
                        d.stream,
                        first,
                        last,
                        d.n - unsure,
                        d.reason,
                        provisional=d.stream not in self._synced,
                    )
                )

    def _recover(self, stream: str, upto: int) -> None:
        """The server stores every frame of ``stream`` it received up to ``upto``: the
        dropped frames waiting for such an ack up to it were stored."""
        entries = self._unsure.get(stream)
        while entries and entries[0][0] <= upto:
            _, last, n = entries[0]
            if last <= upto:
                self.recovered += n
                entries.pop(0)
            else:  # at least the frames not above upto
                part = max(0, n - (last - upto))
                self.recovered += part
                entries[0] = [upto + 1, last, n - part]  # (last - upto of them, or n)
                break

    def _lose(self, stream: str) -> None:
        """The dropped frames of ``stream`` still waiting for an ack can no longer be shown
        stored: report them lost."""
        reason = self._unsure_reason.get(stream, "")
        for first, last, n in self._unsure.pop(stream, []):
            self._events.append(FramesDropped(stream, first, last, n, reason))

    def settle(self) -> None:
        """The agent stops: dropped frames still waiting for an ack are reported lost."""
        self._take_drops()
        for stream in list(self._unsure):
            self._lose(stream)

    def _restore(self, kept: KeptStream) -> None:
        for d in kept.channels:
            self._table.setdefault(d.name, d.id)
            self._next_cid = max(self._next_cid, d.id + 1)
        cset = ChannelSet(channel_from_desc(d) for d in kept.channels)
        self._streams[kept.stream] = (kept.id, cset, kept.driver, kept.car)
        self._next_sid = max(self._next_sid, kept.id + 1)
        self._next_seq[kept.stream] = kept.next_seq
        if kept.synced:
            # Past anything acked too (the frames may have been sent, but not kept).
            self._next_seq[kept.stream] = max(kept.next_seq, kept.acked + 1)
            self._known[kept.stream] = self._next_seq[kept.stream] - 1
            self._synced.add(kept.stream)
            self.acked[kept.stream] = kept.acked

    def _note_session(self) -> None:
        self.keeper.note_session(
            session=self.session, track=self.track, source=self.source, started_ns=self.started_ns
        )

    def _note_stream(self, stream: str) -> None:
        sid, cset, driver, car = self._streams[stream]
        self.keeper.note_stream(
            stream,
            id=sid,
            channels=[channel_desc(self._table[n], c) for n, c in cset.items()],
            driver=driver,
            car=car,
        )

    def add_stream(
        self, stream: str, channels: ChannelSet, *, driver: str = "", car: str = ""
    ) -> None:
        known = self._streams.get(stream)
        if known is not None:
            # A driver or car learned later (a game's participant list) is re-advertised.
            driver, car = driver or known[2], car or known[3]
            if (driver, car) != known[2:]:
                self._streams[stream] = (known[0], known[1], driver, car)
                self._note_stream(stream)
                if self.connected:
                    self._out.append(self._advertise_text())
            return
        for ch in channels:
            if ch not in self._table:
                self._table[ch] = self._next_cid
                self._next_cid += 1
        self._streams[stream] = (self._next_sid, channels, driver, car)
        self._next_sid += 1
        self._next_seq.setdefault(stream, 0)
        self._note_stream(stream)
        if self.connected:
            self._out.append(self._advertise_text())

    def set_track(self, track: str) -> None:
        """The track became known (or changed): re-advertise it."""
        if track and track != self.track:
            self.track = track
            self._note_session()
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
        """A (re)connection: hello, advertise; each stream's frames not yet acked follow
        its ack."""
        self.connected = True
        self.send(Hello(protocol=PROTOCOL_VERSION, role="agent", name=self.name))
        if self._streams:  # a game source may know no car yet: it advertises on the first
            self._out.append(self._advertise_text())
        self._sent = {}
        self._backlog = None
        self._catching_up = False

    def connection_lost(self) -> None:
        self.connected = False
        self._out.clear()
        self._sent = {}
        self._backlog = None
        self._catching_up = False
        self._queued_bytes = 0

    @property
    def backlog(self) -> bool:
        """Kept frames still wait to be re-sent: drain ``outgoing()`` again."""
        return self.connected and self._catching_up

    def outgoing(self) -> list[Outgoing]:
        if self.connected and self._catching_up:
            self._catch_up()
        self._queued_bytes = 0
        return super().outgoing()

    def _catch_up(self) -> None:
        """Queue kept frames not yet sent on this connection, in passes over the keeper,
        up to ``max_out_bytes``; stop catching up once a pass finds nothing newer."""
        budget = self.max_out_bytes
        while True:
            if self._backlog is None:
                after = dict(self._sent)
                if all(self._next_seq[s] - 1 <= seq for s, seq in after.items()):
                    self._catching_up = False
                    return
                self._backlog = iter(self.keeper.pending(after))
                self._pass_found = False
            for stream, last, data in self._backlog:
                if last <= self._sent.get(stream, last):
                    continue
                self._queue(stream, last, data)
                self._pass_found = True
                if budget is not None:
                    budget -= len(data)
                    if budget <= 0:
                        return
            self._backlog = None
            if not self._pass_found:  # what is missing is not kept (dropped, unwritable)
                self._catching_up = False
                return

    def _queue(self, stream: str, last: int, data: bytes) -> None:
        self._out.append(data)
        self._sent[stream] = last
        self._window[stream][1] = last
        if last > self._known[stream]:
            self._known[stream] = last

    def next_seq(self, stream: str) -> int:
        return self._next_seq[stream]

    def send_batch(self, stream: str, batch: FrameBatch) -> int:
        """Number ``batch`` and keep it; it is sent now if connected and the stream was acked
        on this connection, else once it is.

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
        last = seq + batch.n - 1
        self._next_seq[stream] = last + 1
        self.keeper.keep(stream, last, data, batch.n)
        if self.connected and stream in self._sent:
            limit = self.max_out_bytes
            if self._catching_up or (limit is not None and self._queued_bytes >= limit):
                self._catching_up = True  # read back from the keeper once drained
            else:
                self._queue(stream, last, data)
                self._queued_bytes += len(data)
        self._take_drops()
        return seq

    @property
    def unacked_frames(self) -> int:
        return self.keeper.frames

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
        self.keeper.rebase(stream, shift)
        self._next_seq[stream] += shift
        self._synced.add(stream)
        self._known[stream] = stored
        self.acked[stream] = stored
        if self.connected:
            self._ready(stream, stored)
        self._events.append(Acked(stream, stored))

    def _ready(self, stream: str, stored: int) -> None:
        """The stream's ack on this connection: send what it has not acked, then live.

        That ack speaks of what the server received before this connection: it settles the
        dropped frames queued on the connection that acked the stream last."""
        self._recover(stream, stored)
        self._lose(stream)
        self._window[stream] = [stored, stored]
        self._sent[stream] = stored
        self._catching_up = True
        self._backlog = None  # a pass in progress did not ask for this stream

    def _ack(self, msg: Ack) -> None:
        stream = next((s for s, v in self._streams.items() if v[0] == msg.stream), None)
        if stream is None:
            return
        if stream not in self._synced:
            self._resume(stream, msg.seq)
            return
        if msg.seq > self._known[stream]:
            self._move_past(stream, msg.seq)
        self.acked[stream] = max(self.acked.get(stream, -1), msg.seq)
        self.keeper.release(stream, msg.seq)
        if self.connected and stream not in self._sent:
            self._ready(stream, msg.seq)
        else:
            self._recover(stream, msg.seq)
        self._events.append(Acked(stream, msg.seq))

    def _move_past(self, stream: str, stored: int) -> None:
        """The server stores frames of ``stream`` under seqs up to ``stored``, past any the
        agent could have sent it: an earlier run's, lost from its keeper. The frames numbered
        past what the agent knew (never sent: the server would drop them as duplicates) and
        the numbering move past ``stored``."""
        known = self._known[stream]
        shift = stored - known
        numbered = self._next_seq[stream] - 1 - known
        if numbered > 0:
            self.keeper.move(stream, known + 1, shift)
            if self.connected and stream in self._sent:
                self._catching_up = True
                self._backlog = None
        self._next_seq[stream] += shift
        self._known[stream] = stored
        log.warning(
            "the server stores frames of stream %s up to seq %d, past the %d this agent knew "
            "of (an earlier run's, lost from its spool); %d frames numbered since move to "
            "follow them",
            stream,
            stored,
            known,
            max(numbered, 0),
        )
