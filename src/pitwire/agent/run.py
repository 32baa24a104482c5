"""Run a source through the agent core into an uplink.

The source runs in its own task and only ever queues; the uplink drains on its own, so a
slow or absent network never slows sampling.

A game source may announce cars as it learns of them (``StreamUpdate``) and start new
sessions (``SessionChange``: practice, then qualifying, then the race). Each session gets
its own pitwire session id and its own uplink; the previous uplink keeps running in the
background until everything it sent is acknowledged (or ``drain_timeout`` passes).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pitwire.agent.core import AgentCore
from pitwire.agent.uplink import HttpUplink, WsUplink
from pitwire.model.channels import ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol.peer import AgentPeer
from pitwire.sources.base import SessionChange, Source, StreamUpdate

log = logging.getLogger("pitwire.agent")


@dataclass(slots=True)
class AgentReport:
    frames_in: int = 0
    frames_sent: int = 0
    duplicates: int = 0
    unacked: int = 0
    dropped: int = 0
    sessions: list[str] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class _Leg:
    """One pitwire session's uplink."""

    session: str
    peer: AgentPeer
    uplink: WsUplink | HttpUplink
    task: asyncio.Task[None] | None = None
    frames_sent: int = 0

    @property
    def unacked(self) -> int:
        if isinstance(self.uplink, WsUplink):
            return self.peer.unacked_frames
        return max(0, self.frames_sent - self.uplink.sent_frames - self.uplink.dropped)

    @property
    def dropped(self) -> int:
        return self.peer.dropped if isinstance(self.uplink, WsUplink) else self.uplink.dropped


def numbered_sessions(first: str) -> Callable[[int], str]:
    """Session ids ``first``, ``first-2``, ``first-3``, ... for a source's 1st, 2nd, 3rd
    session (``first`` shortened so that every id stays within 64 characters)."""
    return lambda n: first if n == 1 else f"{first[: 64 - len(str(n)) - 1]}-{n}"


