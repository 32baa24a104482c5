"""The server app against a real uvicorn on 127.0.0.1 port 0: every endpoint and status code."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect

from pitwire.model.ids import SessionId, StreamId
from pitwire.protocol import SUBPROTOCOL
from pitwire.protocol import frames as wire
from pitwire.server.ingest import DEFAULT_MAX_BODY
from pitwire.store import open_store
from pitwire.store.base import StoreError, StoreUnavailable
from pitwire.store.memory import MemoryStore
from pitwire.store.sqlite import SqliteStore
from support import TcpProxy, car_batch, car_channels, free_tcp_port, running_server

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


@pytest.mark.parametrize(
    "path",
    [
        *("/", "/live", "/live/demo-1", "/sessions", "/sessions/a%20b"),
        *("/sessions/x/replay", "/compare"),
    ],
)
async def test_every_dashboard_url_answers_with_the_dashboard(tmp_path, path):
    """Deep links into the dashboard (its client routes) get index.html, so a reload or a
    shared link opens that view; API paths keep their own answers."""
    from fastapi import FastAPI

    from pitwire.server.app import _mount_dashboard

    (tmp_path / "index.html").write_text("<title>pitwire dashboard</title>")
    (tmp_path / "assets").mkdir()
    (tmp_path / "assets" / "app.js").write_text("ok")
    app = FastAPI()
    _mount_dashboard(app, tmp_path)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pitwire") as client:
        page = await client.get(path)
        assert page.status_code == 200 and "pitwire dashboard" in page.text
        assert (await client.head(path)).status_code == 200
        assert (await client.get("/assets/app.js")).text == "ok"
        assert (await client.get("/sessions/x/replay/more")).status_code == 404
        assert (await client.get("/elsewhere")).status_code == 404


async def test_a_mistyped_page_gets_the_dashboard_and_api_paths_keep_json_404(
    tmp_path, monkeypatch
):
    """A browser asking for a page that is no dashboard URL gets the dashboard (which says
    there is no such page) with status 404; API paths and non-browser clients get JSON."""
    from pitwire.server import app as server_app

    (tmp_path / "index.html").write_text("<title>pitwire dashboard</title>")
    monkeypatch.setattr(server_app, "dashboard_dir", lambda: tmp_path)
    page = {"accept": "text/html,application/xhtml+xml"}
    async with running_server() as srv, httpx.AsyncClient(base_url=srv.url) as client:
        wrong = await client.get("/foo/bar", headers=page)
        assert wrong.status_code == 404 and "pitwire dashboard" in wrong.text
        for path, headers in (("/foo/bar", {}), ("/api/nothing", page), ("/ws", page)):
            r = await client.get(path, headers=headers)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == "application/json", path
            assert "error" in r.json()


async def test_without_a_built_dashboard_every_dashboard_url_says_how_to_build_it():
    """No dist folder: each dashboard URL answers a page naming the command that builds it."""
    from fastapi import FastAPI

    from pitwire.server.app import DASHBOARD_ROUTES, _mount_dashboard

    app = FastAPI()
    _mount_dashboard(app, None)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://pitwire") as client:
        for path in ("/", "/sessions/x", "/compare"):
            page = await client.get(path)
            assert page.status_code == 200 and "make web" in page.text, path
    assert "/sessions/{session}/replay" in DASHBOARD_ROUTES


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


# --- the spool ----------------------------------------------------------------------------


def test_the_spool_sits_beside_an_sqlite_file_and_memory_has_none(tmp_path):
    """By default an SQLite store's spool is ``<db>.spool`` (locked against a second
    server), memory:// and Store objects have none, and spool_dir=None turns it off."""
    from pitwire.server.app import create_app
    from pitwire.server.spool import SpoolError
    from pitwire.store.memory import MemoryStore

    url = f"sqlite:///{tmp_path / 'pw.db'}"
    app = create_app(url)
    spool = app.state.persistence.spool
    assert spool is not None and spool.directory == tmp_path / "pw.db.spool"
    with pytest.raises(SpoolError, match="in use"):
        create_app(url)
    spool.close()
    assert create_app(url, spool_dir=None).state.persistence.spool is None
    assert create_app("memory://").state.persistence.spool is None
    assert create_app(MemoryStore()).state.persistence.spool is None
    other = create_app(MemoryStore(), spool_dir=tmp_path / "elsewhere", spool_max=10**6)
    assert other.state.persistence.spool.max_bytes == 10**6
    other.state.persistence.spool.close()


class WritesDownStore(MemoryStore):
    """A MemoryStore whose writes and stored_seqs raise StoreUnavailable while ``down``, and
    whose next ``fail_opens`` opens do too."""

    down = False
    fail_opens = 0

    async def open(self) -> None:
        if self.fail_opens:
            self.fail_opens -= 1
            raise StoreUnavailable("connection refused")
        await super().open()

    async def write_chunk(self, **kw):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().write_chunk(**kw)

    async def stored_seqs(self, **kw):  # type: ignore[no-untyped-def]
        if self.down:
            raise StoreUnavailable("connection refused")
        return await super().stored_seqs(**kw)


