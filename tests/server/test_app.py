"""The server app against a real uvicorn on 127.0.0.1 port 0: every endpoint and status code."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from pitwire.model.ids import SessionId, StreamId
from pitwire.server.ingest import DEFAULT_MAX_BODY

FRAME = {
    "packetId": 1,
    "gas": 0.5,
    "brake": 0.0,
    "fuel": 40.0,
    "gear": 3,
    "rpms": 7000,
    "steerAngle": -0.1,
    "speedKmh": 150.0,
}


def frames(n: int, start: int = 0) -> list[dict[str, float]]:
    return [{**FRAME, "packetId": start + i, "speedKmh": 100.0 + i} for i in range(n)]


async def post(url: str, body: object, **params: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=url) as client:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await client.post("/ingest", params=params, content=content)


async def stored_frames(server, session: str, stream: str = "car") -> int:  # type: ignore[no-untyped-def]
    await server.app.state.persistence.flush()
    try:
        batch = await server.store.read_frames(
            session_id=SessionId(session), stream_id=StreamId(stream)
        )
    except KeyError:
        return 0
    return batch.n


async def test_ingest_accepts_frames_and_stores_them(server):
    """A valid POST /ingest answers 200 with the seq range, and every frame is stored."""
    r = await post(server.url, frames(5), session_id="s1", lap=2)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 5,
        "session_id": "s1",
        "stream": "car",
        "first_seq": 0,
        "last_seq": 4,
    }
    r = await post(server.url, frames(3, 5), session_id="s1", lap=2)
    assert r.json()["first_seq"] == 5
    batch = await server.store.read_frames(session_id=SessionId("s1"), stream_id=StreamId("car"))
    await server.app.state.persistence.flush()
    batch = await server.store.read_frames(session_id=SessionId("s1"), stream_id=StreamId("car"))
    assert batch.n == 8
    assert batch.columns["speed"].tolist()[:3] == [100.0, 101.0, 102.0]
    assert set(batch.columns["lap"].tolist()) == {2.0}
    assert batch.columns["packet_id"].tolist() == [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("body", "params", "needle"),
    [
        (b"[{", {"session_id": "s"}, "malformed JSON"),
        (b'[{"packetId": 1, "gas": NaN}]', {"session_id": "s"}, "NaN"),
        (b"{}", {"session_id": "s"}, "Expected `array`"),
        ([], {"session_id": "s"}, "non-empty"),
        ([{**FRAME, "gas": "full"}], {"session_id": "s"}, "$[0].gas"),
        ([{k: v for k, v in FRAME.items() if k != "rpms"}], {"session_id": "s"}, "rpms"),
        ([{**FRAME, "gas": 1.5}], {"session_id": "s"}, "$[0].gas"),
        ([{**FRAME, "brake": -0.1}], {"session_id": "s"}, "$[0].brake"),
        ([{**FRAME, "speedKmh": float("inf")}], {"session_id": "s"}, "Infinity"),
        (json.dumps([FRAME]).replace("150.0", "1e999").encode(), {"session_id": "s"}, "speedKmh"),
        ([{**FRAME, "gear": 2.5}], {"session_id": "s"}, "$[0].gear"),
        ([FRAME], {}, "session_id"),
        ([FRAME], {"session_id": ""}, "session_id"),
        ([FRAME], {"session_id": "bad id!"}, "session_id"),
        ([FRAME], {"session_id": "s", "lap": "x"}, "lap"),
        ([FRAME], {"session_id": "s", "lap": -1}, "lap"),
    ],
)
async def test_ingest_rejects_bad_input_with_400(server, body, params, needle):
    """Malformed JSON, wrong types, missing fields, NaN/Inf, out-of-range values and a bad or
    missing session_id get 400 with a JSON body naming the problem; nothing is stored."""
    ok = await post(server.url, frames(2), session_id="s")
    assert ok.status_code == 200
    r = await post(server.url, body, **params)
    assert r.status_code == 400
    assert needle in r.json()["error"], r.json()
    assert await stored_frames(server, "s") == 2


async def test_ingest_rejects_a_body_over_the_limit_with_413(server):
    """A body over the documented limit gets 413 and nothing is stored."""
    big = json.dumps(frames(1)).encode() + b" " * DEFAULT_MAX_BODY
    r = await post(server.url, big, session_id="big")
    assert r.status_code == 413
    assert "limit" in r.json()["error"]
    assert await stored_frames(server, "big") == 0


async def test_ingest_other_methods_get_405(server):
    """GET, PUT and DELETE on /ingest answer 405."""
    async with httpx.AsyncClient(base_url=server.url) as client:
        for method in ("GET", "PUT", "DELETE"):
            r = await client.request(method, "/ingest", params={"session_id": "s"})
            assert r.status_code == 405, method


async def test_sessions_rest(server):
    """GET /api/sessions lists sessions and /api/sessions/{id} details channels, streams,
    laps, time range and frame counts; unknown ids get 404."""
    await post(server.url, frames(4), session_id="rest", lap=0)
    await post(server.url, frames(3, 4), session_id="rest", lap=1)
    await server.app.state.persistence.flush()
    async with httpx.AsyncClient(base_url=server.url) as client:
        listing = (await client.get("/api/sessions")).json()
        assert [s["session_id"] for s in listing] == ["rest"]
        assert listing[0]["frames"] == 7
        detail = (await client.get("/api/sessions/rest")).json()
        assert {c["name"] for c in detail["channels"]} >= {"speed", "rpm", "gear", "lap"}
        assert detail["streams"][0]["stream_id"] == "car"
        assert detail["streams"][0]["frames"] == 7
        assert detail["laps"][0]["lap"] == 0 and detail["laps"][0]["frames"] == 4
        assert detail["time_range"]["t1_ns"] >= detail["time_range"]["t0_ns"] > 0
        missing = await client.get("/api/sessions/nope")
        assert missing.status_code == 404 and "nope" in missing.json()["error"]
        health = await client.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        assert (await client.get("/docs")).status_code == 200
        assert "/ingest" in (await client.get("/openapi.json")).json()["paths"]


async def test_compat_ws_broadcasts_the_original_json_shape(server):
    """Without the binary subprotocol, /ws/{session} sends {"sessionID", "lap", "data"} with
    frames exactly as /ingest takes them."""
    async with connect(f"{server.ws}/ws/compat", compression=None) as ws:
        await asyncio.sleep(0.05)
        sent = frames(3, 10)
        await post(server.url, sent, session_id="compat", lap=4)
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
    assert set(msg) == {"sessionID", "lap", "data"}
    assert msg["sessionID"] == "compat" and msg["lap"] == 4
    assert msg["data"] == sent


async def test_serve_on_a_port_in_use_raises_oserror(server):
    """Binding a port that is taken raises OSError (the CLI turns it into a clear message)."""
    from pitwire.server.app import create_app, serve
    from pitwire.store.memory import MemoryStore

    port = int(server.url.rsplit(":", 1)[1])
    with pytest.raises(OSError, match="in use"):
        await serve(create_app(MemoryStore()), "127.0.0.1", port)
