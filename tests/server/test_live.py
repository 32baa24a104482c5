"""Live viewers over real WebSockets: the binary protocol, groups, lagging and slow viewers."""
# The lagging/recovered status sequence is pinned in test_live_viewer_status below, with a
# socket stand-in whose writes we hold back; a real stuck client cannot read it.

from __future__ import annotations

import asyncio
import json
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from pitwire.agent.run import Agent
from pitwire.protocol import SUBPROTOCOL, frames
from pitwire.server.hub import Payload
from support import ScriptedSource, car_batch, running_server


async def open_viewer(url: str, session: str, **kw):  # type: ignore[no-untyped-def]
    ws = await connect(f"{url}/ws/{session}", subprotocols=[SUBPROTOCOL], compression=None, **kw)
    info = json.loads(await ws.recv())
    advertise = json.loads(await ws.recv())
    return ws, info, advertise


async def recv_json(ws, op: str):  # type: ignore[no-untyped-def]
    while True:
        msg = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(msg, str) and json.loads(msg)["op"] == op:
            return json.loads(msg)


async def test_binary_viewer_gets_advertise_subscribed_and_exact_frames(server):
    """A binary viewer gets serverInfo and advertise, subscribes to two channels of one car,
    and receives data frames carrying exactly those columns with the agent's values."""
    batches = [("car-1", car_batch(i * 10, 10)) for i in range(5)]
    # Register the session first so the viewer's advertise lists the car.
    first = Agent(ScriptedSource(batches[:1]), server=server.ws, session="live1")
    await first.run()
    ws, info, adv = await open_viewer(server.ws, "live1")
    assert info["op"] == "serverInfo" and info["protocol"] == 1 and info["session"] == "live1"
    assert adv["op"] == "advertise" and [s["stream"] for s in adv["streams"]] == ["car-1"]
    ids = {c["name"]: c["id"] for c in adv["channels"]}
    await ws.send(json.dumps({"op": "hello", "protocol": 1, "role": "viewer"}))
    await ws.send(json.dumps({"op": "subscribe", "id": 9, "channels": [ids["speed"], ids["rpm"]]}))
    sub = await recv_json(ws, "subscribed")
    assert sub["id"] == 9 and len(sub["groups"]) == 1
    group = sub["groups"][0]
    agent = Agent(ScriptedSource(batches[1:], interval=0.01), server=server.ws, session="live1")
    got = []
    runner = asyncio.create_task(agent.run())
    while sum(f.n for f in got) < 40:
        msg = await asyncio.wait_for(ws.recv(), 5)
        if isinstance(msg, bytes):
            got.append(frames.parse(msg))
    await runner
    await ws.close()
    assert {f.group for f in got} == {group["group"]}
    assert all(list(f.columns) == [ids["speed"], ids["rpm"]] for f in got)
    speed = np.concatenate([f.columns[ids["speed"]] for f in got])
    expected = np.concatenate([b.columns["speed"] for _, b in batches[1:]])
    np.testing.assert_array_equal(speed, expected)
    assert got[0].seq == 10


async def test_viewer_with_a_wrong_protocol_version_is_closed_with_4003(server):
    """A hello with an unsupported protocol version gets a status error and close code 4003."""
    ws, _, _ = await open_viewer(server.ws, "v")
    await ws.send(json.dumps({"op": "hello", "protocol": 99, "role": "viewer"}))
    status = await recv_json(ws, "status")
    assert status["code"] == "unsupported"
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4003


async def test_bad_viewer_messages_are_answered_not_fatal(server):
    """Garbage from a viewer gets a bad_message status and the connection stays usable."""
    ws, _, _ = await open_viewer(server.ws, "v")
    await ws.send("{not json")
    assert (await recv_json(ws, "status"))["code"] == "bad_message"
    await ws.send(json.dumps({"op": "subscribe", "id": 1}))
    assert (await recv_json(ws, "subscribed"))["id"] == 1
    await ws.close()


async def test_slow_viewer_does_not_delay_a_fast_one_and_is_disconnected():
    """A viewer that stops reading gets lagging, then close code 4001 after the lag limit,
    while a fast viewer on the same group receives every frame without delay."""
    async with running_server(lag_limit=1.0) as srv:
        n_batches, per = 400, 1000  # 400k frames, ~13 MB per viewer: more than TCP buffers hold
        items = [("car-1", car_batch(i * per, per)) for i in range(n_batches)]
        await Agent(ScriptedSource(items[:1]), server=srv.ws, session="slow").run()
        fast, _, _ = await open_viewer(srv.ws, "slow")
        # The slow viewer's client stops reading: its receive queue holds 1 message, then
        # TCP flow control stops the server's writes to it.
        slow, _, _ = await open_viewer(srv.ws, "slow", max_queue=1)
        for ws in (fast, slow):
            await ws.send(json.dumps({"op": "subscribe", "id": 1}))
        await recv_json(fast, "subscribed")
        agent = Agent(ScriptedSource(items[1:], interval=0.005), server=srv.ws, session="slow")
        runner = asyncio.create_task(agent.run())
        received, gaps = 0, []
        last = time.monotonic()
        while received < (n_batches - 1) * per:
            msg = await asyncio.wait_for(fast.recv(), 5)
            if isinstance(msg, bytes):
                now = time.monotonic()
                gaps.append(now - last)
                last = now
                received += frames.parse(msg).n
        await runner
        stats = srv.app.state.stats
        assert received == (n_batches - 1) * per
        assert max(gaps) < 0.5, f"fast viewer stalled for {max(gaps):.3f} s"
        # The slow viewer was skipped and then cut off.
        await asyncio.sleep(0.2)
        assert stats.dropped > 0
        assert stats.disconnected_slow == 1
        code = None
        try:
            while True:
                await asyncio.wait_for(slow.recv(), 5)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
        # 4001 when the close frame got through; None when the stuck connection was aborted.
        assert code in (4001, None)
        await fast.close()


