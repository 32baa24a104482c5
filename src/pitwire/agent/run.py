"""Run a source through the agent core into an uplink.

The source runs in its own task and only ever queues; the uplink drains on its own, so a
slow or absent network never slows sampling.

A game source may announce cars as it learns of them (``StreamUpdate``) and start new
sessions (``SessionChange``: practice, then qualifying, then the race). Each session gets
its own pitwire session id and its own uplink; the previous uplink keeps running in the
background until everything it holds is acknowledged, however long that takes (what it holds
is bounded by its keeper), or until the agent ends (which drains every session's uplink).

With a ``spool_dir`` (transport ws) the frames not yet acknowledged are kept on disk in
``<spool_dir>/<session id>/`` (``pitwire.agent.spool``) instead of memory: they survive the
agent being stopped or killed. A session's spool is reopened when an agent streams that
session again, and the spools other runs left for the same server are sent first thing,
next to the source's frames (``AgentReport.resumed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pitwire.agent.core import AgentCore
from pitwire.agent.spool import DEFAULT_MAX_BYTES, Spool, SpoolError, SpoolLocked, session_dirs
from pitwire.agent.uplink import HttpUplink, WsUplink, check_server, ingest_url
from pitwire.model.channels import ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol.peer import AgentPeer
from pitwire.sources.base import SessionChange, Source, StreamUpdate
from pitwire.store import safe_url

log = logging.getLogger("pitwire.agent")

OUT_BYTES = 1 << 20
"""At most this much data waits in the peer to be written to the socket [bytes]; the rest
waits in the keeper (memory or spool) and is read back, a piece of this size at a time,
when the socket takes it. A spool's piece is read on the event loop: keep it small."""


@dataclass(slots=True)
class AgentReport:
    """What the agent did. ``frames_sent`` counts the source's frames; ``resent`` the frames
    found unacknowledged in spools of earlier runs; ``unacked`` what is still not
    acknowledged (kept in ``spool`` if there is one); ``dropped`` frames lost to the bound of
    memory (``max_unacked``) or spool (``spool_max``): dropped before the server acknowledged
    them (frames dropped that the server acknowledged later are not counted: they were
    stored); ``resumed`` sessions whose spools of earlier runs were sent."""

    frames_in: int = 0
    frames_sent: int = 0
    duplicates: int = 0
    unacked: int = 0
    dropped: int = 0
    sessions: list[str] = field(default_factory=list)
    resent: int = 0
    resumed: list[str] = field(default_factory=list)
    spool: str | None = None


