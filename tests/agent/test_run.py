"""The agent end to end: simulated cars → agent → real server → viewer and store."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect

from pitwire.agent.run import Agent
from pitwire.model.ids import SessionId, StreamId
from pitwire.protocol import SUBPROTOCOL, frames
from pitwire.sources.sim import SimSource


async def count_viewer(url: str, session: str, got: dict[int, int], ready: asyncio.Event) -> None:
    async with connect(f"{url}/ws/{session}", subprotocols=[SUBPROTOCOL], compression=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": 1}))
        ready.set()
        async for msg in ws:
            if isinstance(msg, bytes):
                df = frames.parse(msg)
                got[df.group] = got.get(df.group, 0) + df.n


async def test_sim_agent_frames_sent_equal_received_and_stored(server):
    """Every frame 3 simulated cars produce reaches a live viewer once and is stored once."""
    source = SimSource(cars=3, seed=7, rate_hz=60, duration=2.0, realtime=True)
    got: dict[int, int] = {}
    ready = asyncio.Event()
    # Register the session first, so the viewer subscribes to existing streams.
    warmup = Agent(
        SimSource(cars=3, seed=7, duration=1 / 60, realtime=False), server=server.ws, session="e2e"
    )
    first = await warmup.run()
    viewer = asyncio.create_task(count_viewer(server.ws, "e2e", got, ready))
    await ready.wait()
    await asyncio.sleep(0.1)
    agent = Agent(source, server=server.ws, session="e2e")
    report = await agent.run()
    await asyncio.sleep(0.3)
    viewer.cancel()
    assert report.frames_sent == 3 * 120
    assert report.unacked == 0 and report.dropped == 0
    assert sum(got.values()) == report.frames_sent
    await server.app.state.persistence.flush()
    stored = 0
    for car in ("car-1", "car-2", "car-3"):
        batch = await server.store.read_frames(session_id=SessionId("e2e"), stream_id=StreamId(car))
        # The warm-up agent's one frame, then this agent's 120 (its packet ids restart at 0).
        assert batch.columns["packet_id"].tolist() == [0.0, *range(120)]
        stored += batch.n
    assert stored == first.frames_sent + report.frames_sent


async def test_http_transport_posts_batches_that_are_stored(server):
    """With --transport http the agent posts the original JSON shape and every frame lands."""
    source = SimSource(cars=2, seed=1, rate_hz=60, duration=0.5, realtime=False)
    agent = Agent(source, server=server.url, session="http-e2e", transport="http", batch_ms=50)
    report = await agent.run()
    await server.app.state.persistence.flush()
    total = 0
    for car in ("car-1", "car-2"):
        batch = await server.store.read_frames(
            session_id=SessionId("http-e2e"), stream_id=StreamId(car)
        )
        total += batch.n
    assert report.frames_sent == 60
    assert total == report.frames_sent