class HeldSocket:
    """A WebSocket stand-in whose sends wait until ``release`` (to hold a writer back)."""

    def __init__(self) -> None:
        self.sent: list[object] = []
        self.gate = asyncio.Event()

    async def send_bytes(self, data: bytes) -> None:
        await self.gate.wait()
        self.sent.append(data)

    async def send_text(self, text: str) -> None:
        await self.gate.wait()
        self.sent.append(json.loads(text))

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.sent.append(("close", code))


async def test_live_viewer_status_lagging_then_recovered():
    """A viewer whose writes are held back skips to the newest data per slot, is told
    ``lagging``, and ``recovered`` once it has caught up."""
    from pitwire.server.live import WsViewer
    from pitwire.server.stats import ServerStats

    sock = HeldSocket()
    viewer = WsViewer(sock, ServerStats(), lag_limit=60)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    viewer.offer((1, 1), Payload(b"a"), 0)
    await asyncio.sleep(0.01)  # the writer takes "a" and waits at the gate
    viewer.offer((1, 1), Payload(b"b"), 0)
    viewer.offer((1, 1), Payload(b"c"), 0)  # replaces "b": newest wins
    sock.gate.set()
    await asyncio.sleep(0.05)
    viewer.task.cancel()
    codes = [m["code"] for m in sock.sent if isinstance(m, dict)]
    data = [m for m in sock.sent if isinstance(m, bytes)]
    assert data == [b"a", b"c"]
    assert codes == ["lagging", "recovered"]
    assert viewer.dropped == 1


async def test_live_viewer_lagging_past_the_limit_is_closed_4001():
    """A viewer that keeps lagging past the limit is closed with code 4001."""
    from pitwire.server.live import WsViewer
    from pitwire.server.stats import ServerStats

    sock = HeldSocket()
    viewer = WsViewer(sock, ServerStats(), lag_limit=0.05)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    viewer.offer((1, 1), Payload(b"a"), 0)
    await asyncio.sleep(0.01)
    viewer.offer((1, 1), Payload(b"b"), 0)
    viewer.offer((1, 1), Payload(b"c"), 0)
    await asyncio.sleep(0.1)
    viewer.offer((1, 1), Payload(b"d"), 0)
    await asyncio.sleep(0.05)
    assert viewer.closing
    assert ("close", 4001) in sock.sent


async def test_json_feed_viewer_gets_no_status_messages():
    """A compatibility JSON viewer that lags gets no protocol status messages (its feed
    carries only {"sessionID", "lap", "data"})."""
    from pitwire.server.live import WsViewer
    from pitwire.server.stats import ServerStats

    sock = HeldSocket()
    viewer = WsViewer(sock, ServerStats(), lag_limit=60, statuses=False)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    viewer.offer((-1, 1), Payload('{"a": 1}'), 0)
    await asyncio.sleep(0.01)
    viewer.offer((-1, 1), Payload('{"a": 2}'), 0)
    viewer.offer((-1, 1), Payload('{"a": 3}'), 0)
    sock.gate.set()
    await asyncio.sleep(0.05)
    viewer.task.cancel()
    assert sock.sent == [{"a": 1}, {"a": 3}]
    assert viewer.dropped == 1


async def test_a_lagging_viewer_whose_close_cannot_go_out_is_aborted():
    """When even the close frame cannot be written (the peer reads nothing), the connection
    is dropped after a second rather than left hanging until the peer reads again."""
    from pitwire.server.live import WsViewer
    from pitwire.server.stats import ServerStats

    class Aborter:
        aborted = False

        def abort(self) -> None:
            self.aborted = True

    sock = HeldSocket()

    async def stuck_close(code: int = 1000, reason: str = "") -> None:
        await sock.gate.wait()  # the gate stays shut: not even the close frame goes out

    sock.close = stuck_close  # type: ignore[method-assign]
    viewer = WsViewer(sock, ServerStats(), lag_limit=60)  # type: ignore[arg-type]
    viewer._direct = Aborter()  # type: ignore[assignment]
    viewer.kill(4001, "test")
    await asyncio.sleep(0.5)
    assert not viewer._direct.aborted  # type: ignore[union-attr]
    await asyncio.sleep(0.8)
    assert viewer._direct.aborted  # type: ignore[union-attr]
