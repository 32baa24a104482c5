"""Ingest: frames per second into one server process with the SQLite store.

Binary: one agent connection sends 60-frame batches of the simulator's channels as fast as
the server takes them. The agent encodes them all first; the clock runs from the first byte
sent to the ack of the last frame (durably stored): the server's rate. A second figure
counts the client's encoding too. Both into SQLite, and into PostgreSQL (a fresh schema,
dropped afterwards).
JSON: POST /ingest with 100-frame batches of the original shape, until the last 200.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import time
import uuid

import httpx
from common import emit, machine, server_process
from websockets.asyncio.client import connect

from pitwire.protocol.peer import AgentPeer
from pitwire.sources.sim import SIM_CHANNELS, SimField

PG = "postgresql://postgres@127.0.0.1:5432/test"
"""PostgreSQL for the second figure (``PITWIRE_BENCH_PG`` overrides)."""
RUNS, CARS, FRAMES_PER_BATCH, TICKS = 3, 20, 60, 12000  # 20 cars x 200 s at 60 Hz = 240k frames
ENCODING: list[float] = []
"""Each binary run's rate with the client's encoding counted too (the clock from before it)."""


def sim_batches() -> list[tuple[str, object]]:
    from pitwire.model.frames import FrameBatch

    field = SimField(CARS, 0, 60.0)
    per_car: dict[str, list[FrameBatch]] = {}
    for _ in range(TICKS):
        for stream, batch in field.step():
            per_car.setdefault(stream, []).append(batch)
    out = []
    for k in range(0, TICKS, FRAMES_PER_BATCH):
        for stream, batches in per_car.items():
            out.append((stream, FrameBatch.concat(batches[k : k + FRAMES_PER_BATCH])))
    return out


async def binary_run(batches: list[tuple[str, object]], db: str | None = None) -> float:
    streams = sorted({s for s, _ in batches})
    peer = AgentPeer(session="ingest", streams=[(s, SIM_CHANNELS, "", "") for s in streams])
    total = sum(b.n for _, b in batches)  # type: ignore[attr-defined]
    with server_process(db=db) as url:
        async with connect(
            f"ws{url[4:]}/ws/ingest",
            subprotocols=["pitwire.v1"],
            compression=None,  # type: ignore[list-item]
        ) as ws:
            peer.connection_made()
            for item in peer.outgoing():
                await ws.send(item)
            while len(peer.acked) < len(streams):
                peer.receive_text(await ws.recv())
            # The agent encodes every message first (its own work, on its own core in real
            # use); the clock runs from the first byte sent to the ack of the last frame.
            encode_start = time.perf_counter()
            for stream, batch in batches:
                peer.send_batch(stream, batch)  # type: ignore[arg-type]
            start = time.perf_counter()
            for item in peer.outgoing():
                await ws.send(item)
            while peer.unacked_frames:
                peer.receive_text(await ws.recv())
            end = time.perf_counter()
            ENCODING.append(total / (end - encode_start))
            return total / (end - start)


async def json_run() -> float:
    frame = {
        "packetId": 0,
        "gas": 0.5,
        "brake": 0.0,
        "fuel": 40.0,
        "gear": 3,
        "rpms": 7000,
        "steerAngle": 0.1,
        "speedKmh": 150.0,
    }
    bodies = [
        json.dumps([{**frame, "packetId": i * 100 + j} for j in range(100)]) for i in range(200)
    ]
    with server_process() as url:
        # As the agent's HTTP uplink does: no Nagle delay between a request's head and body.
        transport = httpx.AsyncHTTPTransport(
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
        )
        async with httpx.AsyncClient(base_url=url, timeout=30, transport=transport) as http:
            start = time.perf_counter()
            for body in bodies:
                r = await http.post(
                    "/ingest", params={"session_id": "json", "lap": 1}, content=body
                )
                r.raise_for_status()
            return 100 * len(bodies) / (time.perf_counter() - start)


async def pg_run(batches: list[tuple[str, object]], base: str) -> float:
    """One binary run into a fresh PostgreSQL schema (dropped afterwards)."""
    import asyncpg  # type: ignore[import-untyped]

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    try:
        return await binary_run(batches, f"{base}?schema={schema}")
    finally:
        conn = await asyncpg.connect(base)
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


def main() -> None:
    batches = sim_batches()
    common = {
        "target": ">= 100000",
        "channels": len(SIM_CHANNELS),
        "frames_per_message": FRAMES_PER_BATCH,
        "runs": RUNS,
        "until": "last frame acked as stored",
        "machine": machine(),
    }
    for store in ("sqlite", "postgres"):
        ENCODING.clear()
        if store == "sqlite":
            rates = [asyncio.run(binary_run(batches)) for _ in range(RUNS)]
        else:
            base = os.environ.get("PITWIRE_BENCH_PG", PG)
            rates = [asyncio.run(pg_run(batches, base)) for _ in range(RUNS)]
        emit(
            "ingest_binary_frames_per_s",
            statistics.median(rates),
            "frames/s",
            store=store,
            **common,
        )
        emit(
            "ingest_binary_frames_per_s_with_client_encoding",
            statistics.median(ENCODING),
            "frames/s",
            store=store,
            **{k: v for k, v in common.items() if k != "target"},
        )
    js = statistics.median(asyncio.run(json_run()) for _ in range(RUNS))
    emit(
        "ingest_json_frames_per_s",
        js,
        "frames/s",
        store="sqlite",
        frames_per_request=100,
        runs=RUNS,
        sequential_requests=True,
    )


if __name__ == "__main__":
    main()
