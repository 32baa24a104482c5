"""Live path: agent send → viewer receive latency, server-added latency and server RSS,
with 20 simulated cars at 60 Hz and 10 binary viewers (all processes on this machine)."""

from __future__ import annotations

import asyncio
import json
import statistics
import struct
import time

import httpx
from common import agent_process, emit, percentiles, server_process
from websockets.asyncio.client import connect

CARS, RATE, VIEWERS, SECONDS, RUNS = 20, 60.0, 10, 12.0, 3
HEADER = struct.Struct("<BBHIQqII")


async def viewer(url: str, session: str, lat: list[float], stop: asyncio.Event) -> None:
    async with connect(f"{url}/ws/{session}?format=bin", compression=None, max_queue=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "id": 1}))
        while not stop.is_set():
            msg = await ws.recv()
            now = time.time_ns()
            if isinstance(msg, bytes):
                _, _, ncols, _, _, t0, n, _ = HEADER.unpack_from(msg)
                if n:
                    off = 32 + ((ncols * 4 + 7) & ~7) + 8 * (n - 1)
                    last = t0 + int(struct.unpack_from("<d", msg, off)[0] * 1e9)
                    lat.append((now - last) / 1e6)


async def one_run() -> dict[str, float]:
    session = f"bench-live-{time.time_ns()}"
    with server_process() as url:
        ws_url = "ws" + url[4:]
        agent = agent_process(url, session, CARS, RATE, SECONDS + 6)
        async with httpx.AsyncClient(base_url=url) as http:
            for _ in range(100):  # wait for the session to exist
                if any(
                    s["session_id"] == session for s in (await http.get("/api/sessions")).json()
                ):
                    break
                await asyncio.sleep(0.1)
            lat: list[float] = []
            stop = asyncio.Event()
            tasks = [
                asyncio.create_task(viewer(ws_url, session, lat, stop)) for _ in range(VIEWERS)
            ]
            await asyncio.sleep(2)  # warm up
            lat.clear()
            await http.post("/api/stats/reset")
            await asyncio.sleep(SECONDS)
            stats = (await http.get("/api/stats")).json()
            stop.set()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        agent.terminate()
        agent.wait(10)
    p50, p99 = percentiles(lat)
    srv = stats["server_latency"]
    return {
        "e2e_p50_ms": p50,
        "e2e_p99_ms": p99,
        "server_p50_ms": srv["p50_us"] / 1e3,
        "server_p99_ms": srv["p99_us"] / 1e3,
        "rss_mb": stats["rss_bytes"] / 2**20,
        "messages": len(lat),
        "dropped": stats["dropped"],
    }


def main() -> None:
    runs = [asyncio.run(one_run()) for _ in range(RUNS)]
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    setup = {"cars": CARS, "rate_hz": RATE, "viewers": VIEWERS, "seconds": SECONDS, "runs": RUNS}
    emit("live_e2e_latency_p50", med["e2e_p50_ms"], "ms", **setup)
    emit("live_e2e_latency_p99", med["e2e_p99_ms"], "ms", **setup)
    emit("server_added_latency_p50", med["server_p50_ms"], "ms", target="p99 <= 5 ms", **setup)
    emit("server_added_latency_p99", med["server_p99_ms"], "ms", target="<= 5", **setup)
    emit("server_rss", med["rss_mb"], "MiB", target="<= 100", **setup)
    emit("live_messages_received", med["messages"], "messages", dropped=med["dropped"], **setup)


if __name__ == "__main__":
    main()
