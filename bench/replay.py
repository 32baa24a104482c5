"""Replay figures on a stored 300k-frame, 20-car session (bench/store.py's: 20 cars x 250 s at
60 Hz) served by a real ``pitwire serve`` on SQLite; viewers are ``websockets`` clients.

- **first frame**: connect, ask for a replay of all 20 cars, until the first STATE frame
  arrives; the first connection to a fresh server (nothing of the session in memory) and
  p50/p99 of 30 later connections.
- **seek**: a seek to a random instant until the keyframe of its epoch arrives, p50/p99 of
  200 on one connection: right after the server started (``cold``: blocks read from the store
  as seeks need them, while the session is read ahead in the background) and once the session
  is in memory (``warm``).
- **CPU per viewer**: 20 viewers of 20 cars x 10 channels at 25 fps, 1x, for 10 s: the
  server's CPU time / wall time / viewers, after subtracting the idle server's.
- **bandwidth per viewer**: WebSocket payload bytes a viewer receives per second in that run.

``python bench/replay.py``
"""

from __future__ import annotations

import asyncio
import json
import random
import tempfile
import time
from typing import Any

import psutil
from common import emit, machine, percentiles, server_process
from websockets.asyncio.client import ClientConnection, connect

from pitwire.protocol import SUBPROTOCOL
from pitwire.store import open_store
from store import SESSION, fill, session_frames

VIEWERS, FPS, SECONDS, SEEKS, CONNECTS = 20, 25.0, 10.0, 200, 30
WANTED = ["speed", "rpm", "gear", "throttle", "brake", "steer", "x", "y", "lap", "lap_distance"]


async def make_db(path: str) -> None:
    field, frames = session_frames()
    store = open_store(f"sqlite:///{path}")
    async with store:
        await fill(store, field, frames)


async def open_viewer(url: str, **replay: Any) -> tuple[ClientConnection, dict[str, Any]]:
    ws = await connect(f"ws{url[4:]}/ws/{SESSION}", subprotocols=[SUBPROTOCOL], compression=None)
    await ws.recv()  # serverInfo
    advertise = json.loads(await ws.recv())
    await ws.send(json.dumps({"op": "replay", "id": 1, **replay}))
    return ws, advertise


async def first_binary(ws: ClientConnection, epoch: int | None = None) -> None:
    while True:
        msg = await ws.recv()
        if isinstance(msg, bytes) and (
            epoch is None or int.from_bytes(msg[4:8], "little") >= epoch
        ):
            return


async def connect_times(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        ws, _ = await open_viewer(url)
        await first_binary(ws)
        out.append((time.perf_counter() - start) * 1e3)
        await ws.close()
    return out


async def seek_times(url: str, n: int, rng: random.Random) -> list[float]:
    ws, _ = await open_viewer(url, paused=True)
    while (clock := json.loads(await ws.recv()))["op"] != "clock":
        pass
    await first_binary(ws)
    out = []
    for epoch in range(2, n + 2):
        t = int(rng.uniform(clock["start"], clock["end"]))
        start = time.perf_counter()
        await ws.send(json.dumps({"op": "control", "id": 1, "action": "seek", "t": t}))
        await first_binary(ws, epoch)
        out.append((time.perf_counter() - start) * 1e3)
    await ws.close()
    return out


def server_pid() -> psutil.Process:
    [proc] = [p for p in psutil.Process().children() if "serve" in " ".join(p.cmdline())]
    return proc


async def viewers_run(url: str) -> tuple[float, float]:
    """(server CPU % of a core per viewer, bytes per second per viewer)."""
    server = server_pid()
    ws0, advertise = await open_viewer(url, paused=True)
    ids = {c["name"]: c["id"] for c in advertise["channels"]}
    channels = [ids[n] for n in WANTED if n in ids][:10]
    if len(channels) < 10:
        channels += [c for c in ids.values() if c not in channels][: 10 - len(channels)]
    await ws0.close()
    idle0, w0 = server.cpu_times(), time.perf_counter()
    await asyncio.sleep(3)
    idle1, w1 = server.cpu_times(), time.perf_counter()
    idle = (idle1.user + idle1.system - idle0.user - idle0.system) / (w1 - w0)
    received = [0] * VIEWERS

    async def viewer(k: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
        ws, _ = await open_viewer(url, channels=channels, fps=FPS, t=None)
        await first_binary(ws)
        await ready.wait()
        while not stop.is_set():
            try:
                msg = await asyncio.wait_for(ws.recv(), 0.5)
            except TimeoutError:
                continue
            received[k] += len(msg) + (2 if len(msg) < 126 else 4)  # with the frame header
        await ws.close()

    ready, stop = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(viewer(k, ready, stop)) for k in range(VIEWERS)]
    await asyncio.sleep(2)  # every viewer open and playing
    ready.set()
    c0, t0 = server.cpu_times(), time.perf_counter()
    await asyncio.sleep(SECONDS)
    c1, t1 = server.cpu_times(), time.perf_counter()
    stop.set()
    await asyncio.gather(*tasks)
    busy = (c1.user + c1.system - c0.user - c0.system) / (t1 - t0)
    return (busy - idle) * 100 / VIEWERS, sum(received) / VIEWERS / (t1 - t0)


async def main() -> None:
    rng = random.Random(7)
    print(json.dumps({"seed": 7}))
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/replay.db"
        await make_db(db)
        with server_process(db=f"sqlite:///{db}") as url:
            cold_seeks = await seek_times(url, SEEKS, rng)
        with server_process(db=f"sqlite:///{db}") as url:
            [cold] = await connect_times(url, 1)
            await asyncio.sleep(3)  # the background read of the session finishes
            warm = await connect_times(url, CONNECTS)
            seeks = await seek_times(url, SEEKS, rng)
            cpu, rate = await viewers_run(url)
    where = {"machine": machine(), "session": "300k frames, 20 cars, SQLite"}
    emit("replay first frame, cold server", cold, "ms", **where)
    p50, p99 = percentiles(warm)
    emit("replay first frame p50", p50, "ms", **where)
    emit("replay first frame p99", p99, "ms", target="<= 100", **where)
    p50, p99 = percentiles(cold_seeks)
    emit("replay seek p50, cold", p50, "ms", **where)
    emit("replay seek p99, cold", p99, "ms", **where)
    p50, p99 = percentiles(seeks)
    emit("replay seek p50", p50, "ms", **where)
    emit("replay seek p99", p99, "ms", target="<= 20", **where)
    emit(
        "replay server CPU per viewer (20 cars x 10 channels, 25 fps)",
        cpu,
        "% of a core",
        target="<= 2",
        viewers=VIEWERS,
        **where,
    )
    emit(
        "replay bandwidth per viewer (20 cars x 10 channels, 25 fps)",
        rate * 8 / 1e6,
        "Mbps",
        target="<= 0.15",
        **where,
    )


if __name__ == "__main__":
    asyncio.run(main())
