"""The agent end to end: simulated cars → agent → real server → viewer and store."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys

import pytest
from websockets.asyncio.client import connect

from pitwire.agent.run import Agent
from pitwire.model.ids import SessionId, StreamId
from pitwire.protocol import SUBPROTOCOL, frames
from pitwire.sources.sim import SimSource
from pitwire.store.memory import MemoryStore
from support import running_server


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


class _GameLike:
    """A source that announces cars as it learns of them and changes session midway."""

    def __init__(self, items):  # type: ignore[no-untyped-def]
        from pitwire.sources.base import SourceInfo

        self.items = items
        self.info = SourceInfo(source="game")

    async def _gen(self):  # type: ignore[no-untyped-def]
        for item in self.items:
            yield item
            await asyncio.sleep(0.01)

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self._gen()


async def test_game_sessions_become_pitwire_sessions_with_late_driver_names(server):
    """Streams announced on the fly are stored with their drivers; a new game session goes
    to a new pitwire session and both are stored completely."""
    from pitwire.model.records import StreamInfo
    from pitwire.sources.base import SessionChange, StreamUpdate
    from support import car_batch, car_channels

    chans = list(car_channels().values())
    items = [
        SessionChange("uid-1", track=""),
        StreamUpdate(StreamInfo(stream_id="car-0", channels=chans)),
        (StreamId("car-0"), car_batch(0, 30)),
        SessionChange("uid-1", track="Monza"),  # the track became known
        StreamUpdate(StreamInfo(stream_id="car-0", driver="Alice", car="Ferrari", channels=chans)),
        (StreamId("car-0"), car_batch(30, 30)),
        SessionChange("uid-2", track="Spa"),
        StreamUpdate(StreamInfo(stream_id="car-0", driver="Bob", channels=chans)),
        StreamUpdate(StreamInfo(stream_id="car-1", driver="Carol", channels=chans)),
        (StreamId("car-0"), car_batch(0, 20)),
        (StreamId("car-1"), car_batch(0, 25)),
    ]
    agent = Agent(_GameLike(items), server=server.ws, session="night")
    report = await agent.run()
    assert report.sessions == ["night", "night-2"]
    assert report.unacked == 0 and report.frames_sent == 105
    await server.app.state.persistence.flush()
    first = await server.store.get_session(SessionId("night"))
    second = await server.store.get_session(SessionId("night-2"))
    assert first.info.track == "Monza" and second.info.track == "Spa"
    assert {s.info.stream_id: s.info.driver for s in first.streams} == {"car-0": "Alice"}
    assert {s.info.stream_id: s.info.driver for s in second.streams} == {
        "car-0": "Bob",
        "car-1": "Carol",
    }
    n = {
        (sess, car): (
            await server.store.read_frames(session_id=SessionId(sess), stream_id=StreamId(car))
        ).n
        for sess, car in [("night", "car-0"), ("night-2", "car-0"), ("night-2", "car-1")]
    }
    assert n == {("night", "car-0"): 60, ("night-2", "car-0"): 20, ("night-2", "car-1"): 25}


async def _binary_viewer(url: str, session: str, out: list, subscribed: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
    """Collects {channel: value} rows of every frame of a session, over protocol v1."""
    async with connect(f"{url}/ws/{session}", subprotocols=[SUBPROTOCOL], compression=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": 1}))
        names: dict[int, str] = {}
        groups: dict[int, list[int]] = {}
        async for msg in ws:
            if isinstance(msg, str):
                m = json.loads(msg)
                if m["op"] == "advertise":
                    names.update({c["id"]: c["name"] for c in m["channels"]})
                elif m["op"] == "subscribed":
                    groups.update({g["group"]: g["channels"] for g in m["groups"]})
                    subscribed.set()
                continue
            df = frames.parse(msg)
            for i in range(df.n):
                out.append({names[c]: float(df.columns[c][i]) for c in groups[df.group]})


async def test_forza_capture_over_real_udp_reaches_a_viewer_with_the_same_values(server):
    """The Laguna Seca CSV, re-encoded into Dash datagrams and sent over UDP to a running
    agent, arrives at a live viewer with the same speed, rpm, gear and position values."""
    from pitwire.sources.forza import ForzaDecoder, encode_dash, rows_from_csv
    from pitwire.sources.live import DecoderSource
    from pitwire.sources.udp import UdpTransport
    from support import UdpPeer, fixture

    rows = rows_from_csv(fixture("forza/laguna-seca.csv"))
    expected = []
    last_stamp = None
    for r in rows:  # what a viewer must see: racing rows, repeats of a timestamp dropped
        if r["IsRaceOn"] != 0 and r["TimestampMS"] != last_stamp:
            gear = {0: -1, 11: 0}.get(int(r["Gear"]), int(r["Gear"]))
            expected.append((r["Speed"] * 3.6, r["CurrentEngineRpm"], gear, r["RacePosition"]))
        last_stamp = r["TimestampMS"] if r["IsRaceOn"] else last_stamp
    assert len(expected) > 600

    seen: list[dict[str, float]] = []
    subscribed = asyncio.Event()
    viewer = asyncio.create_task(_binary_viewer(server.ws, "laguna", seen, subscribed))
    transport = UdpTransport(host="127.0.0.1", port=0)
    agent = Agent(DecoderSource(ForzaDecoder(), transport), server=server.ws, session="laguna")
    running = asyncio.create_task(agent.run())
    game = await UdpPeer.open()
    try:
        async with asyncio.timeout(5):
            while transport._transport is None:  # noqa: ASYNC110 - bound by the agent's task
                await asyncio.sleep(0.01)
        # Subscribed before the session exists: its cars are joined as they come.
        await asyncio.wait_for(subscribed.wait(), 5)
        for r in rows:
            game.send(encode_dash(r), transport.port)
            await asyncio.sleep(0.002)
        async with asyncio.timeout(10):
            while len(seen) < len(expected):  # noqa: ASYNC110 - filled by the viewer task
                await asyncio.sleep(0.05)
    finally:
        game.close()
        running.cancel()
        viewer.cancel()
        await asyncio.gather(running, viewer, return_exceptions=True)
    got = [(s["speed"], s["rpm"], s["gear"], s["position"]) for s in seen]
    assert len(got) == len(expected)
    for (speed, rpm, gear, pos), (e_speed, e_rpm, e_gear, e_pos) in zip(got, expected, strict=True):
        assert abs(speed - e_speed) <= 0.01 and abs(rpm - e_rpm) <= 0.5
        assert (gear, pos) == (e_gear, e_pos)


async def test_an_f1_capture_replayed_becomes_one_session_of_named_cars(server, tmp_path):
    """A raw capture of real F1 22 datagrams, replayed with --replay-raw through the agent,
    is stored as one session at its track with a stream per car named after its driver."""
    from pitwire.sources.base import Received
    from pitwire.sources.rawcapture import RawWriter
    from pitwire.sources.registry import CaptureOptions, make_source
    from support import fixture

    lines_2022 = fixture("f1-udp/2022.jsonl").read_text().splitlines()  # may skip: first
    capture = tmp_path / "jeddah.pwraw"
    writer = RawWriter(capture, source="f1")
    for i, line in enumerate(lines_2022):
        message = json.loads(line)["message"]
        data = bytes(message["data"] if isinstance(message, dict) else message)
        writer.write(Received(data, 1_650_000_000_000_000_000 + i * 1_000_000))
    writer.close()
    source = make_source("f1", capture=CaptureOptions(replay_raw=capture, replay_speed=0))
    report = await Agent(source, server=server.ws, session="jeddah").run()
    assert report.sessions == ["jeddah"] and report.unacked == 0
    await server.app.state.persistence.flush()
    stored = await server.store.get_session(SessionId("jeddah"))
    assert stored.info.track == "Jeddah" and stored.info.source == "f1"
    drivers = {s.info.stream_id: s.info.driver for s in stored.streams}
    assert len(drivers) == 20 and drivers["car-0"] == "RICCIARDO"
    assert all(drivers.values())
    assert sum(s.frames for s in stored.streams) == report.frames_sent == 20


async def test_a_capture_switching_sessions_stores_every_frame_of_every_session(server, tmp_path):
    """Real F1 23 datagrams from several game sessions, replayed as fast as possible: each
    game session becomes a pitwire session and every frame sent is stored before the agent
    ends (none is left behind in an earlier session's uplink)."""
    from pitwire.sources.base import Received
    from pitwire.sources.rawcapture import RawWriter
    from pitwire.sources.registry import CaptureOptions, make_source
    from support import fixture

    lines_2023 = fixture("f1-udp/2023.jsonl").read_text().splitlines()  # may skip: first
    capture = tmp_path / "mixed.pwraw"
    writer = RawWriter(capture, source="f1")
    for i, line in enumerate(lines_2023):
        message = json.loads(line)["message"]
        data = bytes(message["data"] if isinstance(message, dict) else message)
        writer.write(Received(data, 1_690_000_000_000_000_000 + i * 1_000_000))
    writer.close()
    source = make_source("f1", capture=CaptureOptions(replay_raw=capture, replay_speed=0))
    report = await Agent(source, server=server.ws, session="mixed").run()
    assert len(report.sessions) > 1  # the capture holds datagrams of several game sessions
    assert report.unacked == 0 and report.frames_sent > 0
    await server.app.state.persistence.flush()
    stored = 0
    for session in report.sessions:
        try:
            summary = await server.store.get_session(SessionId(session))
        except KeyError:
            continue  # a game session that sent no car frame
        stored += sum(s.frames for s in summary.streams)
    assert stored == report.frames_sent


async def test_stop_sends_what_was_read_and_waits_for_the_acks(server):
    """stop() ends reading; every frame read before it is sent and acked before run returns."""
    source = SimSource(cars=2, seed=3, rate_hz=60, realtime=True)
    agent = Agent(source, server=server.ws, session="stopped")
    running = asyncio.create_task(agent.run())
    await asyncio.sleep(0.5)
    agent.stop()
    report = await asyncio.wait_for(running, 10)
    assert report.frames_sent > 20 and report.unacked == 0
    await server.app.state.persistence.flush()
    stored = 0
    for car in ("car-1", "car-2"):
        batch = await server.store.read_frames(
            session_id=SessionId("stopped"), stream_id=StreamId(car)
        )
        stored += batch.n
    assert stored == report.frames_sent


async def test_a_replayed_recording_keeps_its_start_time_on_the_server(server, tmp_path):
    """A session created by replaying a file starts when the recording started, not now."""
    from pitwire import sessionfile
    from pitwire.sources.replay import ReplaySource
    from pwrgen import INFO, batch, streams

    path = tmp_path / "old.pwr"
    with sessionfile.create(path, INFO, streams=streams(1)) as w:
        w.write("car-0", batch(0, 0, 50))
    report = await Agent(ReplaySource(path, speed=0), server=server.ws, session="old").run()
    assert report.unacked == 0
    stored = await server.store.get_session(SessionId("old"))
    assert stored.info.started_ns == INFO.started_ns


# --- the spool, end to end -----------------------------------------------------------------


class GatedStore(MemoryStore):
    """A MemoryStore whose frame writes wait for ``gate``: the server receives frames but
    stores (and so acks) none until the gate opens."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def write_chunk(self, **kwargs):  # type: ignore[no-untyped-def,override]
        await self.gate.wait()
        return await super().write_chunk(**kwargs)


@contextlib.asynccontextmanager
async def server_on(port: int):  # type: ignore[no-untyped-def]
    """A server with the in-memory store on 127.0.0.1:``port``."""
    from pitwire.server.app import create_app, serve
    from support import RunningServer

    store = MemoryStore()
    app = create_app(store)
    ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(app, "127.0.0.1", port, on_ready=ready.set_result))
    await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    try:
        yield RunningServer(ready.result(), app, store)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def stored_packets(srv, session: str, cars: int) -> dict[str, list[int]]:  # type: ignore[no-untyped-def]
    """Per car, the packet ids the server stores (in seq order), after checking that its
    seqs run from 0 without a gap."""
    await srv.app.state.persistence.flush()
    out = {}
    for k in range(1, cars + 1):
        sid, st = SessionId(session), StreamId(f"car-{k}")
        batch = await srv.store.read_frames(session_id=sid, stream_id=st)
        assert await srv.store.stored_seqs(session_id=sid, stream_id=st) == batch.n - 1
        out[f"car-{k}"] = [int(p) for p in batch.columns["packet_id"]]
    return out


async def wait_received(srv, frames_: int) -> None:  # type: ignore[no-untyped-def]
    """Until the server has received ``frames_`` frames (held back from the store)."""
    async with asyncio.timeout(20):
        while srv.app.state.persistence.buffered_frames < frames_:  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_an_agent_stopped_without_draining_resumes_from_its_spool_exactly_once(tmp_path):
    """An agent cancelled while none of its frames is acked keeps them in the spool; a new
    agent of the same session re-sends them and continues the numbering: the server stores
    every frame once, with contiguous seqs."""
    spool = tmp_path / "spool"
    store = GatedStore()
    async with running_server(store) as srv:
        first = Agent(
            SimSource(cars=2, seed=5, duration=1.0, realtime=False),
            server=srv.ws,
            session="kept",
            spool_dir=spool,
        )
        running = asyncio.create_task(first.run(drain_timeout=30))
        await wait_received(srv, 120)
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        report = first.report()
        assert (report.frames_sent, report.unacked, report.spool) == (120, 120, str(spool))
        assert (spool / "kept").is_dir()
        store.gate.set()
        second = Agent(
            SimSource(cars=2, seed=5, duration=0.5, realtime=False),
            server=srv.ws,
            session="kept",
            spool_dir=spool,
        )
        report = await second.run()
        assert (report.resent, report.frames_sent, report.unacked, report.dropped) == (
            120,
            60,
            0,
            0,
        )
        assert (report.sessions, report.resumed) == (["kept"], [])
        packets = await stored_packets(srv, "kept", 2)
        assert packets == {car: [*range(60), *range(30)] for car in ("car-1", "car-2")}
        assert not (spool / "kept").exists()  # all acked: the spool is gone


async def test_frames_spooled_while_the_server_was_down_are_sent_by_the_next_run(tmp_path):
    """Frames an agent captured while its server was unreachable stay in the spool; the next
    agent for that server (another session) sends them first, so both sessions are stored
    complete."""
    spool, port = tmp_path / "spool", free_port()
    url = f"ws://127.0.0.1:{port}"
    offline = Agent(
        SimSource(cars=2, seed=2, duration=0.5, realtime=False),
        server=url,
        session="offline",
        spool_dir=spool,
    )
    report = await offline.run(drain_timeout=0.3)
    assert (report.frames_sent, report.unacked) == (60, 60)
    async with server_on(port) as srv:
        later = Agent(
            SimSource(cars=2, seed=2, duration=0.25, realtime=False),
            server=url,
            session="later",
            spool_dir=spool,
        )
        report = await later.run()
        assert (report.sessions, report.resumed) == (["later"], ["offline"])
        assert (report.resent, report.frames_sent, report.unacked) == (60, 30, 0)
        assert await stored_packets(srv, "offline", 2) == {
            car: list(range(30)) for car in ("car-1", "car-2")
        }
        assert await stored_packets(srv, "later", 2) == {
            car: list(range(15)) for car in ("car-1", "car-2")
        }
    assert list(spool.iterdir()) == []


async def test_a_killed_agent_process_resumes_from_its_spool_exactly_once(tmp_path):
    """`pitwire agent` killed with SIGKILL after sending frames the server had not stored
    yet: a restarted agent of that session re-sends them (the server keeps each once) and
    numbers its own after them."""
    spool = tmp_path / "spool"
    store = GatedStore()
    async with running_server(store) as srv:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "pitwire",
            "agent",
            *("--source", "sim", "--cars", "2", "--rate", "60", "--duration", "1"),
            *("--server", srv.ws, "--session", "killed", "--spool-dir", str(spool)),
            *("--log-level", "error"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            await wait_received(srv, 120)
        finally:
            proc.kill()
            _, err = await proc.communicate()
        assert proc.returncode == -signal.SIGKILL, err.decode()
        store.gate.set()
        agent = Agent(
            SimSource(cars=2, seed=0, duration=0.5, realtime=False),
            server=srv.ws,
            session="killed",
            spool_dir=spool,
        )
        report = await agent.run()
        assert (report.resent, report.frames_sent, report.unacked) == (120, 60, 0)
        packets = await stored_packets(srv, "killed", 2)
        assert packets == {car: [*range(60), *range(30)] for car in ("car-1", "car-2")}


class _GameUntil(_GameLike):
    """A game-like source that, after its items, waits for ``done`` before it ends."""

    def __init__(self, items, done: asyncio.Event):  # type: ignore[no-untyped-def]
        super().__init__(items)
        self.done = done

    async def _gen(self):  # type: ignore[no-untyped-def]
        for item in self.items:
            yield item
        await self.done.wait()


async def test_an_earlier_sessions_uplink_runs_until_its_frames_are_acked():
    """Without a spool, a game session's frames not yet acknowledged when the next session
    starts are kept sending for as long as it takes (here the server comes up well after
    6 x drain_timeout), not abandoned: both sessions are stored complete."""
    from pitwire.model.records import StreamInfo
    from pitwire.sources.base import SessionChange, StreamUpdate
    from support import car_batch, car_channels

    chans = list(car_channels().values())
    done = asyncio.Event()
    items = [
        SessionChange("uid-1", track="Monza"),
        StreamUpdate(StreamInfo(stream_id="car-0", channels=chans)),
        (StreamId("car-0"), car_batch(0, 30)),
        SessionChange("uid-2", track="Spa"),
        StreamUpdate(StreamInfo(stream_id="car-0", channels=chans)),
        (StreamId("car-0"), car_batch(0, 20)),
    ]
    port = free_port()
    agent = Agent(_GameUntil(items, done), server=f"ws://127.0.0.1:{port}", session="late")
    running = asyncio.create_task(agent.run(drain_timeout=0.1))
    try:
        await asyncio.sleep(1.5)
        assert agent.report().sessions == ["late", "late-2"]
        async with server_on(port) as srv:
            async with asyncio.timeout(20):
                while agent.report().unacked:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            done.set()
            report = await running
            assert (report.frames_sent, report.unacked) == (50, 0)
            await srv.app.state.persistence.flush()
            n = {
                sess: (
                    await srv.store.read_frames(
                        session_id=SessionId(sess), stream_id=StreamId("car-0")
                    )
                ).n
                for sess in ("late", "late-2")
            }
            assert n == {"late": 30, "late-2": 20}
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


async def test_without_a_spool_what_waits_for_the_socket_is_bounded():
    """Without a spool, frames the socket has not taken yet wait in the memory keeper, not
    in the peer's outgoing queue: a slow link does not grow it past the agent's bound on
    out bytes, and every frame still comes out, in order."""
    from pitwire.agent.run import OUT_BYTES
    from pitwire.protocol import messages
    from pitwire.protocol.messages import Ack
    from support import ScriptedSource, car_batch

    agent = Agent(ScriptedSource([]), server="ws://127.0.0.1:9", session="slow")
    peer = agent.peer
    peer.connection_made()
    peer.outgoing()
    peer.receive_text(messages.encode(Ack(stream=1, seq=-1)))
    batches = 6 * OUT_BYTES // 3_000  # 100 frames are over 3 kB: 6 x OUT_BYTES in all
    for i in range(batches):
        agent.uplink.submit("car-1", car_batch(i * 100, 100))
    out = peer.outgoing()
    assert sum(len(o) for o in out) <= 2 * OUT_BYTES + len(out[-1])
    seqs = [frames.parse(o).seq for o in out if isinstance(o, bytes)]
    while peer.backlog:
        seqs += [frames.parse(o).seq for o in peer.outgoing() if isinstance(o, bytes)]
    assert seqs == list(range(0, batches * 100, 100))


class _Gated:
    """``inner``, starting once ``ready()`` is true."""

    def __init__(self, inner: SimSource) -> None:
        self.inner = inner
        self.info = inner.info
        self.ready = lambda: True

    async def _gen(self):  # type: ignore[no-untyped-def]
        while not self.ready():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        async with contextlib.aclosing(aiter(self.inner)) as items:
            async for item in items:
                yield item

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self._gen()


async def test_a_spool_smaller_than_what_awaits_acks_drops_nothing_a_healthy_server_stores(
    tmp_path, caplog
):
    """The trial's case: 20 cars into a spool smaller than what waits for the server's acks
    (about a second): the spool drops segments of frames already sent, the server stores
    them and acks them, so the report counts nothing dropped and nothing is warned about."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    async with running_server() as srv:
        # The cars start once the server has answered for every stream: frames held back
        # longer than the small spool lasts would be dropped unsent (really lost).
        source = _Gated(SimSource(cars=20, seed=1, rate_hz=60, duration=1.5, realtime=True))
        agent = Agent(source, server=srv.ws, session="small", spool_dir=tmp_path, spool_max=150_000)
        source.ready = lambda: len(agent.peer.acked) == 20
        report = await agent.run()
        packets = await stored_packets(srv, "small", 20)
    assert agent.leg.spool is not None and agent.leg.spool.dropped > 0  # the bound was hit
    assert (report.frames_sent, report.unacked, report.dropped) == (1800, 0, 0)
    assert packets == {f"car-{k}": list(range(90)) for k in range(1, 21)}
    assert "dropped" not in caplog.text


async def test_frames_dropped_before_they_were_sent_stay_dropped_when_the_server_acks_past(
    tmp_path, caplog
):
    """Frames the spool dropped while the server was down never reach it; when it comes up
    it acks past their seqs (it acks what it received), yet the report counts them dropped,
    exactly the frames the server is missing, with a warning per stream and a total."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    port = free_port()
    agent = Agent(
        SimSource(cars=20, seed=3, rate_hz=60, duration=3, realtime=False),
        server=f"ws://127.0.0.1:{port}",
        session="outage",
        spool_dir=tmp_path,
        spool_max=150_000,
    )
    running = asyncio.create_task(agent.run(drain_timeout=30))
    try:
        async with asyncio.timeout(20):
            while agent.frames_sent < 3600:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with server_on(port) as srv:
            report = await running
            await srv.app.state.persistence.flush()
            stored = 0
            for k in range(1, 21):
                stored += (
                    await srv.store.read_frames(
                        session_id=SessionId("outage"), stream_id=StreamId(f"car-{k}")
                    )
                ).n
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert report.dropped > 0 and report.unacked == 0
    assert stored == report.frames_sent - report.dropped
    lines = [r.getMessage() for r in caplog.records if "spool full" in r.getMessage()]
    per_stream = [m for m in lines if m.startswith("dropped ")]
    assert 0 < len(per_stream) <= 20  # within 5 s: at most one line per stream
    assert sum(int(m.split()[1]) for m in per_stream) <= report.dropped
    assert f"session outage: {report.dropped} frames in all were dropped" in lines[-1]


def test_spools_of_earlier_runs_are_matched_and_named_without_passwords(tmp_path, caplog):
    """Spools earlier runs left (older versions kept the password in them) are resumed for
    the same server whatever its password, and those for another server are named with the
    password masked, with how to discard them."""
    from pitwire.agent.spool import Spool
    from pitwire.protocol.messages import ChannelDesc
    from support import ScriptedSource

    caplog.set_level(logging.WARNING, "pitwire.agent")
    for session, server in (("same", "127.0.0.1:9"), ("other", "other.example:1")):
        spool = Spool(tmp_path / session)
        spool.server = f"ws://bob:S3cretPW@{server}/ws/ingest"  # as older versions wrote it
        spool.note_session(session=session, track="", source="sim", started_ns=0)
        spool.note_stream("car-1", id=1, channels=[ChannelDesc(id=0, name="x")], driver="", car="")
        spool.keep("car-1", 9, b"\0" * 64, 10)
        spool.close()
    agent = Agent(
        ScriptedSource([]),
        server="ws://bob:N3wPW@127.0.0.1:9",
        session="new",
        spool_dir=tmp_path,
    )
    try:
        assert agent.report().resumed == ["same"]
    finally:
        for leg in agent._legs:
            assert leg.spool is not None
            leg.spool.close()
    assert (
        f"spool {tmp_path / 'other'} holds 10 unsent frames of session other for "
        "ws://bob:***@other.example:1/ws/ingest" in caplog.text
    )
    assert f"pitwire agent --discard-spool other --spool-dir {tmp_path}" in caplog.text
    assert "S3cretPW" not in caplog.text and "N3wPW" not in caplog.text


def test_an_unusable_server_url_is_refused_before_a_spool_is_made(tmp_path):
    """Agent raises ValueError for a server URL it cannot use, before making any spool."""
    from support import ScriptedSource

    for server in ("ftp://127.0.0.1:8611", "ws://127.0.0.1:99999"):
        with pytest.raises(ValueError, match=r"is not supported|from 1 to 65535"):
            Agent(ScriptedSource([]), server=server, session="bad", spool_dir=tmp_path / "sp")
    assert not (tmp_path / "sp").exists()
