"""Replay and delayed-live over real WebSockets: epochs, pacing, controls, conflation."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import statistics
import time
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import ClientConnection, connect

from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol.state import StateDecoder, StateFrame
from racesession import PERIOD, SECOND, T0, GatedSocket, expected_packet, store_session
from support import car_batch, car_channels, running_server


class ReplayClient:
    """A viewer of a replay: keeps the advertised channels, its groups and decoded state."""

    def __init__(self, ws: ClientConnection, advertise: dict[str, Any]) -> None:
        self.ws = ws
        self.channels = {c["id"]: c for c in advertise["channels"]}
        self.streams = {s["id"]: s["stream"] for s in advertise["streams"]}
        self.decoder = StateDecoder({})
        self.groups: dict[int, tuple[str, list[str]]] = {}
        self.clocks: list[dict[str, Any]] = []
        self.statuses: list[dict[str, Any]] = []

    async def replay(self, **fields: Any) -> dict[str, Any]:
        await self.ws.send(json.dumps({"op": "replay", "id": 1, **fields}))
        while True:
            msg = await self.next_control()
            if msg["op"] == "subscribed":
                self.subscribed(msg)
            elif msg["op"] == "clock" or (msg["op"] == "status" and msg["level"] == "error"):
                return msg

    def subscribed(self, msg: dict[str, Any]) -> None:
        for g in msg["groups"]:
            names = [self.channels[c]["name"] for c in g["channels"]]
            self.groups[g["group"]] = (self.streams[g["stream"]], names)
            resolutions = [self.channels[c]["resolution"] for c in g["channels"]]
            self.decoder.add_group(g["group"], resolutions)

    async def next_control(self) -> dict[str, Any]:
        while True:
            msg = await asyncio.wait_for(self.ws.recv(), 5)
            if isinstance(msg, str):
                return json.loads(msg)

    async def control(self, action: str, **fields: Any) -> None:
        await self.ws.send(json.dumps({"op": "control", "id": 1, "action": action, **fields}))

    async def next(self, wait: float = 5) -> StateFrame | dict[str, Any]:
        """The next STATE frame (applied) or control message."""
        msg = await asyncio.wait_for(self.ws.recv(), wait)
        if isinstance(msg, str):
            m = json.loads(msg)
            if m["op"] == "clock":
                self.clocks.append(m)
            elif m["op"] == "subscribed":
                self.subscribed(m)
            elif m["op"] == "status":
                self.statuses.append(m)
            return m
        frame = self.decoder.apply(msg)
        assert frame is not None, "a frame of an older epoch arrived"
        return frame

    async def frame(self, wait: float = 5) -> StateFrame:
        while True:
            got = await self.next(wait)
            if isinstance(got, StateFrame):
                return got

    def value(self, stream: str, channel: str) -> float:
        for gid, (name, names) in self.groups.items():
            if name == stream:
                return float(self.decoder.state[gid][names.index(channel)])
        raise KeyError(stream)


async def open_replay(url: str, session: str, **fields: Any) -> tuple[ReplayClient, dict[str, Any]]:
    ws = await connect(f"{url}/ws/{session}", subprotocols=[SUBPROTOCOL], compression=None)
    json.loads(await ws.recv())  # serverInfo
    client = ReplayClient(ws, json.loads(await ws.recv()))
    clock = await client.replay(**fields)
    return client, clock


async def test_replay_starts_with_a_keyframe_of_every_car_at_the_clock():
    """Opening a replay answers subscribed and clock, then a keyframe holding every car's
    stored state at the clock's instant, then deltas that track the stored frames."""
    async with running_server() as srv:
        await store_session(srv.store)
        client, clock = await open_replay(srv.ws, "race", t=T0 + 10 * SECOND)
        assert clock["epoch"] == 1 and clock["playing"]
        first = await client.frame()
        assert first.keyframe and first.epoch == 1
        assert len(first.values) == 3
        for car in range(3):
            assert client.value(f"car-{car + 1}", "packet_id") == expected_packet(first.t_ns, car)
        for _ in range(10):
            f = await client.frame()
            assert not f.keyframe
            for car in range(3):
                got = client.value(f"car-{car + 1}", "packet_id")
                assert got == expected_packet(f.t_ns, car)
                assert client.value(f"car-{car + 1}", "speed") == pytest.approx(
                    100 + (got % 1000) * 0.25, abs=0.01
                )
        await client.ws.close()


