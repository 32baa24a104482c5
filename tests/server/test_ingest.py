"""Tests of ingest (pitwire.server.ingest): the Ingestor over a MemoryStore and a Hub, and the
``/ws/ingest`` endpoint on a real server driven by a raw WebSocket client."""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pitwire.model.ids import SessionId, StreamId
from pitwire.protocol import SUBPROTOCOL, frames
from pitwire.protocol.messages import Subscribe
from pitwire.protocol.peer import CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED
from pitwire.server.hub import Hub
from pitwire.server.ingest import Ingestor
from pitwire.server.persist import Persistence
from pitwire.server.stats import ServerStats
from pitwire.store.base import StoreUnavailable
from pitwire.store.memory import MemoryStore
from support import car_batch, car_channels, running_server


class FakeViewer:
    """Records the data frames the hub offers."""

    def __init__(self) -> None:
        self.frames: list[frames.DataFrame] = []

    def offer(self, slot: tuple[int, int], payload: object, recv_ns: int) -> None:
        data = payload.data if hasattr(payload, "data") else payload  # type: ignore[attr-defined]
        self.frames.append(frames.parse(data))  # type: ignore[arg-type]

    def control(self, text: str) -> None:
        pass


@pytest.fixture
async def ingestor() -> Ingestor:
    """An Ingestor over an open MemoryStore and a Hub with no timers."""
    store = MemoryStore()
    await store.open()
    hub = Hub(lambda delay, fn: None)
    persistence = Persistence(store, max_frames=1000, max_age=60)
    return Ingestor(store=store, hub=hub, persistence=persistence, stats=ServerStats())


def watch(ingestor: Ingestor, session: str = "s1") -> FakeViewer:
    viewer = FakeViewer()
    ingestor.hub.attach(session, viewer)
    ingestor.hub.subscribe(session, viewer, Subscribe(id=1))
    return viewer


async def stored_packets(ingestor: Ingestor, session: str = "s1", stream: str = "car-1"):  # type: ignore[no-untyped-def]
    await ingestor.persistence.flush()
    batch = await ingestor.store.read_frames(
        session_id=SessionId(session), stream_id=StreamId(stream)
    )
    return batch.columns["packet_id"].astype(int).tolist()


# --- Ingestor -----------------------------------------------------------------------------


async def test_register_acks_minus_one_when_nothing_is_stored(ingestor):
    """Registering a new stream creates session and stream and answers -1."""
    assert await ingestor.register("s1", "car-1", car_channels(), track="t", source="x") == -1
    summary = await ingestor.store.get_session(SessionId("s1"))
    assert (summary.info.track, summary.info.source) == ("t", "x")
    assert [s.info.stream_id for s in summary.streams] == ["car-1"]
    assert ingestor.knows("s1", "car-1") and not ingestor.knows("s1", "car-2")
    assert ingestor.next_seq("s1", "car-1") == 0


async def test_register_acks_the_stored_high_water_including_buffered_frames(ingestor):
    """Registering a stream again answers the highest contiguously stored seq, after writing
    what was still buffered for it."""
    await ingestor.register("s1", "car-1", car_channels())
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    assert ingestor.persistence.buffered_frames == 10
    assert await ingestor.register("s1", "car-1", car_channels()) == 9
    assert ingestor.persistence.buffered_frames == 0
    assert ingestor.next_seq("s1", "car-1") == 10


async def test_register_updates_the_sessions_track_and_source(ingestor):
    """A later register naming a track and source updates the stored session."""
    await ingestor.register("s1", "car-1", car_channels())
    await ingestor.register("s1", "car-2", car_channels(), track="monza", source="sim")
    info = (await ingestor.store.get_session(SessionId("s1"))).info
    assert (info.track, info.source) == ("monza", "sim")


async def test_ingest_publishes_and_persists_new_frames(ingestor):
    """New frames are published to viewers and stored, and counted in the stats."""
    await ingestor.register("s1", "car-1", car_channels())
    viewer = watch(ingestor)
    assert ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0) == 10
    assert [(f.seq, f.n) for f in viewer.frames] == [(0, 10)]
    assert await stored_packets(ingestor) == list(range(10))
    assert ingestor.stats.ingest_frames == 10


