"""Fault tests of no-loss delivery, end to end, with real processes and real databases.

A ``pitwire agent`` process streams simulated cars to a ``pitwire serve`` process; each test
breaks one link while the session runs — the server killed, the database gone, the agent's
connection cut, the agent killed — and then reads the store: every frame the agent sent is
stored exactly once (seqs contiguous from 0, frame counts equal), and what was never sent is
reported as a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import numpy as np
import pytest
from websockets.asyncio.client import connect

from pitwire.analysis.completeness import ChunkSpan, completeness
from pitwire.model.ids import SessionId
from pitwire.store import open_store
from support import TcpProxy, free_tcp_port

CARS, RATE = 3, 50.0


def pitwire(*args: str) -> list[str]:
    return [sys.executable, "-m", "pitwire", *args]


class Server:
    """A ``pitwire serve`` process on a fixed port (so it can be restarted on it)."""

    def __init__(self, db: str, spool: Path, port: int | None = None) -> None:
        self.db, self.spool = db, spool
        self.port = port or free_tcp_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.log: list[str] = []

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *pitwire(
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--db",
                self.db,
                "--spool-dir",
                str(self.spool),
                "--log-level",
                "warning",
            ),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                self.log.append(line)
                if line.startswith("PITWIRE_URL="):
                    break
                if not line:
                    raise AssertionError("the server exited:\n" + "".join(self.log))
        asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        proc = self.proc
        assert proc is not None and proc.stdout is not None
        while line := await proc.stdout.readline():
            self.log.append(line.decode())

    async def ingested(self, frames: int) -> None:
        """Return once the server has taken ``frames`` frames since it started (so a fault
        hits a session that is really flowing, however slowly the agent started)."""
        async with asyncio.timeout(30), httpx.AsyncClient() as http:
            while True:
                stats = (await http.get(f"http://127.0.0.1:{self.port}/api/stats")).json()
                if stats["ingest_frames"] >= frames:
                    return
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: no flush, no goodbye."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> None:
        """SIGTERM and wait (the server writes what it buffers)."""
        if self.proc is not None and self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await self.proc.wait()


class Agent:
    """A ``pitwire agent --source sim`` process."""

    def __init__(self, server: str, session: str, spool: Path, seconds: float) -> None:
        self.args = pitwire(
            "agent",
            "--source",
            "sim",
            "--cars",
            str(CARS),
            "--rate",
            str(RATE),
            "--duration",
            str(seconds),
            "--server",
            server,
            "--session",
            session,
            "--spool-dir",
            str(spool),
            "--log-level",
            "warning",
        )
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "400"},
        )

    async def finish(self) -> tuple[int, str]:
        """Exit code and output once the agent ends by itself (within a minute)."""
        assert self.proc is not None
        async with asyncio.timeout(60):
            out, _ = await self.proc.communicate()
        return self.proc.returncode or 0, " ".join(out.decode().split())

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.communicate()


def sent(output: str) -> int:
    """Frames the agent says it sent (its closing report)."""
    match = re.search(r"sent (\d+)", output)
    assert match, output
    return int(match.group(1))


async def index_of(db: str, session: str) -> dict[str, list[ChunkSpan]]:
    async with open_store(db) as store:  # type: ignore[attr-defined]
        index: dict[str, list[ChunkSpan]] = await store.chunk_index(SessionId(session))
    return index


async def assert_exactly_once(db: str, session: str, frames: int) -> dict[str, list[ChunkSpan]]:
    """Every car's seqs are stored once, contiguous from 0, all cars together hold
    ``frames``, and each car's frames are the simulator's, in order, none twice or missing
    (its ticks are exactly 1/RATE apart). Returns the chunk index."""
    index = await index_of(db, session)
    assert len(index) == CARS, sorted(index)
    for stream, spans in index.items():
        cursor = 0
        for span in spans:
            assert span.first_seq == cursor, f"{stream}: seq gap or overlap at {cursor}"
            cursor = span.last_seq + 1
    assert sum(s.n for spans in index.values() for s in spans) == frames
    async with open_store(db) as store:  # type: ignore[attr-defined]
        for stream in index:
            got = await store.read_frames(session_id=SessionId(session), stream_id=stream)
            assert set(np.diff(got.t_ns).tolist()) == {round(1e9 / RATE)}, stream
    return index


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL of each persistent kind: an SQLite file, a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faults.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.mark.timeout(120)
async def test_server_killed_mid_session_loses_nothing(db_url, tmp_path):
    """SIGKILL the server while cars stream, start it again: stored == sent, once each."""
    url = db_url
    server = Server(url, tmp_path / "server-spool")
    await server.start()
    agent = Agent(server.ws, "killed-server", tmp_path / "agent-spool", seconds=7)
    await agent.start()
    try:
        await server.ingested(int(CARS * RATE))
        await server.kill()
        await asyncio.sleep(1.5)
        await server.start()
        code, out = await agent.finish()
    finally:
        await server.stop()
    assert code == 0, out
    assert sent(out) == CARS * int(7 * RATE)
    await assert_exactly_once(url, "killed-server", sent(out))


@pytest.mark.timeout(120)
async def test_database_outage_keeps_viewers_live_and_loses_nothing(tmp_path, pg_url):
    """PostgreSQL refuses connections for a while mid-session: live viewers keep receiving
    frames throughout, and afterwards stored == sent, once each."""
    pg = urlsplit(pg_url)
    async with TcpProxy(pg.hostname or "127.0.0.1", pg.port or 5432) as proxy:
        url = pg._replace(netloc=f"{pg.username or ''}@127.0.0.1:{proxy.port}").geturl()
        server = Server(url, tmp_path / "server-spool")
        await server.start()
        agent = Agent(server.ws, "db-outage", tmp_path / "agent-spool", seconds=8)
        await agent.start()
        counts: list[int] = [0]
        try:
            await server.ingested(1)
            async with connect(f"{server.ws}/ws/db-outage", compression=None) as viewer:

                async def count() -> None:
                    async for _ in viewer:
                        counts[0] += 1

                counter = asyncio.create_task(count())
                await asyncio.sleep(1.0)
                await proxy.cut()
                before = counts[0]
                await asyncio.sleep(3.0)
                during = counts[0] - before
                async with httpx.AsyncClient() as http:
                    health = (await http.get(f"http://127.0.0.1:{server.port}/healthz")).json()
                await proxy.restore()
                code, out = await agent.finish()
                counter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await counter
        finally:
            await server.stop()
        assert health["status"] == "degraded", health  # the outage was real
        assert during >= 3 * RATE, f"viewer got {during} messages during the outage"
        assert code == 0, out
        await assert_exactly_once(pg_url, "db-outage", sent(out))


@pytest.mark.timeout(120)
async def test_cut_uplink_is_spooled_and_resent(tmp_path):
    """The agent's connection is cut for a while (the listener gone): the agent keeps
    sampling, spools, re-sends; stored == sent and the session has no gap."""
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    server = Server(url, tmp_path / "server-spool")
    await server.start()
    async with TcpProxy("127.0.0.1", server.port) as proxy:
        agent = Agent(f"ws://127.0.0.1:{proxy.port}", "cut-uplink", tmp_path / "spool", 7)
        await agent.start()
        try:
            await server.ingested(int(CARS * RATE))
            await proxy.cut()
            await asyncio.sleep(2.5)
            await proxy.restore()
            code, out = await agent.finish()
        finally:
            await server.stop()
    assert code == 0, out
    assert sent(out) == CARS * int(7 * RATE)
    index = await assert_exactly_once(url, "cut-uplink", sent(out))
    c = completeness(index)
    assert c.expected == c.received and all(not s.gaps for s in c.streams)


@pytest.mark.timeout(120)
async def test_killed_agent_keeps_what_was_acked_and_reports_the_gap(tmp_path):
    """SIGKILL the agent mid-session and start it again on the same spool: nothing it had
    numbered is lost or doubled, and the time it was dead is reported as a gap."""
    url = f"sqlite:///{tmp_path / 'faults.db'}"
    server = Server(url, tmp_path / "server-spool")
    await server.start()
    spool = tmp_path / "agent-spool"
    try:
        first = Agent(server.ws, "killed-agent", spool, seconds=60)
        await first.start()
        await server.ingested(int(2 * CARS * RATE))
        await first.kill()
        await asyncio.sleep(2.0)
        second = Agent(server.ws, "killed-agent", spool, seconds=3)
        await second.start()
        code, out = await second.finish()
    finally:
        await server.stop()
    assert code == 0, out
    index = await index_of(url, "killed-agent")
    assert len(index) == CARS
    for stream, spans in index.items():
        cursor = 0
        for span in spans:
            assert span.first_seq == cursor, f"{stream}: seq gap or overlap at {cursor}"
            cursor = span.last_seq + 1
    c = completeness(index)
    for s in c.streams:
        (gap,) = s.gaps
        assert gap.kind == "time"
        assert 1.5e9 < gap.t1_ns - gap.t0_ns < 10e9
        assert gap.missing >= 1.5 * RATE
        assert s.expected == s.received + gap.missing
