"""A stored race for replay tests: three cars at 60 Hz (car_batch's frames, packet_id =
frame index), laps of 20 s; and stand-ins to drive players without a network."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import LapInfo, SessionInfo, StreamInfo
from pitwire.store.base import Store
from support import car_batch, car_channels

T0 = 1_700_000_000_000_000_000
PERIOD = 16_666_667  # car_batch's 60 Hz
SECOND = 1_000_000_000


async def store_session(store: Store, *, cars: int = 3, frames: int = 3600) -> None:
    """A stored session of ``cars`` cars, ``frames`` frames each at 60 Hz, laps of 20 s."""
    sid = SessionId("race")
    await store.put_session(SessionInfo(session_id=sid, track="test", started_ns=T0))
    for c in range(cars):
        name = StreamId(f"car-{c + 1}")
        info = StreamInfo(stream_id=name, channels=list(car_channels().values()))
        await store.put_stream(sid, info)
        for start in range(0, frames, 1000):
            n = min(1000, frames - start)
            batch = car_batch(start, n, t0_ns=T0 + c * 1000)  # cars a microsecond apart
            await store.write_chunk(session_id=sid, stream_id=name, first_seq=start, batch=batch)
        for lap in range(frames // 1200):
            await store.put_lap(
                sid,
                LapInfo(
                    stream_id=name,
                    lap=lap + 1,
                    t0_ns=T0 + c * 1000 + lap * 1200 * PERIOD,
                    t1_ns=T0 + c * 1000 + ((lap + 1) * 1200 - 1) * PERIOD,
                    frames=1200,
                ),
            )


def expected_packet(t_ns: int, car: int = 0) -> int:
    """The packet_id of car ``car``'s last frame at or before ``t_ns``."""
    return (t_ns - T0 - car * 1000) // PERIOD


class GatedSocket:
    """Records what the writer sends; binary sends wait while ``gate`` is clear."""

    def __init__(self) -> None:
        self.log: list[dict[str, Any] | bytes] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def send_text(self, text: str) -> None:
        self.log.append(json.loads(text))

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.log.append(bytes(data))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


async def direct_setup(store: Any = None, **replays_kw: Any):  # type: ignore[no-untyped-def]
    """A stored 3-car session, a hub, Replays and one viewer on a GatedSocket."""
    from pitwire.model.channels import ChannelSet
    from pitwire.server.hub import Hub
    from pitwire.server.live import WsViewer
    from pitwire.server.replay import Replays
    from pitwire.server.stats import ServerStats
    from pitwire.store.memory import MemoryStore

    store = store or MemoryStore()
    await store.open()
    await store_session(store)
    hub = Hub(asyncio.get_running_loop().call_later)
    for st in (await store.get_session(SessionId("race"))).streams:
        hub.add_stream("race", st.info.stream_id, ChannelSet(st.info.channels))
    sock = GatedSocket()
    viewer = WsViewer(sock, ServerStats(), lag_limit=10)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    return store, hub, Replays(hub=hub, store=store, **replays_kw), sock, viewer


def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stored sessions in 400-frame blocks, so a seek has a block to read."""
    import pitwire.server.replay as replay_module
    from pitwire.server.timeline import StoredTimeline

    class Small(StoredTimeline):
        def __init__(self, *a: Any, **k: Any) -> None:
            super().__init__(*a, block_frames=400, **k)

    monkeypatch.setattr(replay_module, "StoredTimeline", Small)
