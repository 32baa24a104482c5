"""Tests of ingest (pitwire.server.ingest): the Ingestor over a MemoryStore and a Hub, and the
``/ws/ingest`` endpoint on a real server driven by a raw WebSocket client."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from pitwire.model.ids import SessionId, StreamId
from pitwire.protocol import SUBPROTOCOL, frames
from pitwire.protocol.messages import Subscribe
from pitwire.protocol.peer import CLOSE_PROTOCOL_ERROR, CLOSE_UNSUPPORTED, AgentPeer
from pitwire.server.hub import Hub
from pitwire.server.ingest import CLOSE_STREAM_TAKEN, Ingestor
from pitwire.server.persist import Persistence
from pitwire.server.spool import Spool
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


async def test_register_resumes_after_the_highest_stored_seq_so_a_hole_stays_a_hole(ingestor):
    """When the store holds seqs 0..99 and 150..299 (an agent dropped 100..149), a server
    restarted later answers 299: a new agent continues after it, all its frames are stored,
    and the hole stays a hole."""
    await ingestor.register("s1", "car-1", car_channels())
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 100), recv_ns=0)
    await ingestor.persistence.flush()
    ingestor.ingest("s1", "car-1", 150, car_batch(150, 150), recv_ns=0)
    await ingestor.persistence.flush()
    fresh = Ingestor(
        store=ingestor.store,
        hub=Hub(lambda delay, fn: None),
        persistence=Persistence(ingestor.store),
        stats=ServerStats(),
    )
    assert await fresh.register("s1", "car-1", car_channels()) == 299
    assert fresh.ingest("s1", "car-1", 300, car_batch(1000, 200), recv_ns=0) == 200
    assert await stored_packets(fresh) == [*range(100), *range(150, 300), *range(1000, 1200)]


async def test_a_re_advertise_is_acked_what_is_durable_without_writing_buffered_frames(ingestor):
    """Registering a stream again on the same connection (a driver learned) answers what is
    durable and leaves buffered frames to be written as one chunk."""
    await ingestor.register("s1", "car-1", car_channels())
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    assert await ingestor.register("s1", "car-1", car_channels(), driver="Ann", again=True) == -1
    assert ingestor.persistence.buffered_frames == 10
    ingestor.ingest("s1", "car-1", 10, car_batch(10, 10), recv_ns=0)
    assert await stored_packets(ingestor) == list(range(20))
    spans = (await ingestor.store.chunk_index(SessionId("s1")))["car-1"]
    assert [(s.first_seq, s.last_seq) for s in spans] == [(0, 19)]
    summary = await ingestor.store.get_session(SessionId("s1"))
    assert [s.info.driver for s in summary.streams] == ["Ann"]


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


def test_a_stream_is_claimed_by_one_holder_at_a_time(ingestor):
    """A holder claims its streams again freely; another holder claiming one of them gets
    that stream back and claims none; other streams or sessions are free; release frees."""
    first, second = object(), object()
    assert ingestor.claim("s1", ["car-1", "car-2"], holder=first) is None
    assert ingestor.claim("s1", ["car-1", "car-2"], holder=first) is None
    assert ingestor.claim("s1", ["car-3", "car-2"], holder=second) == "car-2"
    assert ingestor.claim("s1", ["car-3"], holder=object()) is None  # car-3 was not claimed
    assert ingestor.claim("s2", ["car-1"], holder=second) is None
    ingestor.release(first)
    assert ingestor.claim("s1", ["car-1", "car-2"], holder=second) is None


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


def data(seq: int, n: int, *, group: int = 3) -> bytes:
    batch = car_batch(seq, n)
    return frames.serialize(
        group=group,
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


# --- store outages ------------------------------------------------------------------------


class OutageStore(MemoryStore):
    """A MemoryStore that raises StoreUnavailable from every call but read_frames while
    ``down``, and records the seqs each successful write_chunk was asked to store."""

    def __init__(self) -> None:
        super().__init__()
        self.down = False
        self.written: dict[str, list[int]] = defaultdict(list)

    def _up(self) -> None:
        if self.down:
            raise StoreUnavailable("connection refused")

    async def put_session(self, info):  # type: ignore[no-untyped-def]
        self._up()
        await super().put_session(info)

    async def put_stream(self, session_id, info):  # type: ignore[no-untyped-def]
        self._up()
        await super().put_stream(session_id, info)

    async def get_session(self, session_id):  # type: ignore[no-untyped-def]
        self._up()
        return await super().get_session(session_id)

    async def stored_seqs(self, *, session_id, stream_id):  # type: ignore[no-untyped-def]
        self._up()
        return await super().stored_seqs(session_id=session_id, stream_id=stream_id)

    async def put_lap(self, session_id, lap):  # type: ignore[no-untyped-def]
        self._up()
        await super().put_lap(session_id, lap)

    async def write_chunk(self, *, session_id, stream_id, first_seq, batch):  # type: ignore[no-untyped-def]
        self._up()
        self.written[stream_id].extend(range(first_seq, first_seq + batch.n))
        return await super().write_chunk(
            session_id=session_id, stream_id=stream_id, first_seq=first_seq, batch=batch
        )


async def spooling_ingestor(store: MemoryStore, spool_dir) -> Ingestor:  # type: ignore[no-untyped-def]
    persistence = Persistence(store, max_frames=1000, max_age=60, spool=Spool(spool_dir))
    await persistence.open()
    return Ingestor(
        store=store, hub=Hub(lambda delay, fn: None), persistence=persistence, stats=ServerStats()
    )


async def test_register_during_an_outage_answers_what_is_durable_of_a_known_stream(tmp_path):
    """While the store is down, a stream registered before is answered with its durable
    high-water (stored, then spooled) and stays live; an unknown stream is refused."""
    store = OutageStore()
    await store.open()
    ingestor = await spooling_ingestor(store, tmp_path)
    assert await ingestor.register("s1", "car-1", car_channels()) == -1
    viewer = watch(ingestor)
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await ingestor.persistence.flush()
    store.down = True
    assert ingestor.ingest("s1", "car-1", 10, car_batch(10, 10), recv_ns=0) == 10
    assert [(f.seq, f.n) for f in viewer.frames] == [(0, 10), (10, 10)]
    assert await ingestor.register("s1", "car-1", car_channels(), driver="Ann") == 19
    assert ingestor.persistence.spooled_frames == 10
    with pytest.raises(StoreUnavailable, match="s1/car-9"):
        await ingestor.register("s1", "car-9", car_channels())
    assert ingestor.ingest("s1", "car-1", 15, car_batch(15, 10), recv_ns=0) == 5
    store.down = False
    await ingestor.persistence.flush()
    assert await ingestor.persistence.drain()
    assert await stored_packets(ingestor) == list(range(25))
    assert store.written["car-1"] == list(range(25))
    summary = await store.get_session(SessionId("s1"))
    assert [s.info.driver for s in summary.streams] == ["Ann"]  # declared while down
    assert await ingestor.register("s1", "car-1", car_channels()) == 24
    await ingestor.persistence.close()


async def test_a_server_restarted_during_an_outage_knows_the_spooled_streams(tmp_path):
    """After a restart with the store still down, a stream found in the spool is answered
    its spooled high-water, re-sent frames are dropped, and all lands once the store is
    back."""
    store = OutageStore()
    await store.open()
    first = await spooling_ingestor(store, tmp_path)
    await first.register("s1", "car-1", car_channels())
    store.down = True
    first.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await first.persistence.flush()
    await first.persistence.close()  # killed, as far as the spool can tell
    again = await spooling_ingestor(store, tmp_path)
    assert await again.register("s1", "car-1", car_channels()) == 9
    assert again.ingest("s1", "car-1", 5, car_batch(5, 10), recv_ns=0) == 5
    await again.persistence.flush()
    store.down = False
    assert await again.persistence.drain()
    await again.persistence.flush()
    assert await stored_packets(again) == list(range(15))
    assert store.written["car-1"] == list(range(15))
    await again.persistence.close()


async def test_a_server_restarted_during_an_outage_resumes_after_the_highest_spooled_seq(
    tmp_path,
):
    """A stream whose spooled frames leave a gap (an agent dropped some) is answered its
    highest spooled seq after a restart with the store down, so a new agent's frames are
    all stored after it."""
    store = OutageStore()
    await store.open()
    first = await spooling_ingestor(store, tmp_path)
    await first.register("s1", "car-1", car_channels())
    store.down = True
    first.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await first.persistence.flush()
    first.ingest("s1", "car-1", 20, car_batch(20, 10), recv_ns=0)
    await first.persistence.flush()
    await first.persistence.close()
    again = await spooling_ingestor(store, tmp_path)
    assert await again.register("s1", "car-1", car_channels()) == 29
    assert again.ingest("s1", "car-1", 30, car_batch(100, 10), recv_ns=0) == 10
    await again.persistence.flush()
    store.down = False
    assert await again.persistence.drain()
    await again.persistence.flush()
    assert await stored_packets(again) == [*range(10), *range(20, 30), *range(100, 110)]
    await again.persistence.close()


async def test_register_answers_what_is_durable_when_buffered_frames_cannot_be_written(
    tmp_path,
):
    """With the store down and the spool full, registering a stream with buffered frames
    answers what is durable instead of failing; the frames are stored once the store is
    back."""
    store = OutageStore()
    await store.open()
    persistence = Persistence(
        store, max_frames=1000, max_age=60, spool=Spool(tmp_path, max_bytes=150)
    )
    await persistence.open()
    ingestor = Ingestor(
        store=store, hub=Hub(lambda delay, fn: None), persistence=persistence, stats=ServerStats()
    )
    await ingestor.register("s1", "car-1", car_channels())
    ingestor.ingest("s1", "car-1", 0, car_batch(0, 10), recv_ns=0)
    await persistence.flush()
    store.down = True
    ingestor.ingest("s1", "car-1", 10, car_batch(10, 10), recv_ns=0)
    await persistence.flush()
    assert persistence.spool is not None and persistence.spool.full
    ingestor.ingest("s1", "car-1", 20, car_batch(20, 10), recv_ns=0)
    assert await ingestor.register("s1", "car-1", car_channels()) == 19
    assert persistence.buffered_frames == 10 and ingestor.next_seq("s1", "car-1") == 30
    store.down = False
    assert await persistence.drain()
    assert await stored_packets(ingestor) == list(range(30))
    await persistence.close()


async def open_viewer(url: str, session: str) -> ClientConnection:
    ws = await connect(f"{url}/ws/{session}", subprotocols=[SUBPROTOCOL], compression=None)
    await ws.send(json.dumps({"op": "subscribe", "id": 1}))
    await recv_op(ws, "subscribed")
    return ws


async def viewed(ws: ClientConnection, got: list[tuple[int, int]]) -> None:
    async for msg in ws:
        if isinstance(msg, bytes):
            df = frames.parse(msg)
            got.append((df.seq, df.n))


async def ack_of(ws: ClientConnection, seq: int) -> None:
    """Read acks until one reaches ``seq``."""
    while (await recv_op(ws, "ack"))["seq"] < seq:
        pass


async def test_ws_ingest_through_an_outage_acks_from_the_spool_and_stays_live(tmp_path):
    """With the store down, an agent's frames are still shown live and acked once spooled,
    a reconnect is answered the spooled high-water, and after recovery every frame is
    stored once."""
    store = OutageStore()
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        persistence = srv.app.state.persistence
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("out"))
        assert (await recv_op(ws, "ack"))["seq"] == -1
        got: list[tuple[int, int]] = []
        viewer = await open_viewer(srv.ws, "out")
        watching = asyncio.create_task(viewed(viewer, got))
        await ws.send(data(0, 10))
        await ack_of(ws, 9)
        store.down = True
        await ws.send(data(10, 10))
        await ack_of(ws, 19)
        assert persistence.spooling and persistence.spooled_frames == 10
        await ws.close()
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("out"))
        assert (await recv_op(ws, "ack"))["seq"] == 19
        await ws.send(data(15, 15))
        await ack_of(ws, 29)
        for _ in range(100):
            if got[-1:] == [(20, 10)]:
                break
            await asyncio.sleep(0.01)
        assert got == [(0, 10), (10, 10), (20, 10)]
        store.down = False
        for _ in range(500):
            if not persistence.spooling:
                break
            await asyncio.sleep(0.01)
        assert not persistence.spooling and persistence.healthy
        await ws.close()
        watching.cancel()
        await viewer.close()
        batch = await store.read_frames(session_id=SessionId("out"), stream_id=StreamId("car-1"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(30))
        assert store.written["car-1"] == list(range(30))


def advertise_two(session: str) -> str:
    """An advertise of car-1 (id 3) and car-2 (id 4)."""
    msg = json.loads(advertise(session))
    msg["streams"].append({"id": 4, "stream": "car-2", "channels": [0, 1, 2, 3, 4]})
    return json.dumps(msg)


async def test_a_new_stream_during_an_outage_waits_while_known_ones_go_on(tmp_path):
    """An advertise naming a known and a new stream while the store is down acks the known
    one at once and keeps it live, and acks the new one (-1) once the store is back."""
    store = OutageStore()
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("mix"))
        await ack_of(ws, -1)
        await ws.send(data(0, 10))
        await ack_of(ws, 9)
        await ws.close()
        store.down = True
        ws = await agent_socket(srv.ws)
        await ws.send(advertise_two("mix"))
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 3, "seq": 9}
        await ws.send(data(10, 10))
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 3, "seq": 19}
        assert srv.app.state.ingestor.live["mix"] == 1
        store.down = False
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 4, "seq": -1}
        await ws.close()
        summary = await store.get_session(SessionId("mix"))
        assert [s.info.stream_id for s in summary.streams] == ["car-1", "car-2"]


class StreamDownStore(MemoryStore):
    """A MemoryStore that cannot create stream ``car-2`` while ``car2_down``."""

    car2_down = True

    async def put_stream(self, session_id, info):  # type: ignore[no-untyped-def]
        if info.stream_id == "car-2" and self.car2_down:
            raise StoreUnavailable("connection refused")
        await super().put_stream(session_id, info)


async def test_data_of_a_stream_waiting_to_register_closes_1011_and_is_stored_after_reconnect():
    """Frames of a stream whose register failed (a synced agent re-sending at once) close the
    connection with 1011 instead of being dropped; after the reconnect they are stored."""
    store = StreamDownStore()
    async with running_server(store=store, chunk_age=0.05) as srv:
        ws = await agent_socket(srv.ws)
        await ws.send(advertise_two("wait"))
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 3, "seq": -1}
        await ws.send(data(0, 10))
        await ws.send(data(500, 10, group=4))
        assert await close_code(ws) == 1011
        store.car2_down = False
        ws = await agent_socket(srv.ws)
        await ws.send(advertise_two("wait"))
        acks = {(await recv_op(ws, "ack"))["stream"] for _ in range(2)}
        assert acks == {3, 4}
        await ws.send(data(500, 10, group=4))
        await ws.send(data(510, 10, group=4))
        while (ack := await recv_op(ws, "ack"))["stream"] != 4 or ack["seq"] < 519:
            pass
        await ws.close()
        batch = await store.read_frames(session_id=SessionId("wait"), stream_id=StreamId("car-2"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(500, 520))


async def test_a_re_advertise_with_a_full_spool_keeps_the_agent_live(tmp_path):
    """With the store down and the spool full, a re-advertise (a driver learned) is acked
    what is durable and the connection stays live; every frame is stored once the store is
    back."""
    store = OutageStore()
    async with running_server(
        store=store, spool_dir=tmp_path, spool_max=150, chunk_age=0.05
    ) as srv:
        persistence = srv.app.state.persistence
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("full"))
        await ack_of(ws, -1)
        await ws.send(data(0, 10))
        await ack_of(ws, 9)
        store.down = True
        await ws.send(data(10, 10))
        await ack_of(ws, 19)
        assert persistence.spool.full
        await ws.send(data(20, 10))
        for _ in range(100):
            if persistence.buffered_frames == 10:
                break
            await asyncio.sleep(0.01)
        msg = json.loads(advertise("full"))
        msg["streams"][0]["driver"] = "Ann"
        await ws.send(json.dumps(msg))
        assert await recv_op(ws, "ack") == {"op": "ack", "stream": 3, "seq": 19}
        viewer = await open_viewer(srv.ws, "full")
        got: list[tuple[int, int]] = []
        watching = asyncio.create_task(viewed(viewer, got))
        await ws.send(data(30, 10))
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.01)
        assert got == [(30, 10)]
        store.down = False
        await ack_of(ws, 39)
        await ws.close()
        watching.cancel()
        await viewer.close()
        batch = await store.read_frames(session_id=SessionId("full"), stream_id=StreamId("car-1"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(40))


async def test_agents_are_not_read_while_too_many_frames_wait_in_memory():
    """Past max_buffered frames in memory (a store down, no spool), the server stops reading
    agents and POST /ingest answers 503; once the store takes the frames everything sent is
    read, stored and acked."""
    store = OutageStore()
    async with running_server(store=store, chunk_age=0.05) as srv:
        persistence = srv.app.state.persistence
        persistence.max_buffered = 20
        stats = srv.app.state.stats
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("full"))
        await ack_of(ws, -1)
        await ws.send(data(0, 10))
        await ack_of(ws, 9)
        store.down = True
        for k in range(1, 11):
            await ws.send(data(k * 10, 10))
        await asyncio.sleep(0.3)
        assert stats.ingest_frames == 40 and persistence.buffered_frames == 30
        async with httpx.AsyncClient(base_url=srv.url) as client:
            r = await client.post("/ingest", params={"session_id": "http"}, json=[])
        assert r.status_code == 503
        store.down = False
        await ack_of(ws, 109)
        await ws.close()
        batch = await store.read_frames(session_id=SessionId("full"), stream_id=StreamId("car-1"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(110))


async def test_a_server_stops_while_an_agent_is_not_read():
    """A server whose agents are not read (too many frames in memory, the store still down)
    shuts down at once instead of waiting for room that never comes."""
    store = OutageStore()
    server = running_server(store=store, chunk_age=0.05)
    srv = await server.__aenter__()
    try:
        srv.app.state.persistence.max_buffered = 5
        ws = await agent_socket(srv.ws)
        await ws.send(advertise("stop"))
        await ack_of(ws, -1)
        store.down = True
        for k in range(3):
            await ws.send(data(k * 10, 10))
        for _ in range(100):
            if srv.app.state.persistence.memory_full:
                break
            await asyncio.sleep(0.01)
        assert srv.app.state.persistence.memory_full
    finally:
        started = time.monotonic()
        await server.__aexit__(None, None, None)
    assert time.monotonic() - started < 3
    assert await close_code(ws) in (1012, None)


# --- one agent connection per stream ------------------------------------------------------


def two_car_agent(session: str, *drivers: str) -> AgentPeer:
    """An AgentPeer of car-1 and car-2 driven by ``drivers``."""
    return AgentPeer(
        session=session,
        streams=[(f"car-{k + 1}", car_channels(), d, "") for k, d in enumerate(drivers)],
    )


async def attach(url: str, agent: AgentPeer) -> ClientConnection:
    """Connect ``agent`` to the server: hello and advertise sent."""
    ws = await agent_socket(url)
    agent.connection_made()
    for item in agent.outgoing():
        await ws.send(item)
    return ws


async def pump(ws: ClientConnection, agent: AgentPeer, *, acked: int) -> None:
    """Feed the server's messages to ``agent`` and send what it has, until every stream of
    it is acked up to ``acked``."""
    async with asyncio.timeout(5):
        for item in agent.outgoing():
            await ws.send(item)
        while any(agent.acked.get(s, -2) < acked for s in ("car-1", "car-2")):
            agent.receive_text(await ws.recv())
            for item in agent.outgoing():
                await ws.send(item)


async def refusal(ws: ClientConnection) -> tuple[list[dict], int | None]:
    """The statuses the server sends until it closes, and its close code."""
    statuses = []
    try:
        while True:
            msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if msg["op"] == "status":
                statuses.append(msg)
    except ConnectionClosed as exc:
        return statuses, exc.rcvd.code if exc.rcvd else None


async def until_gone(ingestor: Ingestor, session: str) -> None:
    """Wait until no agent connection of ``session`` is live on the server."""
    for _ in range(200):
        if not ingestor.live[session]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"an agent of {session} is still live")


def send_cars(agent: AgentPeer, start: int, n: int) -> None:
    for stream in ("car-1", "car-2"):
        agent.send_batch(stream, car_batch(start, n))


async def packets(store: MemoryStore, session: str, stream: str) -> list[int]:
    batch = await store.read_frames(session_id=SessionId(session), stream_id=StreamId(stream))
    return batch.columns["packet_id"].astype(int).tolist()


async def test_a_second_agent_sending_the_same_streams_is_closed_4009_and_the_first_keeps_them():
    """Two agents with the same session and stream names: the second gets status
    stream_taken and close code 4009 and registers nothing (the drivers stay the first's),
    the first goes on storing every frame; once the first is gone, a new agent is accepted
    and resumes after the stored seqs."""
    async with running_server(chunk_age=0.05) as srv:
        ingestor = srv.app.state.ingestor
        first = two_car_agent("dup", "Ann", "Ben")
        ws_first = await attach(srv.ws, first)
        await pump(ws_first, first, acked=-1)
        send_cars(first, 0, 10)
        await pump(ws_first, first, acked=9)

        second = two_car_agent("dup", "Cid", "Dan")
        ws_second = await attach(srv.ws, second)
        statuses, code = await refusal(ws_second)
        assert code == CLOSE_STREAM_TAKEN
        assert [(m["level"], m["code"]) for m in statuses] == [("error", "stream_taken")]
        assert "car-1" in statuses[0]["message"] and "dup" in statuses[0]["message"]
        assert "--session" in statuses[0]["message"]
        assert ingestor.live["dup"] == 1

        send_cars(first, 10, 10)
        await pump(ws_first, first, acked=19)
        for stream in ("car-1", "car-2"):
            assert await packets(srv.store, "dup", stream) == list(range(20))
        summary = await srv.store.get_session(SessionId("dup"))
        assert [s.info.driver for s in summary.streams] == ["Ann", "Ben"]
        await ws_first.close()
        await until_gone(ingestor, "dup")

        third = two_car_agent("dup", "Cid", "Dan")
        ws_third = await attach(srv.ws, third)
        await pump(ws_third, third, acked=19)  # the resume point: what is stored
        send_cars(third, 100, 5)
        await pump(ws_third, third, acked=24)
        await ws_third.close()
        for stream in ("car-1", "car-2"):
            assert await packets(srv.store, "dup", stream) == [*range(20), *range(100, 105)]


async def test_a_connection_that_drops_without_a_close_frees_its_streams_at_once():
    """An agent connection cut without a closing handshake (the agent killed) releases its
    streams as soon as the server sees the socket close: the agent's next connection is
    accepted, not refused."""
    async with running_server(chunk_age=0.05) as srv:
        agent = two_car_agent("cut", "Ann", "Ben")
        ws = await attach(srv.ws, agent)
        await pump(ws, agent, acked=-1)
        send_cars(agent, 0, 10)
        await pump(ws, agent, acked=9)
        ws.transport.abort()
        agent.connection_lost()
        await until_gone(srv.app.state.ingestor, "cut")
        ws = await attach(srv.ws, agent)
        send_cars(agent, 10, 10)
        await pump(ws, agent, acked=19)
        await ws.close()
        assert await packets(srv.store, "cut", "car-1") == list(range(20))
