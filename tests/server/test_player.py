"""The replay player driven directly, its viewer's socket stood in for: conflation, and
what review found (frames left by a replaced replay, store failures, slow reads)."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from pitwire.model.ids import SessionId
from pitwire.protocol.state import StateDecoder
from racesession import (
    SECOND,
    T0,
    GatedSocket,
    direct_setup,
    expected_packet,
    small_blocks,
    store_session,
)


async def test_a_slow_viewer_gets_conflated_state_and_no_queue():
    """A viewer whose socket takes nothing for a second holds one unwritten frame, not fifty;
    when it drains, the next frame carries every change, so its state is exact again."""
    import tracemalloc

    from pitwire.model.channels import ChannelSet
    from pitwire.protocol.messages import Replay
    from pitwire.server.hub import Hub
    from pitwire.server.live import WsViewer
    from pitwire.server.replay import Replays
    from pitwire.server.stats import ServerStats
    from pitwire.store.memory import MemoryStore

    store = MemoryStore()
    await store.open()
    await store_session(store)
    hub = Hub(asyncio.get_running_loop().call_later)
    for st in (await store.get_session(SessionId("race"))).streams:
        hub.add_stream("race", st.info.stream_id, ChannelSet(st.info.channels))
    replays = Replays(hub=hub, store=store)
    sock = GatedSocket()
    sock.gate.clear()  # the viewer reads nothing
    viewer = WsViewer(sock, ServerStats(), lag_limit=60)  # type: ignore[arg-type]
    viewer.task = asyncio.create_task(viewer.writer())
    hub.attach("race", viewer)
    player = await replays.open("race", viewer, Replay(id=1, fps=50))
    await asyncio.sleep(0.3)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    await asyncio.sleep(1.0)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert player.conflated >= 25  # 50 ticks a second, fewer on a loaded machine
    assert len(viewer._pending) == 1
    assert grown < 64 * 1024, f"{grown} bytes more after a second of a stuck viewer"
    sock.gate.set()
    await asyncio.sleep(0.2)
    replays.release(player)
    viewer.task.cancel()
    decoder = StateDecoder({})
    advertise = sock.log[0]
    assert isinstance(advertise, dict)
    resolution = {c["id"]: c["resolution"] for c in advertise["channels"]}
    names = {c["id"]: c["name"] for c in advertise["channels"]}
    groups: dict[int, list[str]] = {}
    last = None
    for item in sock.log:
        if isinstance(item, dict):
            msg = item
            if msg["op"] == "subscribed":
                for g in msg["groups"]:
                    groups[g["group"]] = [names[c] for c in g["channels"]]
                    decoder.add_group(g["group"], [resolution[c] for c in g["channels"]])
            continue
        last = decoder.apply(item)
    assert last is not None and not last.keyframe
    for gid, cols in groups.items():
        car = list(groups).index(gid)
        assert decoder.state[gid][cols.index("packet_id")] == expected_packet(last.t_ns, car)


async def test_a_new_replay_withdraws_the_frame_the_old_one_left_unwritten():
    """A replay replaced while its keyframe waits unwritten on a stalled socket leaves no
    frame behind: after the new replay's clock only its own frames arrive."""
    from pitwire.protocol.messages import Control, Replay

    _, _, replays, sock, viewer = await direct_setup()
    first = await replays.open("race", viewer, Replay(id=1, t=T0 + 5 * SECOND))
    await asyncio.sleep(0.1)
    sock.gate.clear()
    await asyncio.sleep(0.1)
    first.control(Control(id=1, action="seek", t=T0 + 30 * SECOND))
    await asyncio.sleep(0.05)
    assert viewer.pending((1, 0))
    replays.release(first)
    second = await replays.open("race", viewer, Replay(id=2, t=T0 + SECOND))
    await asyncio.sleep(0.05)
    sock.gate.set()
    await asyncio.sleep(0.3)
    at = next(
        k
        for k, m in enumerate(sock.log)
        if isinstance(m, dict) and m["op"] == "clock" and m["id"] == 2
    )
    epochs = [int.from_bytes(m[4:8], "little") for m in sock.log[at:] if isinstance(m, bytes)]
    assert epochs and set(epochs) == {1}
    replays.release(second)
    viewer.task.cancel()


async def test_a_store_failure_is_reported_and_the_replay_resumes(monkeypatch):
    """A store that fails while a seek reads gets the viewer a store_unavailable status,
    the player keeps running, and once the store is back a seek plays again."""
    from pitwire.protocol.messages import Control, Replay
    from pitwire.store.base import StoreError
    from pitwire.store.memory import MemoryStore

    small_blocks(monkeypatch)

    class Flaky(MemoryStore):
        fail = False

        async def read_window(self, **kw: Any) -> Any:
            if self.fail:
                raise StoreError("disk gone")
            return await super().read_window(**kw)

    store = Flaky()
    _, _, replays, sock, viewer = await direct_setup(store, cache_bytes=1)
    player = await replays.open("race", viewer, Replay(id=1))
    await asyncio.sleep(0.2)
    store.fail = True
    player.control(Control(id=1, action="seek", t=T0 + 50 * SECOND))
    await asyncio.sleep(0.3)
    assert not player.task.done()  # type: ignore[union-attr]
    store.fail = False
    player.control(Control(id=1, action="seek", t=T0 + 20 * SECOND))
    await asyncio.sleep(0.5)
    codes = [m["code"] for m in sock.log if isinstance(m, dict) and m["op"] == "status"]
    assert codes[:2] == ["store_unavailable", "store_available"]
    assert any(isinstance(m, bytes) and int.from_bytes(m[4:8], "little") == 3 for m in sock.log)
    replays.release(player)
    viewer.task.cancel()


async def test_a_keyframe_read_while_the_clock_runs_on_has_every_car(monkeypatch):
    """At 64x a slow read lets the clock run past the block it read: the keyframe is still
    the state of every car (at the instant read), never 'no value'."""
    from pitwire.protocol.messages import Replay
    from pitwire.store.memory import MemoryStore

    small_blocks(monkeypatch)

    class Slow(MemoryStore):
        async def read_window(self, **kw: Any) -> Any:
            await asyncio.sleep(0.1)  # 6.4 s of session at 64x
            return await super().read_window(**kw)

    _, hub, replays, sock, viewer = await direct_setup(Slow(), cache_bytes=1)
    player = await replays.open("race", viewer, Replay(id=1, speed=64, t=T0 + SECOND))
    await asyncio.sleep(0.5)
    live = hub.sessions["race"]
    resolution = {d.id: d.resolution for d in live.channel_descs}
    decoder = StateDecoder({t.gid: [resolution[c] for c in t.ids] for t in player.tracks})
    first = decoder.apply(next(m for m in sock.log if isinstance(m, bytes)))
    assert first is not None and first.keyframe
    for track in player.tracks:
        values = first.values[track.gid]
        assert not np.isnan(values).any(), track.stream
        car = int(track.stream.split("-")[1]) - 1
        assert values[track.names.index("packet_id")] == expected_packet(first.t_ns, car)
    replays.release(player)
    viewer.task.cancel()
