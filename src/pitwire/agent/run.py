"""Run a source through the agent core into an uplink.

The source runs in its own task and only ever queues; the uplink drains on its own, so a
slow or absent network never slows sampling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Literal

from pitwire.agent.core import AgentCore
from pitwire.agent.uplink import HttpUplink, WsUplink
from pitwire.model.channels import ChannelSet
from pitwire.model.frames import FrameBatch
from pitwire.protocol.peer import AgentPeer
from pitwire.sources.base import Source

log = logging.getLogger("pitwire.agent")


@dataclass(slots=True)
class AgentReport:
    frames_in: int = 0
    frames_sent: int = 0
    duplicates: int = 0
    unacked: int = 0
    dropped: int = 0


class Agent:
    def __init__(
        self,
        source: Source,
        *,
        server: str,
        session: str,
        transport: Literal["ws", "http"] = "ws",
        batch_ms: float = 0.0,
        max_unacked: int = 2_000_000,
    ) -> None:
        self.source = source
        self.session = session
        self.core = AgentCore(batch_ns=int(batch_ms * 1e6))
        info = source.info
        self.peer = AgentPeer(
            session=session,
            streams=[(s.stream_id, ChannelSet(s.channels), s.driver, s.car) for s in info.streams],
            track=info.track,
            source=info.source,
            max_unacked=max_unacked,
        )
        self.uplink: WsUplink | HttpUplink = (
            WsUplink(server, self.peer) if transport == "ws" else HttpUplink(server, session)
        )
        self.frames_sent = 0

    def report(self) -> AgentReport:
        dropped = self.peer.dropped if isinstance(self.uplink, WsUplink) else self.uplink.dropped
        return AgentReport(
            frames_in=self.core.frames_in,
            frames_sent=self.frames_sent,
            duplicates=self.core.duplicates,
            unacked=self.peer.unacked_frames,
            dropped=dropped,
        )

    async def run(self, *, drain_timeout: float = 5.0) -> AgentReport:
        """Run until the source ends (then wait up to ``drain_timeout`` for acks) or until
        cancelled."""
        uplink = asyncio.create_task(self.uplink.run())
        try:
            async for stream, batch in self.source:
                for s, b in self.core.feed(stream, batch, time.monotonic_ns()):
                    self._submit(s, b)
                if self.core.batch_ns:
                    for s, b in self.core.flush(time.monotonic_ns()):
                        self._submit(s, b)
                if uplink.done():
                    await uplink  # an unrecoverable uplink error (bad URL) ends the agent
            for s, b in self.core.flush():
                self._submit(s, b)
            await self._drain(drain_timeout)
            return self.report()
        finally:
            uplink.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await uplink

    def _submit(self, stream: str, batch: FrameBatch) -> None:
        self.uplink.submit(stream, batch)
        self.frames_sent += batch.n

    async def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if isinstance(self.uplink, WsUplink):
                if self.peer.unacked_frames == 0:
                    return
            elif self.uplink.sent_frames + self.uplink.dropped >= self.frames_sent:
                return
            await asyncio.sleep(0.05)
        log.warning("stopping with %d frames not acknowledged by the server", self.report().unacked)
