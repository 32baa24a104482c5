"""Fan-out: sends per second of one server process to many binary viewers.

One agent connection streams one car (single-frame messages, as the simulator sends) as
fast as the server takes it; 100 viewers subscribe to everything and drain their sockets
with raw reads (so the figure is the server's, not a Python client's parsing speed).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
from common import emit, raw_ws, server_process, ws_text_frame
from websockets.asyncio.client import connect

from pitwire.model.channels import STANDARD
from pitwire.protocol.peer import AgentPeer

VIEWERS, SECONDS, RUNS, MESSAGES = 100, 5.0, 3, 20_000


async def drain(reader: asyncio.StreamReader, count: list[int]) -> None:
    while chunk := await reader.read(1 << 16):
        count[0] += len(chunk)


async def one_run() -> dict[str, float]:
    import numpy as np

    from pitwire.model.frames import FrameBatch

    channels = STANDARD.select(["speed", "rpm", "gear", "throttle", "brake", "lap"])
    peer = AgentPeer(session="fanout", streams=[("car-1", channels, "", "")])
    with server_process() as url:
        ws_url = "ws" + url[4:]
        async with connect(
            f"{ws_url}/ws/ingest", subprotocols=["pitwire.v1"], compression=None
        ) as agent:  # type: ignore[list-item]
            peer.connection_made()
            for item in peer.outgoing():
                await agent.send(item)
            peer.receive_text(await agent.recv())  # serverInfo
            peer.receive_text(await agent.recv())  # resume ack
            readers = []
            count = [0]
            for _ in range(VIEWERS):
                r, w = await raw_ws(url, "/ws/fanout?format=bin")
                w.write(ws_text_frame(json.dumps({"op": "subscribe", "id": 1})))
                readers.append((asyncio.create_task(drain(r, count)), w))
            await asyncio.sleep(1)
            async with httpx.AsyncClient(base_url=url) as http:
                await http.post("/api/stats/reset")
                t_ns = time.time_ns()
                start = time.perf_counter()
                sent = 0
                while time.perf_counter() - start < SECONDS and sent < MESSAGES:
                    for _ in range(50):
                        batch = FrameBatch(
                            np.array([t_ns + sent], np.int64),
                            {n: np.array([1.0], np.float32) for n in channels},
                        )
                        peer.send_batch("car-1", batch)
                        sent += 1
                    for item in peer.outgoing():
                        await agent.send(item)
                    await asyncio.sleep(0)
                await asyncio.sleep(1.0)  # let the last sends go out
                stats = (await http.get("/api/stats")).json()
                elapsed = time.perf_counter() - start
            for task, w in readers:
                task.cancel()
                w.close()
    return {
        "sends_per_s": stats["sends"] / (elapsed - 1.0),
        "messages_in": sent,
        "dropped": stats["dropped"],
        "bytes_read": count[0],
    }


def main() -> None:
    runs = [asyncio.run(one_run()) for _ in range(RUNS)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    emit(
        "fanout_sends_per_s",
        med["sends_per_s"],
        "sends/s",
        target=">= 100000",
        viewers=VIEWERS,
        messages_in=med["messages_in"],
        dropped=med["dropped"],
        runs=RUNS,
    )


if __name__ == "__main__":
    main()
