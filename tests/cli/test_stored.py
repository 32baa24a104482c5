"""Tests of ``pitwire inspect`` on stored sessions (pitwire.cli.stored): --db and --server."""

from __future__ import annotations

import asyncio
import json

import numpy as np
from typer.testing import CliRunner

from pitwire.cli import app
from pitwire.model.frames import FrameBatch
from pitwire.model.ids import SessionId, StreamId
from pitwire.model.records import SessionInfo, StreamInfo
from pitwire.store.base import Store
from pitwire.store.sqlite import SqliteStore
from support import car_channels, free_udp_port

runner = CliRunner()
DT, T0 = 10_000_000, 1_700_000_000_000_000_000


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


async def fill(store: Store) -> None:
    """Session ``gappy``: car-1 complete (100 frames), car-2 missing seqs 50-59."""
    cset = car_channels()
    await store.put_session(SessionInfo(session_id="gappy", track="spa", started_ns=T0))
    for car in ("car-1", "car-2"):
        await store.put_stream(
            SessionId("gappy"), StreamInfo(stream_id=car, channels=list(cset.values()))
        )
    for car, pieces in (("car-1", [(0, 100)]), ("car-2", [(0, 50), (60, 40)])):
        for first, n in pieces:
            seqs = np.arange(first, first + n)
            batch = FrameBatch(
                T0 + DT * seqs, {name: np.zeros(n, c.dtype) for name, c in cset.items()}
            )
            await store.write_chunk(
                session_id=SessionId("gappy"), stream_id=StreamId(car), first_seq=first, batch=batch
            )


def sqlite_db(tmp_path) -> str:  # type: ignore[no-untyped-def]
    async def make() -> None:
        async with SqliteStore(tmp_path / "p.db") as store:
            await fill(store)

    asyncio.run(make())
    return f"sqlite:///{tmp_path / 'p.db'}"


def test_inspect_db_shows_completeness_and_seq_gaps(tmp_path):
    """inspect SESSION --db prints each stream's completeness and names the missing seqs."""
    code, out = run("inspect", "gappy", "--db", sqlite_db(tmp_path))
    assert code == 0, out
    assert "complete 95.00% (190 of 200 frames)" in out
    assert "seqs 50-59 never arrived" in out and "10 frames missing" in out


def test_inspect_db_json_is_the_rest_shape(tmp_path):
    """inspect --json --db prints the same object as GET /api/sessions/{id}."""
    result = runner.invoke(app, ["inspect", "gappy", "--db", sqlite_db(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    d = json.loads(result.output)
    c = d["completeness"]
    assert (c["expected"], c["received"]) == (200, 190)
    assert [s["stream_id"] for s in c["streams"]] == ["car-1", "car-2"]
    assert c["streams"][1]["gaps"][0]["first_seq"] == 50


def test_inspect_server_reads_the_rest_api(live_server):
    """inspect SESSION --server asks a running server and prints its completeness."""
    srv, on_server_loop = live_server
    on_server_loop(fill(srv.store))
    code, out = run("inspect", "gappy", "--server", srv.url.removeprefix("http://"))
    assert code == 0, out
    assert "190 of 200 frames" in out and "seqs 50-59" in out


def test_inspect_unknown_session_or_unreachable_store_is_a_clear_error(tmp_path, live_server):
    """An unknown session exits 2 naming it; a server that is not there exits 1 with a hint;
    --db with --server is refused."""
    srv, _ = live_server
    db = sqlite_db(tmp_path)
    assert run("inspect", "nope", "--db", db)[0] == 2
    assert "no session 'nope'" in run("inspect", "nope", "--db", db)[1]
    code, out = run("inspect", "nope", "--server", srv.url)
    assert code == 2 and "no session 'nope'" in out
    code, out = run("inspect", "x", "--server", f"127.0.0.1:{free_udp_port()}")
    assert code == 1 and "is it running?" in out
    code, out = run("inspect", "x", "--db", db, "--server", srv.url)
    assert code == 2 and "not both" in out


def test_inspect_server_never_prints_the_password_of_its_url():
    """inspect --server with a password in the URL names the server with the password
    masked when it cannot reach it."""
    from support import free_tcp_port

    code, out = run("inspect", "t1", "--server", f"http://bob:S3cretPW@127.0.0.1:{free_tcp_port()}")
    assert code == 1 and "is it running?" in out
    assert "http://bob:***@127.0.0.1:" in out and "S3cretPW" not in out
