"""The F1 replay feed (pitwire.server.f1feed): sampling, and real clients on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

import f1shapes
from pitwire.server.f1feed import F1Feed, FeedData
from pitwire.sources import fastf1 as f1


@pytest.fixture(scope="module")
def data() -> FeedData:
    """The fake race ready to serve."""
    converted = f1.convert(f1shapes.FakeSession())
    return FeedData(converted.info, converted.streams)


def ver_frames(data: FeedData):  # type: ignore[no-untyped-def]
    return next(d for d in data.drivers if d.stream_id == "VER")


def test_sample_interpolates_continuous_and_holds_discrete(data: FeedData) -> None:
    """Between two frames speed is on the line between them; gear is the earlier frame's."""
    ver = ver_frames(data)
    i = 200
    t_a, t_b = int(ver.t_ns[i]), int(ver.t_ns[i + 1])
    mid = (t_a + t_b) // 2
    got = data.sample((mid - data.started_ns) / 1e9)["drivers"]["VER"]
    speed = ver.columns["speed"]
    w = (mid - t_a) / (t_b - t_a)
    assert got["speed"] == pytest.approx(speed[i] + (speed[i + 1] - speed[i]) * w, abs=0.01)
    assert got["gear"] == int(ver.columns["gear"][i])
    assert (got["number"], got["team"], got["colour"]) == ("1", "Red Bull Racing", "#3671c6")


def test_sample_shape_and_flags(data: FeedData) -> None:
    """A message has t, time (UTC ISO), leader lap, track status and every driver."""
    message = data.sample(f1shapes.START + 12)
    assert message["t"] == pytest.approx(f1shapes.START + 12)
    assert message["time"] == "2024-09-01T13:01:12.000Z"
    assert message["track_status"] == "2"  # the yellow flag
    assert message["lap"] == 1
    assert set(message["drivers"]) == {"VER", "LEC", "HAM"}
    keys = {"number", "name", "team", "colour", "lap", "speed", "rpm", "gear", "throttle"}
    assert keys | {"brake", "drs", "x", "y", "z"} <= set(message["drivers"]["HAM"])
    assert data.sample(f1shapes.START + 16)["track_status"] == "1"


def test_sample_gap_is_null(data: FeedData) -> None:
    """Inside LEC's hole in car data speed is null (NaN → null), not an invented value."""
    lo, hi = f1shapes.HOLE
    message = data.sample((lo + hi) / 2)
    assert message["drivers"]["LEC"]["speed"] is None
    assert message["drivers"]["LEC"]["x"] is not None
    json.dumps(message, allow_nan=False)  # valid JSON


async def count_messages(url: str, seconds: float) -> list[dict]:
    out: list[dict] = []
    async with connect(url) as ws:
        await ws.recv()  # the clock is running; count from the first message on
        t_end = time.monotonic() + seconds
        while time.monotonic() < t_end:
            out.append(json.loads(await asyncio.wait_for(ws.recv(), 1)))
    return out


def assert_rate(got: list[dict], hz: float, seconds: float) -> None:
    """Messages one tick (1/hz of session time at 1x) apart, as many as the time allows: the
    median spacing is exact; a loaded machine may skip a few ticks (never queue them)."""
    ts = [m["t"] for m in got]
    assert ts == sorted(ts)
    assert statistics.median(b - a for a, b in itertools.pairwise(ts)) == pytest.approx(
        1 / hz, abs=0.002
    )
    assert 0.75 * hz * seconds <= len(got) <= 1.1 * hz * seconds, len(got)
    assert ts[-1] - ts[0] == pytest.approx(seconds, abs=0.1)  # as if live


async def test_clients_get_json_at_the_set_rate(data: FeedData) -> None:
    """Two plain websockets clients on port 0 each get a message every 1/50 s of session
    time for two seconds, whose values match the converted data at their session time."""
    async with F1Feed(data, port=0, hz=50, start_s=f1shapes.START) as feed:
        assert feed.port != 0
        a, b = await asyncio.gather(count_messages(feed.url, 2.0), count_messages(feed.url, 2.0))
    for got in (a, b):
        assert_rate(got, 50, 2.0)
    for message in a[::10]:
        again = data.sample(message["t"])
        assert message["drivers"]["VER"]["speed"] == pytest.approx(
            again["drivers"]["VER"]["speed"], abs=0.5
        )


async def test_slow_client_does_not_delay_others(data: FeedData) -> None:
    """A client that never reads does not slow the ticks another client gets."""
    feed = F1Feed(data, port=0, hz=50, start_s=f1shapes.START)
    await feed.start()
    try:
        async with connect(feed.url, max_queue=1, close_timeout=0.1) as slow:
            slow.transport.pause_reading()  # type: ignore[attr-defined]
            got = await count_messages(feed.url, 2.0)
    finally:
        await feed.stop()
    assert_rate(got, 50, 2.0)


async def drain(ws) -> None:  # type: ignore[no-untyped-def]
    """Receive until the connection closes (ConnectionClosed)."""
    while True:
        await asyncio.wait_for(ws.recv(), 5)


async def test_shutdown_closes_clients_with_1001(data: FeedData) -> None:
    """stop() closes every connected client with 1001 (going away)."""
    feed = F1Feed(data, port=0, hz=20)
    await feed.start()
    async with connect(feed.url) as ws:
        await ws.recv()
        await feed.stop()
        with pytest.raises(ConnectionClosed):
            await drain(ws)
        assert ws.close_code == 1001


async def test_end_of_session_sends_end_and_closes_1000(data: FeedData) -> None:
    """After the last frame every client gets {"end": true} and a close with 1000, and so
    does a client connecting afterwards."""
    async with F1Feed(data, port=0, hz=50, speed=20, start_s=data.end_s - 0.5) as feed:
        async with connect(feed.url) as ws:
            messages = [json.loads(m) async for m in ws]
        assert messages[-1] == {"end": True}
        assert ws.close_code == 1000
        assert feed.ended.is_set()
        async with connect(feed.url) as late:
            assert [json.loads(m) async for m in late] == [{"end": True}]


def test_feed_data_needs_drivers() -> None:
    """A session without driver frames cannot be served."""
    converted = f1.convert(f1shapes.FakeSession())
    with pytest.raises(ValueError, match="no driver frames"):
        FeedData(converted.info, [s for s in converted.streams if s[0].stream_id == "track"])
    assert np.isfinite(FeedData(converted.info, converted.streams).end_s)