async def test_duplicate_and_overlapping_resends_are_not_republished_or_restored(ingestor):
    """A re-sent batch is dropped whole; an overlapping one only contributes its new frames,
    published and stored once with the right seq."""
    await ingestor.register("s1", "car-1", car_channels())
    viewer = watch(ingestor)
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    assert ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0) == 0
    assert ingestor.ingest("s1", "car-1", 3, car_batch(3, 4), recv_ns=0) == 0
    assert ingestor.ingest("s1", "car-1", 5, car_batch(5, 10), recv_ns=0) == 5
    assert [(f.seq, f.n) for f in viewer.frames] == [(0, 10), (10, 5)]
    np.testing.assert_array_equal(viewer.frames[1].t_ns(), car_batch(10, 5).t_ns)
    assert await stored_packets(ingestor) == list(range(15))
    assert ingestor.stats.ingest_frames == 15


async def test_frames_already_stored_before_a_restart_are_not_restored(ingestor):
    """After register reports the stored high-water, frames up to it are dropped."""
    await ingestor.register("s1", "car-1", car_channels())
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await ingestor.persistence.flush()
    fresh = Ingestor(
        store=ingestor.store,
        hub=Hub(lambda delay, fn: None),
        persistence=Persistence(ingestor.store),
        stats=ServerStats(),
    )
    assert await fresh.register("s1", "car-1", car_channels()) == 9
    assert fresh.ingest("s1", "car-1", 5, car_batch(5, 5), recv_ns=0) == 0
    assert fresh.ingest("s1", "car-1", 5, car_batch(5, 8), recv_ns=0) == 3


async def test_listeners_hear_when_frames_are_stored(ingestor):
    """A listener of a stream is called with (stream, last seq) once frames are durable, and
    not after unlisten."""
    await ingestor.register("s1", "car-1", car_channels())
    heard: list[tuple[str, int]] = []

    def on_stored(stream: str, seq: int) -> None:
        heard.append((stream, seq))

    ingestor.listen("s1", "car-1", on_stored)
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await ingestor.persistence.flush()
    assert heard == [("car-1", 9)]
    ingestor.unlisten("s1", "car-1", on_stored)
    ingestor.ingest("s1", "car-1", 10, car_batch(10, 5), recv_ns=0)
    await ingestor.persistence.flush()
    assert heard == [("car-1", 9)]


# --- /ws/ingest ---------------------------------------------------------------------------


async def agent_socket(url: str) -> ClientConnection:
    return await connect(f"{url}/ws/ingest", subprotocols=[SUBPROTOCOL], compression=None)


def hello(protocol: int = 1) -> str:
    return json.dumps({"op": "hello", "protocol": protocol, "role": "agent", "name": "test"})


def advertise(session: str = "ws1") -> str:
    return json.dumps(
        {
            "op": "advertise",
            "session": session,
            "track": "t",
            "source": "raw",
            "streams": [{"id": 3, "stream": "car-1", "channels": [0, 1, 2, 3, 4]}],
            "channels": [
                {"id": i, "name": name, "dtype": ch.dtype}
                for i, (name, ch) in enumerate(car_channels().items())
            ],
        }
    )


def data(seq: int, n: int) -> bytes:
    batch = car_batch(seq, n)
    return frames.serialize(
        group=3,
        seq=seq,
        t_ns=batch.t_ns,
        columns=[(i, batch.columns[name]) for i, name in enumerate(car_channels())],
    )


async def recv_op(ws: ClientConnection, op: str) -> dict:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if msg["op"] == op:
            return msg


