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
