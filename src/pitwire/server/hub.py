"""The hub: live fan-out of frames to viewers (spec/protocol.md §Delivery to viewers).

Each stream's new frames are encoded once per subscriber *group* (one stream, one channel
selection, one rate) and the same bytes are offered to every viewer in the group. Offering
never blocks: a viewer keeps one pending slot per subscription and stream (newest wins), and
its own writer task drains it (server/live.py). Nothing here awaits, so no viewer can delay
another or the ingest path.
"""

from __future__ import annotations

import functools
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import msgspec

from pitwire.model.channels import ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol import frames, messages
from pitwire.protocol.compat import compat_message
from pitwire.protocol.messages import Advertise, GroupDesc, StreamDesc, Subscribe, Subscribed
from pitwire.protocol.peer import channel_desc

RECENT_NS = 3_000_000_000
"""How far back each live stream's latest frames are kept for delayed-live viewers [ns]."""

# (subscription id, group id): one pending slot of a viewer
Slot = tuple[int, int]


class Payload:
    """One encoded message shared by every viewer it is offered to; ``framed`` caches its
    transport framing (computed once by the first writer that needs it)."""

    __slots__ = ("binary", "data", "framed")

    def __init__(self, data: bytes | str) -> None:
        self.binary = isinstance(data, bytes)
        self.data = data
        self.framed: bytes | None = None


class Viewer(Protocol):
    """What the hub needs of a connected viewer (implemented by the WebSocket adapter)."""

    def offer(self, slot: Slot, payload: Payload, recv_ns: int) -> None:
        """Put ``payload`` in ``slot``, replacing what is still pending there (never blocks)."""

    def control(self, text: str) -> None:
        """Queue a control message; these are never dropped."""


@dataclass(eq=False, slots=True)
class _Group:
    gid: int
    stream: str
    names: list[str]
    ids: list[int]
    rate: float
    members: dict[Viewer, set[int]] = field(default_factory=dict)
    pending: list[tuple[int, FrameBatch]] = field(default_factory=list)
    pending_recv_ns: int = 0
    last_flush: float = -1e18
    timer: object | None = None


@dataclass(eq=False, slots=True)
class _Sub:
    viewer: Viewer
    sid: int
    streams: list[int] | None
    channels: list[int] | None
    rate: float
    groups: list[_Group] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Stream:
    sid: int
    name: str
    channels: ChannelSet
    driver: str
    car: str


