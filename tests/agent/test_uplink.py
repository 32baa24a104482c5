"""Tests of the agent's uplinks (pitwire.agent.uplink): server URLs, the warnings of lost
frames and of a stream another agent sends, and passwords kept out of messages."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import time
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from pitwire.agent.run import Agent
from pitwire.agent.uplink import DropLog, TakenLog, WsUplink, check_server, ingest_url
from pitwire.protocol import SUBPROTOCOL, messages
from pitwire.protocol.messages import Advertise, Status
from pitwire.protocol.peer import CLOSE_STREAM_TAKEN, AgentPeer, FramesDropped
from pitwire.sources.sim import SimSource
from support import car_channels, free_tcp_port


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:8000",
        "wss://pit.example.com",
        "http://127.0.0.1:8000/prefix/",
        "HTTPS://pit.example.com:443",
        "127.0.0.1:8000",
        "[::1]:8000",
        "ws://bob:pw@127.0.0.1:8000/ws/ingest",
    ],
)
def test_check_server_accepts_usable_urls(url):
    """ws, wss, http and https URLs with a host, and host:port, are accepted."""
    check_server(url)


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("ftp://127.0.0.1:8611", "the scheme 'ftp' is not supported"),
        ("ws://127.0.0.1:99999", "the port must be a number from 1 to 65535"),
        ("ws://127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:http", "the port must be a number from 1 to 65535"),
        ("ws://:8000", "names no host"),
        ("ws://pit wall:8000", "names no host"),
        ("", "the server URL is empty"),
        ("pitwall", "has no port: give host:port (e.g. pitwall:8000)"),
        ("ftp://bob:S3cretPW@h:1", "'ftp://bob:***@h:1'"),
    ],
)
def test_check_server_says_what_is_wrong_without_the_password(url, needle):
    """A URL the agent cannot use raises ValueError naming the problem; a password in it is
    masked."""
    with pytest.raises(ValueError, match=re.escape(needle)) as info:
        check_server(url)
    assert "S3cretPW" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:8000", "ws://127.0.0.1:8000/ws/ingest"),
        ("http://h:1/", "ws://h:1/ws/ingest"),
        ("https://h/pit", "wss://h/pit/ws/ingest"),
        ("wss://h/ws/ingest", "wss://h/ws/ingest"),
        ("ws://h:1?password=x", "ws://h:1/ws/ingest?password=x"),
    ],
)
def test_ingest_url_adds_the_path_and_keeps_the_query(url, expected):
    """The ingest URL is the server's with /ws/ingest appended to its path (its query kept)
    and http(s) turned into ws(s)."""
    assert ingest_url(url) == expected


def dropped(stream: str, first: int, last: int) -> FramesDropped:
    return FramesDropped(stream, first, last, last - first + 1, "spool full (--spool-max)")


def test_drop_log_warns_at_once_then_sums_up_at_most_every_5_s_per_stream(caplog):
    """The first loss of a stream is logged at once; later ones at most every 5 s per stream,
    summed up; ``total`` logs everything lost, per stream."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    now = [0.0]
    drops = DropLog(clock=lambda: now[0])
    drops.add(dropped("car-1", 0, 3))
    drops.add(dropped("car-2", 0, 3))
    for t, first in ((1.0, 4), (4.9, 8), (5.0, 12)):
        now[0] = t
        drops.add(dropped("car-1", first, first + 3))
    drops.total("s1")
    assert [r.getMessage() for r in caplog.records] == [
        "dropped 4 frames (seq 0..3) of stream car-1: spool full (--spool-max); they will show "
        "as a gap",
        "dropped 4 frames (seq 0..3) of stream car-2: spool full (--spool-max); they will show "
        "as a gap",
        "dropped 12 frames (seq 4..15) of stream car-1: spool full (--spool-max); they will "
        "show as a gap",
        "session s1: 20 frames in all were dropped before the server acknowledged them (spool "
        "full (--spool-max)); they show as gaps: car-1 16 (seq 0..15), car-2 4 (seq 0..3)",
    ]


def test_drop_log_total_says_nothing_when_nothing_was_lost(caplog):
    """Without lost frames there is no total line."""
    DropLog().total("s1")
    assert caplog.records == []