async def test_a_seek_storm_never_delivers_a_frame_of_an_old_epoch():
    """Fifty seeks sent back to back: once the clock of an epoch has arrived no frame of an
    older epoch follows, the first frame of each epoch reached is a keyframe, and the replay
    settles at the last seek's instant."""
    async with running_server() as srv:
        await store_session(srv.store)
        client, _ = await open_replay(srv.ws, "race")
        await client.frame()
        rng = np.random.default_rng(7)
        print("seed 7")
        targets = [int(T0 + rng.uniform(0, 55) * SECOND) for _ in range(50)]
        for t in targets:
            await client.control("seek", t=t)
        announced = 1
        keyed: set[int] = {1}
        while True:
            raw = await asyncio.wait_for(client.ws.recv(), 5)
            if isinstance(raw, str):
                msg = json.loads(raw)
                if msg["op"] == "clock":
                    announced = max(announced, msg["epoch"])
                continue
            flags, epoch = raw[1], int.from_bytes(raw[4:8], "little")
            assert epoch >= announced, f"frame of epoch {epoch} after clock of {announced}"
            if epoch not in keyed:
                assert flags & 1, f"the first frame of epoch {epoch} is not a keyframe"
                keyed.add(epoch)
            frame = client.decoder.apply(raw)
            assert frame is not None
            if epoch == 51:
                break
        assert frame.keyframe
        assert frame.t_ns - targets[-1] < 0.2 * SECOND
        assert client.value("car-1", "packet_id") == expected_packet(frame.t_ns)
        await client.ws.close()


