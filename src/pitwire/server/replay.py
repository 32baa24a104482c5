"""Server-authoritative replay and delayed-live (spec/protocol.md §Replay): opening players.

A viewer's ``replay`` gets a ``Player`` (server/player.py): one ``ReplayClock`` for every
stream it watches, a ``Timeline`` to read their state from, and a ``StateEncoder``.
``Replays`` (one per server) opens them and holds what their viewers share: stored sessions'
``StoredTimeline`` objects and the server-wide ``BlockCache`` of decoded blocks; for
delayed-live, a ``LiveTail`` per live session fed by the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING

from pitwire.model.ids import SessionId
from pitwire.protocol import messages
from pitwire.protocol.messages import Replay, Subscribed
from pitwire.server.clock import ReplayClock
from pitwire.server.hub import Hub, LiveSession
from pitwire.server.player import Player, ReplayError, ReplayFigures
from pitwire.server.timeline import SECOND, BlockCache, LiveTail, StoredTimeline, Timeline
from pitwire.store.base import SessionSummary, Store, StoreError, UnknownSession

if TYPE_CHECKING:
    from pitwire.server.live import WsViewer

log = logging.getLogger("pitwire.replay")

LIVE_GRACE_NS = 10 * SECOND  # a session with data this recent is live
KEPT_TIMELINES = 16  # stored sessions whose timelines are kept between viewers


class Replays:
    """Opens replays and delayed-live views; holds what their viewers share."""

    def __init__(
        self,
        *,
        hub: Hub,
        store: Store,
        cache_bytes: int = 256 << 20,
        max_delay: float = 600.0,
    ) -> None:
        self.hub = hub
        self.store = store
        self.cache = BlockCache(cache_bytes)
        self.max_delay = max_delay
        self.figures = ReplayFigures()
        self._stored: OrderedDict[str, StoredTimeline] = OrderedDict()
        self._tails: dict[str, LiveTail] = {}

    async def open(self, session_id: str, viewer: WsViewer, request: Replay) -> Player:
        """Start a player for ``request``; raises ReplayError."""
        live = self.hub.session(session_id)
        wall = time.time_ns()
        summary: SessionSummary | None
        try:
            summary = await self.store.get_session(SessionId(session_id))
        except UnknownSession:
            summary = None
        except StoreError as exc:
            raise ReplayError(f"the store cannot be read: {exc}") from None
        if summary is None and not live.streams:
            raise ReplayError(f"no session {session_id!r} is stored or live")
        if request.channels is not None:
            known = len(live.channel_descs)
            unknown = [c for c in request.channels if not 0 <= c < known]
            if not request.channels or unknown:
                raise ReplayError(
                    f"unknown channel id {unknown[0]}: the session's channels are 0-{known - 1} "
                    "(see advertise); leave channels out for all"
                    if unknown
                    else "channels is empty: leave it out for all channels"
                )
        laps = list(summary.laps) if summary is not None else []
        timeline: Timeline
        if request.delay is not None:
            if request.delay > self.max_delay:
                raise ReplayError(
                    f"delay {request.delay:g} s is more than this server keeps "
                    f"({self.max_delay:g} s; see pitwire serve --max-delay)"
                )
            if not live.streams or wall - live.last_data_ns > LIVE_GRACE_NS:
                raise ReplayError(
                    f"session {session_id!r} is not live; open a replay without delay"
                )
            tail = await self._tail(session_id, live, wall)
            timeline = tail
            delay_ns = round(request.delay * SECOND)
            # From the earliest frame kept, or from the delay back when the session is younger
            # than the delay (its cars have no value there yet).
            start = min(tail.start_ns or wall, wall - delay_ns)
            clock = ReplayClock(
                start_ns=start,
                end_ns=None,
                t_ns=wall - delay_ns if request.t is None else request.t,
                wall_ns=wall,
                speed=request.speed,
                playing=not request.paused,
                delay_ns=delay_ns,
            )
        else:
            if summary is None:
                raise ReplayError(f"no session {session_id!r} is stored")
            try:
                stored = self._stored_timeline(summary)
            except ValueError as exc:
                raise ReplayError(str(exc)) from None
            timeline = stored
            clock = ReplayClock(
                start_ns=stored.start_ns,
                end_ns=stored.end_ns(),
                t_ns=stored.start_ns if request.t is None else request.t,
                wall_ns=wall,
                speed=request.speed,
                playing=not request.paused,
            )
        player = Player(
            viewer=viewer,
            request=request,
            live=live,
            timeline=timeline,
            clock=clock,
            laps=laps,
            hub=self.hub,
            figures=self.figures,
        )
        groups = player.add_tracks(clock.at(wall) if request.streams is None else None)
        if not groups and request.delay is None:
            self.release(player)
            raise ReplayError("nothing to replay: no selected stream carries the selected channels")
        viewer.control(messages.encode(Subscribed(id=request.id, groups=groups)))
        viewer.control(player.clock_message())
        self.figures.players += 1
        player.task = asyncio.get_running_loop().create_task(player.run())
        if isinstance(timeline, StoredTimeline):
            timeline.warm()
        return player

    def stats(self) -> dict[str, int]:
        """Figures for ``GET /api/stats``: players opened, STATE frames, keyframes and bytes
        sent, ticks conflated for slow viewers, reads the clock had to wait for, and the
        shared cache of decoded blocks."""
        f, c = self.figures, self.cache
        return {
            "players": f.players,
            "frames": f.frames,
            "keyframes": f.keyframes,
            "bytes": f.bytes,
            "conflated": f.conflated,
            "stalls": f.stalls,
            "cache_bytes": c.bytes,
            "cache_budget": c.budget,
            "cache_hits": c.hits,
            "cache_misses": c.misses,
            "cache_evictions": c.evictions,
            "delayed_sessions": len(self._tails),
        }

    def _stored_timeline(self, summary: SessionSummary) -> StoredTimeline:
        """The session's timeline, shared with its other viewers (and kept for the next
        ones: its blocks stay in the cache); a session that grew since (one still being
        recorded) gets a new one that shares the whole blocks already read."""
        sid = summary.info.session_id
        timeline = self._stored.pop(sid, None)
        end = max((s.t1_ns for s in summary.streams), default=0)
        if timeline is None or timeline.end_ns() < end:
            if timeline is not None:
                timeline.close()
            timeline = StoredTimeline(
                self.store,
                summary,
                self.cache,
                block_ns=None if timeline is None else timeline.block_ns,
            )
        self._stored[sid] = timeline
        while len(self._stored) > KEPT_TIMELINES:
            _, oldest = self._stored.popitem(last=False)
            oldest.close()
        return timeline

    async def _tail(self, session_id: str, live: LiveSession, wall: int) -> LiveTail:
        tail = self._tails.get(session_id)
        if tail is None:
            tail = self._tails[session_id] = LiveTail(
                session_id, keep_ns=round(self.max_delay * SECOND) + 2 * SECOND
            )
            live.taps.append(tail.feed)
            try:
                await tail.prime_from(self.store, live.recent, wall)
            except BaseException:
                self._tails.pop(session_id, None)
                with contextlib.suppress(ValueError):
                    live.taps.remove(tail.feed)
                tail.primed.set()
                raise
            tail.primed.set()
        else:
            await tail.primed.wait()  # a viewer opening while the first one primes it
            if self._tails.get(session_id) is not tail:
                return await self._tail(session_id, live, wall)
        tail.users += 1
        return tail

    def release(self, player: Player) -> None:
        """The viewer left or opened another replay."""
        if player.task is not None:
            player.task.cancel()
        player.viewer.retract(player.slot)  # its unwritten frame belongs to no replay now
        timeline = player.timeline
        if isinstance(timeline, LiveTail):
            timeline.users -= 1
            if timeline.users <= 0:
                self._tails.pop(timeline.session_id, None)
                with contextlib.suppress(ValueError):
                    player.live.taps.remove(timeline.feed)