def test_taken_log_warns_at_most_once_a_minute(caplog):
    """Refusals for a stream another agent sends warn once a minute (debug in between), and
    name the streams the server's message names."""
    caplog.set_level(logging.DEBUG, "pitwire.agent")
    now = [0.0]
    taken = TakenLog(clock=lambda: now[0])
    peer = AgentPeer(
        session="s1", streams=[(c, car_channels(), "", "") for c in ("car-1", "car-10")]
    )
    for t in (0.0, 30.0, 59.9, 60.0):
        now[0] = t
        taken.refused(peer, "stream 'car-1' is sent by another connection", 5.0)
    levels = [(r.levelno, r.getMessage()[:40]) for r in caplog.records]
    assert [lv for lv, _ in levels] == [
        logging.WARNING,
        logging.DEBUG,
        logging.DEBUG,
        logging.WARNING,
    ]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith(
            "stream car-1 of session s1 is being sent by another agent: two agents with the same "
            "--session? retrying, up to 5 s apart"
        )
    )
    assert taken.refusals == 4


@contextlib.asynccontextmanager
async def taken_server(connections: list[float]) -> AsyncIterator[str]:
    """A fake pitwire server on 127.0.0.1 port 0 that answers every advertise the way the
    server answers a stream another connection of the session sends: a ``stream_taken``
    error, then close code 4009. Notes when each connection came."""

    async def handler(ws: ServerConnection) -> None:
        connections.append(time.monotonic())
        with contextlib.suppress(ConnectionClosed):  # the agent may go first
            await answer(ws)

    async def answer(ws: ServerConnection) -> None:
        async for text in ws:
            if isinstance(text, str) and isinstance(messages.decode(text), Advertise):
                status = Status(
                    level="error",
                    code="stream_taken",
                    message="stream 'car-1' of session 'dup' is being sent by another connection",
                )
                await ws.send(messages.encode(status))
                await ws.close(CLOSE_STREAM_TAKEN, "stream taken")
                return

    async with serve(handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:  # type: ignore[list-item]
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


async def test_a_stream_another_agent_sends_is_retried_with_backoff_and_one_warning(
    tmp_path, caplog
):
    """A server refusing the agent's stream (stream_taken, close 4009) gets one clear warning
    (not one per attempt) and ever slower retries, while the frames stay in the spool."""
    caplog.set_level(logging.INFO, "pitwire.agent")
    connections: list[float] = []
    async with taken_server(connections) as url:
        agent = Agent(
            SimSource(cars=1, seed=0, duration=0.5, realtime=False),
            server=url,
            session="dup",
            spool_dir=tmp_path,
        )
        running = asyncio.create_task(agent.run(drain_timeout=30))
        try:
            async with asyncio.timeout(15):
                while len(connections) < 4:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name == "pitwire.agent"
    ]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(
        "stream car-1 of session dup is being sent by another agent: two agents with the same "
        "--session? retrying"
    )
    gaps = [b - a for a, b in itertools.pairwise(connections)]
    assert gaps == sorted(gaps) and gaps[-1] > 2 * gaps[0], gaps  # backoff, not a busy loop
    report = agent.report()
    assert (report.frames_sent, report.unacked, report.dropped) == (30, 30, 0)
    assert list((tmp_path / "dup").glob("*.spool"))  # kept for the next attempt or run


async def test_retry_warnings_show_the_server_url_without_its_password(caplog):
    """The uplink's retry warnings name the server with its password masked."""
    caplog.set_level(logging.WARNING, "pitwire.agent")
    url = f"ws://bob:S3cretPW@127.0.0.1:{free_tcp_port()}"
    peer = AgentPeer(session="s1", streams=[("car-1", car_channels(), "", "")])
    uplink = WsUplink(url, peer)
    assert uplink.shown == url.replace("S3cretPW", "***") + "/ws/ingest"
    running = asyncio.create_task(uplink.run())
    try:
        async with asyncio.timeout(10):
            while not caplog.records:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert "uplink to ws://bob:***@127.0.0.1:" in caplog.text
    assert "S3cretPW" not in caplog.text