@dataclass(eq=False, slots=True)
class _Leg:
    """One pitwire session's uplink."""

    session: str
    peer: AgentPeer
    uplink: WsUplink | HttpUplink
    task: asyncio.Task[None] | None = None
    frames_sent: int = 0
    spool: Spool | None = None
    resent: int = 0  # unacked frames found in its spool at the start
    leftover: bool = False  # only re-sends an earlier run's spool

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
        spool_dir: str | os.PathLike[str] | None = None,
        spool_max: int = DEFAULT_MAX_BYTES,
    ) -> None:
        """spool_dir: keep unacked frames on disk under it (one subdirectory per session);
        None keeps at most ``max_unacked`` frames in memory. spool_max: the bound of each
        session's spool [bytes]. Raises ValueError if ``server`` is not a usable URL (before
        anything is created), SpoolError if the spool cannot be used."""
        if spool_dir is not None and transport != "ws":
            raise ValueError("the spool is for transport ws (http has no acknowledgements)")
        check_server(server)
        self.source = source
        self.server = server
        self.transport = transport
        self.batch_ms = batch_ms
        self.max_unacked = max_unacked
        self.spool_dir = Path(spool_dir) if spool_dir is not None else None
        self.spool_max = spool_max
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
        if self.spool_dir is not None:
            self._resume_leftovers(self.spool_dir)

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
            sessions=[leg.session for leg in self._legs if not leg.leftover],
            resent=sum(leg.resent for leg in self._legs),
            resumed=[leg.session for leg in self._legs if leg.leftover],
            spool=str(self.spool_dir) if self.spool_dir is not None else None,
        )

    def _new_leg(self, track: str, source: str) -> _Leg:
        self._sessions += 1
        session = self.session_ids(self._sessions)
        for leg in self._legs:
            if leg.leftover and leg.session == session:  # its spool is already open here
                leg.leftover = False
                leg.peer.set_track(track)
                return leg
        spool = None
        if self.spool_dir is not None:
            spool = Spool(
                self.spool_dir / session, max_bytes=self.spool_max, server=ingest_url(self.server)
            )
        started_ns = self.source.info.started_ns if self._sessions == 1 else 0
        return self._add_leg(session, track, source, started_ns, spool)

    def _add_leg(
        self, session: str, track: str, source: str, started_ns: int, spool: Spool | None
    ) -> _Leg:
        kept = spool.session_info if spool is not None else None
        if kept is not None:  # what an earlier run knew and this one does not (yet)
            track, source = track or kept.track, source or kept.source
            started_ns = started_ns or kept.started_ns
        peer = AgentPeer(
            session=session,
            streams=[],
            track=track,
            source=source,
            max_unacked=self.max_unacked,
            started_ns=started_ns,
            keeper=spool,
            max_out_bytes=OUT_BYTES,
        )
        uplink: WsUplink | HttpUplink = (
            WsUplink(self.server, peer)
            if self.transport == "ws"
            else HttpUplink(self.server, session)
        )
        leg = _Leg(session, peer, uplink, spool=spool)
        if spool is not None:
            leg.resent = spool.frames
        self._legs.append(leg)
        return leg

    def _resume_leftovers(self, root: Path) -> None:
        """Open the spools earlier runs left under ``root`` for this server: their frames
        are sent next to the source's."""
        url = safe_url(ingest_url(self.server))
        for directory in session_dirs(root):
            if any(leg.session == directory.name for leg in self._legs):
                continue
            try:
                spool = Spool(directory, max_bytes=self.spool_max, server=url)
            except SpoolLocked:
                continue  # another agent is sending it
            except SpoolError as exc:
                log.warning("%s", exc)
                continue
            info = spool.session_info
            if spool.frames == 0 or info is None:
                spool.close()
                continue
            if safe_url(info.server) != url:  # (spools of earlier versions hold passwords)
                log.warning(
                    "spool %s holds %d unsent frames of session %s for %s; they are sent "
                    "when the agent runs with that --server (to throw them away: pitwire "
                    "agent --discard-spool %s --spool-dir %s)",
                    directory,
                    spool.frames,
                    info.session,
                    safe_url(info.server),
                    directory.name,
                    root,
                )
                spool.close()
                continue
            log.info(
                "sending %d frames of session %s left in the spool by an earlier run",
                spool.frames,
                directory.name,
            )
            leg = self._add_leg(directory.name, "", "", 0, spool)
            leg.leftover = True

    def stop(self) -> None:
        """Stop reading the source; ``run`` then sends what it has, waits for the acks (up to
        its ``drain_timeout``) and returns. (Cancel ``run`` to stop at once.)"""
        self._stop.set()

    async def run(self, *, drain_timeout: float = 5.0) -> AgentReport:
        """Run until the source ends or ``stop()`` (then wait up to ``drain_timeout`` for
        acks) or until cancelled."""
        for leg in self._legs:
            leg.task = asyncio.create_task(leg.uplink.run())
        pump = asyncio.create_task(self._pump())
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
            try:
                for task in [
                    pump,
                    stopping,
                    *self._draining,
                    *(leg.task for leg in self._legs if leg.task),
                ]:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            finally:
                for leg in self._legs:
                    if isinstance(leg.uplink, WsUplink):
                        leg.uplink.finish()  # the frames lost in all, in the log
                    if leg.spool is not None:
                        leg.spool.close()  # kept on disk if anything is unacked

    async def _pump(self) -> None:
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
                        self._session_change(item)
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

    def _session_change(self, change: SessionChange) -> None:
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
        if self.leg.task is None:
            self.leg.task = asyncio.create_task(self.leg.uplink.run())
        log.info("new game session %s: streaming as session %s", change.key, self.leg.session)

        async def finish() -> None:
            # No deadline: what it holds is bounded by its keeper, and the agent's end
            # drains (then cancels) it like the other legs.
            await self._drain([old], math.inf)
            if old.task is not None:
                old.task.cancel()
                await asyncio.gather(old.task, return_exceptions=True)
            if isinstance(old.uplink, WsUplink):
                old.uplink.finish()
            if old.spool is not None:
                old.spool.close()

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
                    "session %s: %d frames not acknowledged by the server%s",
                    leg.session,
                    leg.unacked,
                    f" (kept in the spool {leg.spool.directory}; the agent sends them when it "
                    "runs again)"
                    if leg.spool is not None
                    else "",
                )