async def test_frames_spooled_when_a_server_stops_are_stored_by_the_next(tmp_path):
    """A server stopped while the store is down leaves acked frames in its spool, and the
    next server on that spool stores them once the store is back."""
    store = WritesDownStore()
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        assert (await post(srv.url, frames(10), session_id="stop")).status_code == 200
        await srv.app.state.persistence.flush()
        store.down = True
        assert (await post(srv.url, frames(10, 10), session_id="stop")).status_code == 200
    assert len(list(tmp_path.glob("*.spool"))) == 1
    store.down = False
    await store.open()  # the first server closed it
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        persistence = srv.app.state.persistence
        for _ in range(300):
            if not persistence.spooling:
                break
            await asyncio.sleep(0.01)
        batch = await store.read_frames(session_id=SessionId("stop"), stream_id=StreamId("car"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(20))
    assert list(tmp_path.glob("*.spool")) == []


async def test_a_server_restarted_while_its_store_is_down_serves_and_drains_later(tmp_path):
    """A server whose store cannot be opened at start still starts when its spool holds
    frames: a stream found in the spool is taken on, and once the store opens the spool is
    stored. With an empty spool it fails at once."""
    from pitwire.server.app import create_app

    store = WritesDownStore()
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        assert (await post(srv.url, frames(10), session_id="late")).status_code == 200
        await srv.app.state.persistence.flush()
        store.down = True
        assert (await post(srv.url, frames(10, 10), session_id="late")).status_code == 200
    store.down, store.fail_opens = False, 2
    async with running_server(store=store, spool_dir=tmp_path, chunk_age=0.05) as srv:
        persistence = srv.app.state.persistence
        assert not persistence.store_open and persistence.spooling
        r = await post(srv.url, frames(5, 20), session_id="late")
        assert r.status_code == 200 and r.json()["first_seq"] == 20
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert (await client.get("/api/sessions")).status_code == 503
        for _ in range(500):
            if persistence.store_open and not persistence.spooling:
                break
            await asyncio.sleep(0.01)
        await persistence.flush()
        batch = await store.read_frames(session_id=SessionId("late"), stream_id=StreamId("car"))
        assert batch.columns["packet_id"].astype(int).tolist() == list(range(25))
    store.fail_opens = 1
    app = create_app(store, spool_dir=tmp_path)
    with pytest.raises(StoreUnavailable):
        async with app.router.lifespan_context(app):
            pass
    assert store.fail_opens == 0


async def test_a_failed_start_leaves_no_spool_folder():
    """A server whose store cannot be opened (a bad --db), or whose port is taken, fails
    and removes the spool folder created for it: failed starts leave nothing behind."""
    from pitwire.server.app import create_app, serve
    from pitwire.server.spool import state_dir

    bad = f"postgresql://nobody@127.0.0.1:{free_tcp_port()}/none?connect_timeout=2"
    app = create_app(bad)
    folder = app.state.persistence.spool.directory
    assert folder.parent == state_dir() and folder.is_dir()
    with pytest.raises(StoreError):
        await serve(app, "127.0.0.1", 0)
    assert list(state_dir().iterdir()) == []
    async with running_server() as srv:
        app = create_app(bad)
        assert folder.is_dir()
        with pytest.raises(OSError, match="in use"):
            await serve(app, "127.0.0.1", int(srv.url.rsplit(":", 1)[1]))
    assert list(state_dir().iterdir()) == []


async def wait_drained(persistence) -> None:  # type: ignore[no-untyped-def]
    for _ in range(1000):
        if persistence.store_open and not persistence.spooling:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"the spool still holds {persistence.spooled_frames} frames")


async def test_frames_spooled_under_one_spelling_of_a_url_are_stored_under_another(pg_url):
    """A server on PostgreSQL (``?pool_size=5``) spools frames while the database is
    unreachable and stops; the next one, on another spelling of the same store
    (``postgres://``, ``?command_timeout=30``), finds them in the same spool folder and
    stores them."""
    pg = urlsplit(pg_url)
    async with TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
        via = pg._replace(netloc=f"{pg.username}@127.0.0.1:{proxy.port}")
        first_url = f"{via.geturl()}&pool_size=5"
        async with running_server(store=first_url, chunk_age=0.05) as srv:  # type: ignore[arg-type]
            assert (await post(srv.url, frames(10), session_id="spelt")).status_code == 200
            await srv.app.state.persistence.flush()
            await proxy.cut()
            assert (await post(srv.url, frames(10, 10), session_id="spelt")).status_code == 200
            await srv.app.state.persistence.flush()
            assert srv.app.state.persistence.spooled_frames == 10
            folder = srv.app.state.persistence.spool.directory
        await proxy.restore()
        second_url = f"{via._replace(scheme='postgres').geturl()}&command_timeout=30"
        async with running_server(store=second_url, chunk_age=0.05) as srv:  # type: ignore[arg-type]
            assert srv.app.state.persistence.spool.directory == folder
            await wait_drained(srv.app.state.persistence)
    async with open_store(pg_url) as store:
        batch = await store.read_frames(session_id=SessionId("spelt"), stream_id=StreamId("car"))
    assert batch.columns["packet_id"].astype(int).tolist() == list(range(20))