class LiveSession:
    """Hub state of one session: its channel table, streams, groups and viewers."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self.track = ""
        self.source = ""
        self.channel_ids: dict[str, int] = {}
        self.channel_descs: list[messages.ChannelDesc] = []
        self.streams: dict[str, _Stream] = {}
        self.groups: dict[tuple[str, tuple[int, ...], float], _Group] = {}
        self.subs: list[_Sub] = []
        self.viewers: set[Viewer] = set()
        self.json_viewers: dict[Viewer, str | None] = {}
        self.last_data_ns = 0
        # Each stream's frames of the last RECENT_NS (a delayed-live tail starts from them:
        # the store may not have them yet) and callables fed every batch (the tails).
        self.recent: dict[str, deque[FrameBatch]] = {}
        self.taps: list[Callable[[str, FrameBatch], None]] = []

    def advertise(self, streams: Iterable[_Stream] | None = None) -> Advertise:
        chosen = self.streams.values() if streams is None else streams
        return Advertise(
            session=self.session_id,
            track=self.track,
            source=self.source,
            channels=self.channel_descs,
            streams=[
                StreamDesc(
                    id=s.sid,
                    stream=s.name,
                    driver=s.driver,
                    car=s.car,
                    channels=[self.channel_ids[n] for n in s.channels],
                )
                for s in chosen
            ],
        )


class Hub:
    """Routes published batches to viewer groups. ``call_later(delay, fn)`` schedules the
    flush of rate-limited groups (the event loop's, in the server)."""

    def __init__(
        self,
        call_later: Callable[[float, Callable[[], None]], object],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._call_later = call_later
        self._clock = clock
        self.sessions: dict[str, LiveSession] = {}
        self._gids = itertools.count(1)
        self._json = msgspec.json.Encoder()
        self.published_frames = 0
        self.offers = 0

    def new_group_id(self) -> int:
        """A group id no subscription of any viewer uses (replays take theirs here)."""
        return next(self._gids)

    def session(self, session_id: str) -> LiveSession:
        live = self.sessions.get(session_id)
        if live is None:
            live = self.sessions[session_id] = LiveSession(session_id)
        return live

    # --- streams ----------------------------------------------------------------------------

    def add_stream(
        self,
        session_id: str,
        name: str,
        channels: ChannelSet,
        *,
        driver: str = "",
        car: str = "",
        track: str = "",
        source: str = "",
    ) -> None:
        """Register (or extend) a stream; viewers get the advertise and new groups."""
        live = self.session(session_id)
        live.track = track or live.track
        live.source = source or live.source
        for n, ch in channels.items():
            if n not in live.channel_ids:
                cid = len(live.channel_descs)
                live.channel_ids[n] = cid
                live.channel_descs.append(channel_desc(cid, ch))
        old = live.streams.get(name)
        if old is not None and list(old.channels) == list(channels):
            if (driver, car) != (old.driver, old.car) and (driver or car):
                old.driver, old.car = driver or old.driver, car or old.car
                text = messages.encode(live.advertise([old]))
                for viewer in live.viewers:
                    viewer.control(text)
            return
        if old is not None:
            channels = old.channels.merged(c for n, c in channels.items() if n not in old.channels)
        sid = old.sid if old else len(live.streams) + 1
        stream = live.streams[name] = _Stream(sid, name, channels, driver, car)
        text = messages.encode(live.advertise([stream]))
        for viewer in live.viewers:
            viewer.control(text)
        for sub in live.subs:
            if sub.streams is None or sid in sub.streams:
                stale = [g for g in sub.groups if g.stream == name]
                groups = self._join(live, sub, [stream])
                for group in stale:  # a stream that gained channels: leave its old groups
                    sub.groups.remove(group)
                    if group is not sub.groups[-1]:
                        self._leave(live, sub, group)
                if groups:
                    sub.viewer.control(messages.encode(Subscribed(id=sub.sid, groups=groups)))

    # --- viewers ----------------------------------------------------------------------------

    def attach(self, session_id: str, viewer: Viewer) -> None:
        """A binary viewer joined: it gets the session's advertise."""
        live = self.session(session_id)
        live.viewers.add(viewer)
        viewer.control(messages.encode(live.advertise()))

    def attach_json(self, session_id: str, viewer: Viewer, stream: str | None) -> None:
        """A compatibility JSON viewer joined (``stream`` None = every stream)."""
        self.session(session_id).json_viewers[viewer] = stream

    def detach(self, session_id: str, viewer: Viewer) -> None:
        live = self.sessions.get(session_id)
        if live is None:
            return
        live.viewers.discard(viewer)
        live.json_viewers.pop(viewer, None)
        for sub in [s for s in live.subs if s.viewer is viewer]:
            self._drop(live, sub)

    def subscribe(self, session_id: str, viewer: Viewer, req: Subscribe) -> Subscribed:
        live = self.session(session_id)
        for old in [s for s in live.subs if s.viewer is viewer and s.sid == req.id]:
            self._drop(live, old)
        sub = _Sub(viewer, req.id, req.streams, req.channels, req.maxRate)
        live.subs.append(sub)
        chosen = [s for s in live.streams.values() if req.streams is None or s.sid in req.streams]
        return Subscribed(id=req.id, groups=self._join(live, sub, chosen))

    def unsubscribe(self, session_id: str, viewer: Viewer, sid: int) -> None:
        live = self.sessions.get(session_id)
        if live is not None:
            for sub in [s for s in live.subs if s.viewer is viewer and s.sid == sid]:
                self._drop(live, sub)

    def _join(self, live: LiveSession, sub: _Sub, streams: Iterable[_Stream]) -> list[GroupDesc]:
        out = []
        for st in streams:
            names = [
                n
                for n in st.channels
                if sub.channels is None or live.channel_ids[n] in sub.channels
            ]
            ids = [live.channel_ids[n] for n in names]
            key = (st.name, tuple(ids), sub.rate)
            group = live.groups.get(key)
            if group is None:
                group = live.groups[key] = _Group(next(self._gids), st.name, names, ids, sub.rate)
            group.members.setdefault(sub.viewer, set()).add(sub.sid)
            sub.groups.append(group)
            out.append(GroupDesc(group=group.gid, stream=st.sid, channels=ids))
        return out

    def _drop(self, live: LiveSession, sub: _Sub) -> None:
        live.subs.remove(sub)
        for group in sub.groups:
            self._leave(live, sub, group)

    @staticmethod
    def _leave(live: LiveSession, sub: _Sub, group: _Group) -> None:
        sids = group.members.get(sub.viewer)
        if sids is not None:
            sids.discard(sub.sid)
            if not sids:
                del group.members[sub.viewer]
        if not group.members:
            live.groups.pop((group.stream, tuple(group.ids), group.rate), None)

    # --- data -------------------------------------------------------------------------------

    def publish(
        self, session_id: str, stream: str, seq: int, batch: FrameBatch, recv_ns: int
    ) -> None:
        """Fan ``batch`` (frames seq .. seq+n-1 of ``stream``) out to every viewer."""
        live = self.sessions.get(session_id)
        if live is None or batch.n == 0:
            return
        live.last_data_ns = time.time_ns()
        self.published_frames += batch.n
        recent = live.recent.get(stream)
        if recent is None:
            recent = live.recent[stream] = deque()
        recent.append(batch)
        while len(recent) > 1 and recent[0].t1_ns < batch.t1_ns - RECENT_NS:
            recent.popleft()
        for tap in live.taps:
            tap(stream, batch)
        for group in live.groups.values():
            if group.stream != stream or not group.members:
                continue
            if group.rate <= 0:
                self._send(group, seq, batch, recv_ns)
                continue
            if not group.pending:
                group.pending_recv_ns = recv_ns
            group.pending.append((seq, batch))
            wait = group.last_flush + 1.0 / group.rate - self._clock()
            if wait <= 0:
                self._flush(group)
            elif group.timer is None:
                group.timer = self._call_later(wait, functools.partial(self._flush, group))
        if live.json_viewers:
            self._publish_json(live, stream, seq, batch, recv_ns)

    def _flush(self, group: _Group) -> None:
        group.timer = None
        if not group.pending or not group.members:
            group.pending.clear()
            return
        seq = group.pending[0][0]
        batch = FrameBatch.concat([b for _, b in group.pending])
        group.pending.clear()
        group.last_flush = self._clock()
        self._send(group, seq, batch, group.pending_recv_ns)

    def _send(self, group: _Group, seq: int, batch: FrameBatch, recv_ns: int) -> None:
        data = Payload(
            frames.serialize(
                group=group.gid,
                seq=seq,
                t_ns=batch.t_ns,
                columns=[
                    (cid, batch.columns[n]) for n, cid in zip(group.names, group.ids, strict=True)
                ],
            )
        )
        for viewer, sids in group.members.items():
            for sid in sids:
                viewer.offer((sid, group.gid), data, recv_ns)
                self.offers += 1

    def _publish_json(
        self, live: LiveSession, stream: str, seq: int, batch: FrameBatch, recv_ns: int
    ) -> None:
        text = Payload(self._json.encode(compat_message(live.session_id, seq, batch)).decode())
        slot = (-1, live.streams[stream].sid if stream in live.streams else 0)
        for viewer, only in live.json_viewers.items():
            if only is None or only == stream:
                viewer.offer(slot, text, recv_ns)
                self.offers += 1
