"""Live viewers: ``WS /ws/{session_id}``, binary protocol v1 or the compatibility JSON feed.

``WsViewer`` is the hub's ``Viewer``: ``offer`` puts data in a pending slot (newest wins) and
wakes the viewer's own writer task, so a slow socket only ever delays itself. A viewer that
stays behind for longer than ``lag_limit`` seconds is closed with code 4001.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from pitwire.model.channels import ChannelSet
from pitwire.model.ids import SessionId
from pitwire.protocol import SUBPROTOCOL, messages
from pitwire.protocol.messages import Status
from pitwire.protocol.peer import (
    CLOSE_TOO_SLOW,
    CloseRequested,
    ControlRequested,
    ReplayRequested,
    SubscribeRequested,
    UnsubscribeRequested,
    ViewerPeer,
)
from pitwire.server.hub import Hub, Payload, Slot
from pitwire.server.player import Player, ReplayError
from pitwire.server.replay import Replays
from pitwire.server.stats import ServerStats
from pitwire.server.wsdirect import DirectWriter, frame
from pitwire.store.base import Store, StoreError

log = logging.getLogger("pitwire.live")


class WsViewer:
    def __init__(
        self, ws: WebSocket, stats: ServerStats, lag_limit: float, *, statuses: bool = True
    ) -> None:
        self.ws = ws
        self.statuses = statuses  # False for the JSON feed: it carries only data messages
        self.stats = stats
        self.lag_limit = lag_limit
        self._pending: dict[Slot, tuple[Payload, int]] = {}
        self._direct = DirectWriter.of(ws.scope) if hasattr(ws, "scope") else None
        self._control: deque[str] = deque()
        self._wake = asyncio.Event()
        self.lagging = False
        self._lag_since = 0.0
        self.dropped = 0
        self.closing = False
        self._close_after: tuple[int, str] | None = None
        self.task: asyncio.Task[None] | None = None

    def offer(self, slot: Slot, data: Payload, recv_ns: int) -> None:
        if self.closing:
            return
        if slot in self._pending:
            self.dropped += 1
            self.stats.dropped += 1
            now = time.monotonic()
            if not self.lagging:
                self.lagging = True
                self._lag_since = now
                if self.statuses:
                    self._control.append(self._status_lagging(slot))
            elif now - self._lag_since > self.lag_limit:
                self.kill(CLOSE_TOO_SLOW, f"viewer lagged for more than {self.lag_limit:g} s")
                return
        self._pending[slot] = (data, recv_ns)
        self._wake.set()

    def pending(self, slot: Slot) -> bool:
        """Data offered in ``slot`` has not been written yet."""
        return slot in self._pending

    def retract(self, slot: Slot) -> None:
        """Withdraw what ``slot`` holds unwritten (a replay's frame made stale by a seek)."""
        self._pending.pop(slot, None)

    @staticmethod
    def _status_lagging(slot: Slot) -> str:
        return messages.encode(
            Status(
                level="warning",
                code="lagging",
                message="viewer is behind; intermediate frames are being skipped",
                subscription=slot[0] if slot[0] >= 0 else None,
            )
        )

    def control(self, text: str) -> None:
        if not self.closing:
            self._control.append(text)
            self._wake.set()

    async def writer(self) -> None:
        ws, stats = self.ws, self.stats
        latency = stats.latency
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._control:
                await ws.send_text(self._control.popleft())
            if self._close_after is not None:
                await ws.close(*self._close_after)
                return
            pending, self._pending = self._pending, {}
            direct = self._direct
            for payload, recv_ns in pending.values():
                if direct is not None:
                    framed = payload.framed
                    if framed is None:
                        raw = payload.data
                        framed = payload.framed = frame(
                            raw if isinstance(raw, bytes) else raw.encode(), binary=payload.binary
                        )
                    if not await direct.write(framed):
                        return
                elif isinstance(payload.data, bytes):
                    await ws.send_bytes(payload.data)
                else:
                    await ws.send_text(payload.data)
                latency.add(time.time_ns() - recv_ns)
                stats.sends += 1
            if self.lagging and not self._pending:
                self.lagging = False
                if not self.statuses:
                    continue
                self._control.append(
                    messages.encode(
                        Status(level="info", code="recovered", message="viewer caught up")
                    )
                )
                self._wake.set()

    def close_after_control(self, code: int, reason: str) -> None:
        """Send the queued control messages (e.g. the error status), then close."""
        self._close_after = (code, reason)
        self._wake.set()

    def kill(self, code: int, reason: str) -> None:
        """Close from outside the writer: cancel it, try a clean close, else abort."""
        if self.closing:
            return
        self.closing = True
        self.stats.disconnected_slow += 1
        log.warning("closing viewer: %s", reason)
        if self.task is not None:
            self.task.cancel()
        asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await asyncio.wait_for(self.ws.close(code, reason), timeout=1.0)
        except (TimeoutError, RuntimeError, OSError):
            # The peer's buffers are full, so even the close frame cannot go out: drop the
            # connection, or it would hang until the peer read again.
            if self._direct is not None:
                self._direct.abort()


def _refusal(rid: int, message: str) -> str:
    return messages.encode(
        Status(level="error", code="replay_refused", message=message, subscription=rid)
    )


def router(
    *, hub: Hub, store: Store, stats: ServerStats, lag_limit: float, replays: Replays
) -> APIRouter:
    r = APIRouter()

    async def ensure_known(session_id: str) -> None:
        """A viewer may open a stored session that is not live: advertise its streams."""
        if session_id in hub.sessions and hub.sessions[session_id].streams:
            return
        try:
            summary = await store.get_session(SessionId(session_id))
        except (KeyError, StoreError):
            return
        for st in summary.streams:
            hub.add_stream(
                session_id,
                st.info.stream_id,
                ChannelSet(st.info.channels),
                driver=st.info.driver,
                car=st.info.car,
                track=summary.info.track,
                source=summary.info.source,
            )

    @r.websocket("/ws/{session_id}")
    async def ws_viewer(
        ws: WebSocket, session_id: str, format: str | None = None, stream: str | None = None
    ) -> None:
        offered = ws.scope.get("subprotocols", [])
        binary = format == "bin" or SUBPROTOCOL in offered
        await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
        viewer = WsViewer(ws, stats, lag_limit, statuses=binary)
        viewer.task = asyncio.create_task(viewer.writer())
        peer = ViewerPeer(session_id)
        player: Player | None = None
        try:
            if binary:
                await ensure_known(session_id)
                peer.connection_made()
                for item in peer.outgoing():
                    viewer.control(item if isinstance(item, str) else item.decode())
                hub.attach(session_id, viewer)
            else:
                hub.attach_json(session_id, viewer, stream)
            while True:
                msg = await ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                if not binary:
                    continue  # the JSON feed is send-only
                if (text := msg.get("text")) is not None:
                    peer.receive_text(text)
                else:
                    peer.receive_bytes(msg.get("bytes") or b"")
                for item in peer.outgoing():
                    viewer.control(item if isinstance(item, str) else item.decode())
                for ev in peer.events():
                    match ev:
                        case SubscribeRequested():
                            done = hub.subscribe(session_id, viewer, ev.request)
                            viewer.control(messages.encode(done))
                        case UnsubscribeRequested():
                            hub.unsubscribe(session_id, viewer, ev.id)
                        case CloseRequested():
                            viewer.close_after_control(ev.code, ev.reason)
                        case ReplayRequested():
                            if player is not None:
                                replays.release(player)
                                player = None
                            try:
                                player = await replays.open(session_id, viewer, ev.request)
                            except ReplayError as exc:
                                peer.replay = None
                                viewer.control(_refusal(ev.request.id, str(exc)))
                        case ControlRequested():
                            try:
                                if player is not None:
                                    player.control(ev.request)
                            except ReplayError as exc:
                                viewer.control(_refusal(ev.request.id, str(exc)))
                        case _:
                            pass
        except WebSocketDisconnect:
            return
        finally:
            if player is not None:
                replays.release(player)
            hub.detach(session_id, viewer)
            viewer.closing = True
            if viewer.task is not None:
                viewer.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await viewer.task

    return r
