"""REST figures on the stored 300k-frame, 20-car session of bench/store.py, served by a real
``pitwire serve`` on SQLite:

- ``GET /api/sessions/{id}``: the first request (reads a lap's frames for the track outline),
  later ones (outline cached), and a revalidation answered 304; p50 of 20 (the first: one).
- ``GET /api/sessions/{id}/frames``: 60 s of every car and channel in each format, p50 of 5,
  and the size of the answer.

``python bench/rest.py``
"""

from __future__ import annotations

import asyncio
import tempfile
import time

import httpx
from common import emit, machine, percentiles, server_process
from replay import make_db

from store import SESSION


async def timed(client: httpx.AsyncClient, path: str, **kw: object) -> tuple[float, httpx.Response]:
    start = time.perf_counter()
    r = await client.get(path, **kw)  # type: ignore[arg-type]
    return (time.perf_counter() - start) * 1e3, r


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = f"{tmp}/rest.db"
        await make_db(db)
        with server_process(db=f"sqlite:///{db}") as url:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                path = f"/api/sessions/{SESSION}"
                first, r = await timed(client, path)
                etag = r.headers["etag"]
                cached = [(await timed(client, path))[0] for _ in range(20)]
                revalidated = [
                    (await timed(client, path, headers={"If-None-Match": etag}))[0]
                    for _ in range(20)
                ]
                ranges = {}
                for fmt in ("bin", "json", "csv"):
                    runs = [
                        await timed(
                            client, f"{path}/frames", params={"from": 60, "to": 120, "format": fmt}
                        )
                        for _ in range(5)
                    ]
                    ranges[fmt] = (percentiles([t for t, _ in runs])[0], len(runs[0][1].content))
    where = {"machine": machine(), "session": "300k frames, 20 cars, 27 channels, SQLite"}
    emit("session detail, first request", first, "ms", **where)
    emit("session detail, outline cached, p50", percentiles(cached)[0], "ms", **where)
    emit("session detail, 304, p50", percentiles(revalidated)[0], "ms", **where)
    for fmt, (ms, size) in ranges.items():
        emit(f"frames 60 s x 20 cars, {fmt}, p50", ms, "ms", bytes=size, **where)


if __name__ == "__main__":
    asyncio.run(main())