async def test_pause_holds_and_play_resumes_from_the_same_instant():
    """While paused the clock stands still: the only frame sent is the state at the paused
    instant; play continues from that instant."""
    async with running_server() as srv:
        await store_session(srv.store)
        client, _ = await open_replay(srv.ws, "race")
        await client.frame()
        await client.control("pause")
        paused = await client.next_control()
        while paused["op"] != "clock":
            paused = await client.next_control()
        assert not paused["playing"]
        held = []
        end = time.monotonic() + 0.6
        while (left := end - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                got = await client.next(wait=left)
                if isinstance(got, StateFrame):
                    held.append(got.t_ns)
        assert held == [paused["t"]] or held == []
        assert client.value("car-1", "packet_id") == expected_packet(paused["t"])
        await client.control("play")
        resumed = await client.frame()
        assert resumed.epoch == 1 and not resumed.keyframe
        assert 0 <= resumed.t_ns - paused["t"] < 0.1 * SECOND
        await client.ws.close()


@pytest.mark.parametrize("speed", [0.1, 1.0, 64.0])
async def test_replay_keeps_time_at_any_speed(speed: float):
    """Session time advances at ``speed`` times wall time, measured over the frames received
    in about a second."""
    async with running_server() as srv:
        await store_session(srv.store, cars=2, frames=7200)  # 120 s: 64x lasts ~1.9 s
        client, _ = await open_replay(srv.ws, "race", speed=speed)
        first = await client.frame()
        start_wall = time.monotonic()
        last = first
        while time.monotonic() - start_wall < 1.0:
            last = await client.frame()
        elapsed = time.monotonic() - start_wall
        advanced = (last.t_ns - first.t_ns) / SECOND
        assert advanced / elapsed == pytest.approx(speed, rel=0.08)
        assert client.value("car-1", "packet_id") == expected_packet(last.t_ns)
        await client.ws.close()


async def test_replay_paces_to_the_requested_rate():
    """A viewer asking for 10 fps gets a frame every tenth of a second (at 1x, 0.1 s of
    session time apart), and no more; a loaded machine may skip a tick, never queue one."""
    async with running_server() as srv:
        await store_session(srv.store, cars=1)
        client, _ = await open_replay(srv.ws, "race", fps=10)
        await client.frame()
        start = time.monotonic()
        times = []
        while time.monotonic() - start < 2.0:
            times.append((await client.frame()).t_ns)
        spacing = statistics.median(b - a for a, b in itertools.pairwise(times)) / SECOND
        assert spacing == pytest.approx(0.1, abs=0.01)
        assert 15 <= len(times) <= 22
        await client.ws.close()


async def test_replay_stops_at_the_end_and_says_so():
    """At the session's end the clock pauses and a clock message with ended=true is sent."""
    async with running_server() as srv:
        await store_session(srv.store, cars=1, frames=600)  # 10 s
        client, _ = await open_replay(srv.ws, "race", speed=64)
        while True:
            got = await client.next()
            if isinstance(got, dict) and got.get("ended"):
                break
        assert not got["playing"] and got["t"] == got["end"]
        final = await client.frame()
        assert final.t_ns == got["end"]
        assert client.value("car-1", "packet_id") == 599
        await client.ws.close()


async def test_seek_to_a_lap_and_step():
    """Seeking to lap 2 of a car lands on its first frame, and to the lap under way (not
    listed yet) on the frame after the last listed lap; a step pauses and moves the clock by
    the time asked."""
    async with running_server() as srv:
        await store_session(srv.store, frames=4000)  # laps 1-3 listed, lap 4 under way
        client, _ = await open_replay(srv.ws, "race", paused=True)
        await client.frame()
        await client.control("seek", lap=4, stream=2)
        await client.frame()
        assert client.value("car-2", "packet_id") == 3600
        await client.ws.close()
        client, _ = await open_replay(srv.ws, "race", paused=True)
        await client.frame()
        await client.control("seek", lap=2, stream=2)
        frame = await client.frame()
        assert frame.keyframe and frame.epoch == 2
        assert client.value("car-2", "packet_id") == 1200
        await client.control("step", by=0.5)
        frame = await client.frame()
        assert frame.epoch == 3
        assert frame.t_ns == T0 + 1000 + 1200 * PERIOD + SECOND // 2
        assert client.value("car-2", "packet_id") == expected_packet(frame.t_ns, 1)
        assert not client.clocks[-1]["playing"]
        await client.ws.close()


async def test_bad_replay_requests_get_a_status_naming_the_problem():
    """Out-of-range speed, an unknown lap, an empty or unknown channel selection, a session
    that does not exist (with or without delay) and a control without a replay are answered
    with errors, and the connection stays usable."""
    async with running_server() as srv:
        await store_session(srv.store, cars=1)
        client, answer = await open_replay(srv.ws, "race", speed=100)
        assert answer["op"] == "status" and "speed" in answer["message"]
        await client.control("pause")
        assert "no replay" in (await client.next_control())["message"]
        clock = await client.replay()
        assert clock["op"] == "clock"
        await client.control("seek", lap=99)
        while True:
            got = await client.next()
            if isinstance(got, dict) and got["op"] == "status":
                break
        assert got["code"] == "replay_refused" and "no lap 99" in got["message"]
        for channels, problem in (([], "channels is empty"), ([0, 999], "unknown channel id 999")):
            answer = await client.replay(channels=channels)
            assert answer["op"] == "status" and problem in answer["message"]
        await client.ws.close()
        for delay in (None, 5):
            other, answer = await open_replay(srv.ws, "nothing-here", delay=delay)
            assert answer["op"] == "status"
            assert "no session 'nothing-here' is stored or live" in answer["message"]
            await other.ws.close()


class LiveCars:
    """A source of frames stamped with the wall clock, every 20 ms, remembering what it sent."""

    def __init__(self, cars: int) -> None:
        from support import ScriptedSource

        self.info = ScriptedSource([], cars=cars).info
        self.cars = cars
        self.sent: list[tuple[int, int]] = []  # (t_ns, packet id), the same for every car
        self.stop = asyncio.Event()

    async def _gen(self):  # type: ignore[no-untyped-def]
        from pitwire.model.frames import FrameBatch

        i = 0
        while not self.stop.is_set():
            t = time.time_ns()
            self.sent.append((t, i))
            for k in range(self.cars):
                yield (
                    f"car-{k + 1}",
                    FrameBatch(
                        np.array([t], np.int64),
                        {
                            "speed": np.array([100 + k], np.float32),
                            "rpm": np.array([5000], np.float32),
                            "gear": np.array([3], np.float32),
                            "lap": np.array([1], np.float32),
                            "packet_id": np.array([i], np.float64),
                        },
                    ),
                )
            i += 1
            await asyncio.sleep(0.02)

    def __aiter__(self):  # type: ignore[no-untyped-def]
        return self._gen()

    def packet_at(self, t_ns: int) -> int:
        import bisect

        k = bisect.bisect_right([t for t, _ in self.sent], t_ns) - 1
        return self.sent[k][1]


async def test_delayed_live_shows_every_stream_exactly_the_delay_behind():
    """A delayed-live viewer's clock runs the set delay behind the wall clock and each car's
    state is the live frame the car had at that instant, for every car alike."""
    from pitwire.agent.run import Agent

    async with running_server() as srv:
        cars = LiveCars(3)
        agent = asyncio.create_task(Agent(cars, server=srv.ws, session="live").run())
        await asyncio.sleep(1.5)  # the viewer joins a session already under way
        client, clock = await open_replay(srv.ws, "live", delay=1.0)
        assert clock["op"] == "clock" and clock["delay"] == 1.0
        assert abs(time.time_ns() - 1.0 * SECOND - clock["t"]) < 0.05 * SECOND
        lags = []
        while len(lags) < 40:
            frame = await client.frame()
            lags.append((time.time_ns() - frame.t_ns) / SECOND)
            for k in range(3):
                assert client.value(f"car-{k + 1}", "packet_id") == cars.packet_at(frame.t_ns)
        # The lag is the delay plus the time a frame takes to the client: a millisecond or
        # so, more on a loaded machine.
        assert statistics.median(lags) == pytest.approx(1.0, abs=0.02)
        assert max(lags) < 1.15 and min(lags) >= 1.0
        await client.ws.close()
        cars.stop.set()
        await agent


async def test_a_delay_longer_than_the_session_starts_before_its_first_frame():
    """A delay longer than the session has run puts the clock at now - delay, before any
    frame: no car is announced yet; each is, with its values, when the clock reaches it."""
    from pitwire.agent.run import Agent

    async with running_server() as srv:
        cars = LiveCars(2)
        agent = asyncio.create_task(Agent(cars, server=srv.ws, session="young").run())
        await asyncio.sleep(0.5)
        client, clock = await open_replay(srv.ws, "young", delay=1.5)
        assert clock["start"] <= clock["t"] <= clock["end"]
        assert abs(time.time_ns() - 1.5 * SECOND - clock["t"]) < 0.05 * SECOND
        first = await client.frame()
        assert first.t_ns < cars.sent[0][0]
        assert client.groups == {}  # no car has started at the clock's instant
        while (frame := await client.frame()).t_ns < cars.sent[0][0] + 0.2 * SECOND:
            pass
        assert client.value("car-1", "packet_id") == cars.packet_at(frame.t_ns)
        await client.ws.close()
        cars.stop.set()
        await agent


async def test_delayed_live_refuses_a_session_that_is_not_live_or_a_delay_too_long():
    """Delayed-live of a stored, finished session, or beyond the server's maximum delay, is
    refused with a message saying what to do instead."""
    async with running_server(max_delay=30) as srv:
        await store_session(srv.store, cars=1)
        client, answer = await open_replay(srv.ws, "race", delay=5)
        assert answer["op"] == "status" and "not live" in answer["message"]
        answer = await client.replay(delay=60)
        assert answer["op"] == "status" and "--max-delay" in answer["message"]
        await client.ws.close()


async def test_delayed_viewers_opening_together_share_a_fully_primed_tail():
    """A second delayed-live viewer opening while the first one's tail is still read from
    the store waits for it, and both clocks reach back over the stored frames."""
    from pitwire.model.channels import ChannelSet
    from pitwire.protocol.messages import Replay
    from pitwire.server.hub import Hub
    from pitwire.server.live import WsViewer
    from pitwire.server.replay import Replays
    from pitwire.server.stats import ServerStats
    from pitwire.store.memory import MemoryStore

    class Slow(MemoryStore):
        async def read_window(self, **kw: Any) -> Any:
            await asyncio.sleep(0.3)
            return await super().read_window(**kw)

    store = Slow()
    await store.open()
    now = time.time_ns()
    sid = SessionId("live")
    await store.put_session(SessionInfo(session_id=sid, started_ns=now - 60 * SECOND))
    channels = list(car_channels().values())
    await store.put_stream(sid, StreamInfo(stream_id=StreamId("car-1"), channels=channels))
    frames = car_batch(0, 3600, t0_ns=now - 60 * SECOND)
    await store.write_chunk(session_id=sid, stream_id=StreamId("car-1"), first_seq=0, batch=frames)
    hub = Hub(asyncio.get_running_loop().call_later)
    hub.add_stream("live", "car-1", ChannelSet(channels))
    hub.publish("live", "car-1", 3420, frames.slice(3420, 3600), now)
    replays = Replays(hub=hub, store=store)

    def viewer() -> WsViewer:
        v = WsViewer(GatedSocket(), ServerStats(), lag_limit=10)  # type: ignore[arg-type]
        v.task = asyncio.create_task(v.writer())
        return v

    opening = asyncio.create_task(replays.open("live", viewer(), Replay(id=1, delay=30)))
    await asyncio.sleep(0.05)
    second = await replays.open("live", viewer(), Replay(id=1, delay=30))
    first = await opening
    for player in (first, second):
        assert player.clock.start_ns <= now - 55 * SECOND
        assert player.timeline.row("car-1", ["packet_id"], now - 30 * SECOND) is not None
        replays.release(player)
    assert hub.sessions["live"].taps == []


async def test_a_car_joining_a_live_session_reaches_a_delayed_viewer_the_delay_later():
    """A delayed-live viewer is told of a car that joins (subscribed) only once its clock
    reaches the car's first frame, like everything else it shows."""
    from pitwire.model.channels import ChannelSet
    from pitwire.model.frames import FrameBatch
    from pitwire.protocol.messages import Replay
    from pitwire.server.hub import Hub
    from pitwire.server.live import WsViewer
    from pitwire.server.replay import Replays
    from pitwire.server.stats import ServerStats
    from pitwire.store.memory import MemoryStore

    store = MemoryStore()
    await store.open()
    hub = Hub(asyncio.get_running_loop().call_later)
    channels = ChannelSet([c for c in car_channels().values() if c.name == "packet_id"])
    joined: dict[str, int] = {}

    async def feed() -> None:
        i = 0
        while True:
            for car in ("car-1", "car-2") if i >= 25 else ("car-1",):
                if car not in joined:
                    hub.add_stream("live", car, channels)
                    joined[car] = time.time_ns()
                t = np.array([time.time_ns()], np.int64)
                hub.publish("live", car, i, FrameBatch(t, {"packet_id": np.array([i * 1.0])}), 0)
            i += 1
            await asyncio.sleep(0.02)

    feeding = asyncio.create_task(feed())
    await asyncio.sleep(0.2)
    sock = GatedSocket()
    viewer = WsViewer(sock, ServerStats(), lag_limit=10)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    replays = Replays(hub=hub, store=store)
    player = await replays.open("live", viewer, Replay(id=1, delay=1.0))
    seen: dict[int, int] = {}
    while len(seen) < 2:
        await asyncio.sleep(0.01)
        for m in sock.log:
            if isinstance(m, dict) and m["op"] == "subscribed":
                for g in m["groups"]:
                    seen.setdefault(g["stream"], time.time_ns())
    car2 = hub.sessions["live"].streams["car-2"].sid
    late = (seen[car2] - joined["car-2"]) / SECOND
    assert late == pytest.approx(1.0, abs=0.15)
    feeding.cancel()
    replays.release(player)
    viewer.task.cancel()


async def test_replay_figures_are_in_the_server_stats():
    """GET /api/stats counts replays, their frames and bytes, and the shared block cache."""
    import httpx

    async with running_server() as srv:
        await store_session(srv.store, cars=2)
        client, _ = await open_replay(srv.ws, "race")
        for _ in range(5):
            await client.frame()
        async with httpx.AsyncClient(base_url=srv.url) as http:
            figures = (await http.get("/api/stats")).json()["replay"]
        await client.ws.close()
    assert figures["players"] == 1 and figures["keyframes"] >= 1
    assert figures["frames"] >= 5 and figures["bytes"] > 16 * 5
    assert 0 < figures["cache_bytes"] <= figures["cache_budget"]