async def close_code(ws: ClientConnection) -> int | None:
    """Read until the server closes; the close code it sent (None if none arrived)."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


async def test_ws_ingest_handshake_acks_and_stores_once():
    """An agent gets serverInfo, an ack of -1 for its new stream, and acks of stored seqs;
    a re-sent frame is stored once."""
    async with running_server(chunk_age=0.05) as srv:
        ws = await agent_socket(srv.ws)
        assert ws.subprotocol == SUBPROTOCOL
        await ws.send(hello())
        info = await recv_op(ws, "serverInfo")
        assert info["protocol"] == 1 and "ack" in info["capabilities"]
        await ws.send(advertise())
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 3, "seq": -1}
        await ws.send(data(0, 10))
        await ws.send(data(0, 10))
        await ws.send(data(5, 10))
        acked = -1
        while acked < 14:
            acked = (await recv_op(ws, "ack"))["seq"]
        assert acked == 14
        await ws.close()
        batch = await srv.store.read_frames(
            session_id=SessionId("ws1"), stream_id=StreamId("car-1")
        )
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(15))
        stats = srv.app.state.stats
        assert (stats.ingest_messages, stats.ingest_frames) == (3, 15)


async def test_ws_ingest_reconnect_is_acked_the_stored_high_water(server):
    """A second connection advertising a stream with stored frames is acked its high-water."""
    ws = await agent_socket(server.ws)
    await ws.send(advertise("hw"))
    await recv_op(ws, "ack")
    await ws.send(data(0, 7))
    for _ in range(500):
        if server.app.state.stats.ingest_frames == 7:
            break
        await asyncio.sleep(0.01)
    await ws.close()
    ws = await agent_socket(server.ws)
    await ws.send(advertise("hw"))
    assert (await recv_op(ws, "ack"))["seq"] == 6
    await ws.close()


async def test_ws_ingest_garbage_is_closed_4002(server):
    """An agent sending something that is not a control message gets bad_message and close
    code 4002."""
    ws = await agent_socket(server.ws)
    await ws.send("{this is not json")
    status = await recv_op(ws, "status")
    assert (status["level"], status["code"]) == ("error", "bad_message")
    assert await close_code(ws) == CLOSE_PROTOCOL_ERROR


async def test_ws_ingest_bad_frame_is_closed_4002(server):
    """An agent sending a malformed binary frame gets bad_frame and close code 4002."""
    ws = await agent_socket(server.ws)
    await ws.send(advertise("bf"))
    await recv_op(ws, "ack")
    await ws.send(data(0, 3)[:-4])
    assert (await recv_op(ws, "status"))["code"] == "bad_frame"
    assert await close_code(ws) == CLOSE_PROTOCOL_ERROR


async def test_ws_ingest_data_before_advertise_is_closed_4002(server):
    """Data for a stream that was never advertised gets unknown_stream and close code 4002."""
    ws = await agent_socket(server.ws)
    await ws.send(data(0, 3))
    assert (await recv_op(ws, "status"))["code"] == "unknown_stream"
    assert await close_code(ws) == CLOSE_PROTOCOL_ERROR


async def test_ws_ingest_protocol_99_is_closed_4003(server):
    """An agent announcing protocol 99 gets status unsupported and close code 4003."""
    ws = await agent_socket(server.ws)
    await ws.send(hello(protocol=99))
    status = await recv_op(ws, "status")
    assert status["code"] == "unsupported" and "99" in status["message"]
    assert await close_code(ws) == CLOSE_UNSUPPORTED


async def test_ws_ingest_counts_connected_agents(server):
    """An agent counts as live for its session while connected."""
    ingestor = server.app.state.ingestor
    ws = await agent_socket(server.ws)
    await ws.send(advertise("live"))
    await recv_op(ws, "ack")
    assert ingestor.live["live"] == 1
    await ws.close()
    for _ in range(100):
        if ingestor.live["live"] == 0:
            break
        await asyncio.sleep(0.01)
    assert ingestor.live["live"] == 0


class NoSessionsStore(MemoryStore):
    """A MemoryStore that cannot create sessions (the backend is down)."""

    async def put_session(self, info):  # type: ignore[no-untyped-def]
        raise StoreUnavailable("connection refused")


async def test_ingest_answers_503_or_closes_1011_when_the_store_is_unavailable():
    """When the store cannot register a stream, POST /ingest answers 503 and an agent's
    WebSocket is closed with 1011 (retry later)."""
    async with running_server(store=NoSessionsStore()) as srv:
        async with httpx.AsyncClient(base_url=srv.url) as client:
            frame = {
                "packetId": 1,
                "gas": 0,
                "brake": 0,
                "fuel": 1,
                "gear": 1,
                "rpms": 1,
                "steerAngle": 0,
                "speedKmh": 1,
            }
            r = await client.post("/ingest", params={"session_id": "x"}, json=[frame])
        assert r.status_code == 503 and "store unavailable" in r.json()["error"]
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("down"))
        assert await close_code(ws) == 1011