async def test_frames_in_a_spool_folder_named_by_an_older_pitwire_are_stored(pg_url):
    """Frames left in a spool folder an older pitwire named after the whole URL are taken
    over at start and stored; the old folder is removed."""
    from pitwire.model.records import SessionInfo, StreamInfo
    from pitwire.server.spool import Spool, state_dir

    pg = urlsplit(pg_url)
    schema = pg.query.removeprefix("schema=")
    recorded = f"postgres://{pg.netloc}{pg.path}?pool_size=5&schema={schema}"  # old keying
    old_folder = state_dir() / "postgres-0123456789ab"
    old = Spool(old_folder, store=recorded)
    old.open()
    old.declare(
        SessionInfo(session_id="legacy", track="t", source="x", started_ns=1),
        StreamInfo(stream_id="car-1", channels=list(car_channels().values())),
    )
    old.append([("legacy", "car-1", 0, car_batch(0, 20))])
    old.close()
    async with running_server(store=pg_url, chunk_age=0.05) as srv:  # type: ignore[arg-type]
        await wait_drained(srv.app.state.persistence)
    assert not old_folder.exists()
    async with open_store(pg_url) as store:
        batch = await store.read_frames(session_id=SessionId("legacy"), stream_id=StreamId("car-1"))
    assert batch.columns["packet_id"].astype(int).tolist() == list(range(20))


async def start_serve(*args: str, log: Path) -> tuple[asyncio.subprocess.Process, str]:
    """``pitwire serve --port 0 ARGS`` in a child process, and its URL."""
    with log.open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pitwire", "serve", "--port", "0", "--log-level", "warning",
            *args, stdout=asyncio.subprocess.PIPE, stderr=err, stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
    assert proc.stdout is not None
    try:
        while line := await asyncio.wait_for(proc.stdout.readline(), 30):
            if line.startswith(b"PITWIRE_URL="):
                return proc, line.decode().strip().removeprefix("PITWIRE_URL=").rstrip("/")
    except TimeoutError:
        pass
    proc.kill()
    await proc.wait()
    errors = await asyncio.to_thread(log.read_text)
    raise RuntimeError(f"pitwire serve did not start: {errors[-2000:]}")


async def agent_acks(ws, upto: int) -> None:  # type: ignore[no-untyped-def]
    """Read until the server acks ``upto``."""
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if msg["op"] == "ack" and msg["seq"] >= upto:
            return


def agent_data(seq: int, n: int) -> bytes:
    batch = car_batch(seq, n)
    names = list(car_channels())
    return wire.serialize(
        group=1,
        seq=seq,
        t_ns=batch.t_ns,
        columns=[(i, batch.columns[c]) for i, c in enumerate(names)],
    )


AGENT_ADVERTISE = json.dumps(
    {
        "op": "advertise",
        "session": "kill",
        "streams": [{"id": 1, "stream": "car-1", "channels": [0, 1, 2, 3, 4]}],
        "channels": [
            {"id": i, "name": name, "dtype": ch.dtype}
            for i, (name, ch) in enumerate(car_channels().items())
        ],
    }
)


async def test_a_sigkilled_server_loses_no_acked_frame_while_the_database_is_locked(tmp_path):
    """``pitwire serve`` on SQLite, with the database locked by another process (writes fail),
    acks frames from its spool; SIGKILLed and restarted after the lock is gone, it stores
    every acked frame once."""
    db = tmp_path / "pw.db"
    args = ("--db", f"sqlite:///{db}?timeout=0.2", "--spool-dir", str(tmp_path / "spool"))
    log = tmp_path / "serve.log"
    proc, url = await start_serve(*args, log=log)
    try:
        ws = await connect(f"ws{url[4:]}/ws/ingest", subprotocols=[SUBPROTOCOL], compression=None)
        await ws.send(AGENT_ADVERTISE)
        await agent_acks(ws, -1)
        await ws.send(agent_data(0, 10))
        await agent_acks(ws, 9)
        lock = sqlite3.connect(db)
        lock.execute("BEGIN EXCLUSIVE")  # every write of the server now fails after 0.2 s
        await ws.send(agent_data(10, 30))
        await agent_acks(ws, 39)
        await ws.close()
    finally:
        proc.kill()
        await proc.wait()
    lock.rollback()
    lock.close()
    assert list((tmp_path / "spool").glob("*.spool"))
    proc, url = await start_serve(*args, log=log)
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            for _ in range(300):
                r = await client.get("/api/sessions/kill")
                if r.status_code == 200 and r.json()["frames"] == 40:
                    break
                await asyncio.sleep(0.02)
    finally:
        proc.terminate()
        await proc.wait()
    async with SqliteStore(db) as store:
        batch = await store.read_frames(session_id=SessionId("kill"), stream_id=StreamId("car-1"))
    assert batch.columns["packet_id"].astype(int).tolist() == list(range(40))
    assert list((tmp_path / "spool").glob("*.spool")) == []