class Agent:
    """Streams ``source`` to ``server``; ``session_ids(n)`` names the n-th session (n ≥ 1)."""

    def __init__(
        self,
        source: Source,
        *,
        server: str,
        session: str | Callable[[int], str],
        transport: Literal["ws", "http"] = "ws",
        batch_ms: float = 0.0,
        max_unacked: int = 2_000_000,
    ) -> None:
        self.source = source
        self.server = server
        self.transport = transport
        self.batch_ms = batch_ms
        self.max_unacked = max_unacked
        self.session_ids = numbered_sessions(session) if isinstance(session, str) else session
        self.core = AgentCore(batch_ns=int(batch_ms * 1e6))
        self._sessions = 0
        self._game_session: str | None = None
        self._earlier_in = self._earlier_duplicates = 0  # counts of replaced cores
        self._legs: list[_Leg] = []
        self._draining: set[asyncio.Task[None]] = set()
        self._stop = asyncio.Event()
        info = source.info
        self.leg = self._new_leg(info.track, info.source)
        for s in info.streams:
            self.leg.peer.add_stream(
                s.stream_id, ChannelSet(s.channels), driver=s.driver, car=s.car
            )

    @property
    def session(self) -> str:
        return self.leg.session

    @property
    def peer(self) -> AgentPeer:
        return self.leg.peer

    @property
    def uplink(self) -> WsUplink | HttpUplink:
        return self.leg.uplink

    @property
    def frames_sent(self) -> int:
        return sum(leg.frames_sent for leg in self._legs)

    def report(self) -> AgentReport:
        return AgentReport(
            frames_in=self._earlier_in + self.core.frames_in,
            frames_sent=self.frames_sent,
            duplicates=self._earlier_duplicates + self.core.duplicates,
            unacked=sum(leg.unacked for leg in self._legs),
            dropped=sum(leg.dropped for leg in self._legs),
            sessions=[leg.session for leg in self._legs],
        )

    def _new_leg(self, track: str, source: str) -> _Leg:
        self._sessions += 1
        session = self.session_ids(self._sessions)
        peer = AgentPeer(
            session=session,
            streams=[],
            track=track,
            source=source,
            max_unacked=self.max_unacked,
            started_ns=self.source.info.started_ns if self._sessions == 1 else 0,
        )
        uplink: WsUplink | HttpUplink = (
            WsUplink(self.server, peer)
            if self.transport == "ws"
            else HttpUplink(self.server, session)
        )
        leg = _Leg(session, peer, uplink)
        self._legs.append(leg)
        return leg

    def stop(self) -> None:
        """Stop reading the source; ``run`` then sends what it has, waits for the acks (up to
        its ``drain_timeout``) and returns. (Cancel ``run`` to stop at once.)"""
        self._stop.set()

    async def run(self, *, drain_timeout: float = 5.0) -> AgentReport:
        """Run until the source ends or ``stop()`` (then wait up to ``drain_timeout`` for
        acks) or until cancelled."""
        self.leg.task = asyncio.create_task(self.leg.uplink.run())
        pump = asyncio.create_task(self._pump(drain_timeout))
        stopping = asyncio.create_task(self._stop.wait())
        try:
            await asyncio.wait({pump, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():
                pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump  # re-raises an unrecoverable uplink or source error
            for s, b in self.core.flush():
                self._submit(s, b)
            await self._drain(self._legs, drain_timeout)  # earlier sessions' frames too
            return self.report()
        finally:
            for task in [
                pump,
                stopping,
                *self._draining,
                *(leg.task for leg in self._legs if leg.task),
            ]:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _pump(self, drain_timeout: float) -> None:
        """Read the source into the uplinks until it ends."""
        items = aiter(self.source)
        try:
            async for item in items:
                match item:
                    case StreamUpdate(info=info):
                        if not self.leg.frames_sent:  # auto knows its source only now
                            self.leg.peer.source = self.source.info.source
                        self.leg.peer.add_stream(
                            info.stream_id,
                            ChannelSet(info.channels),
                            driver=info.driver,
                            car=info.car,
                        )
                    case SessionChange():
                        self._session_change(item, drain_timeout)
                    case (stream, batch):
                        for s, b in self.core.feed(stream, batch, time.monotonic_ns()):
                            self._submit(s, b)
                if self.core.batch_ns:
                    for s, b in self.core.flush(time.monotonic_ns()):
                        self._submit(s, b)
                if self.leg.task is not None and self.leg.task.done():
                    await self.leg.task  # an unrecoverable uplink error (bad URL) ends the agent
        finally:
            close = getattr(items, "aclose", None)
            if close is not None:  # the source's own cleanup (sockets, captures) runs now
                await close()

    def _session_change(self, change: SessionChange, drain_timeout: float) -> None:
        same = change.key == self._game_session
        self._game_session = change.key
        if same or self.leg.frames_sent == 0:
            # The same game session (its track became known), or nothing sent yet.
            self.leg.peer.set_track(change.track)
            return
        for s, b in self.core.flush():
            self._submit(s, b)
        old = self.leg
        self._earlier_in += self.core.frames_in
        self._earlier_duplicates += self.core.duplicates
        self.core = AgentCore(batch_ns=self.core.batch_ns)
        self.leg = self._new_leg(change.track, self.source.info.source)
        self.leg.task = asyncio.create_task(self.leg.uplink.run())
        log.info("new game session %s: streaming as session %s", change.key, self.leg.session)

        async def finish() -> None:
            await self._drain([old], drain_timeout * 6)
            if old.task is not None:
                old.task.cancel()

        task = asyncio.create_task(finish())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    def _submit(self, stream: str, batch: FrameBatch) -> None:
        self.leg.uplink.submit(stream, batch)
        self.leg.frames_sent += batch.n

    async def _drain(self, legs: list[_Leg], seconds: float) -> None:
        """Wait up to ``seconds`` until the server has acknowledged every frame of ``legs``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(leg.unacked == 0 for leg in legs):
                return
            await asyncio.sleep(0.05)
        for leg in legs:
            if leg.unacked:
                log.warning(
                    "session %s: %d frames not acknowledged by the server",
                    leg.session,
                    leg.unacked,
                )
