"""GET /api/sessions/{id}/frames on a real server: every format against read_window, limits
and errors."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from loopsession import (
    T0,
    counting_loop_store,
    get,
    loop_store,
    read_bin,
    rest_order,
    same,
    window,
)
from pitwire.server import ranges
from support import running_server


async def test_frames_json_equals_read_window():
    """format=json gives each stream's times [s from the session's first frame] and channel
    values equal to read_window's, NaN as null, for a 60 s range."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        r = await get(srv.url, "/api/sessions/loop/frames?from=30&to=90")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert (body["session_id"], body["t0_ns"], body["from"], body["to"]) == ("loop", T0, 30, 90)
    expected = await window(store, 30, 90)
    assert [s["stream_id"] for s in body["streams"]] == list(expected)
    for s in body["streams"]:
        batch = expected[s["stream_id"]]
        assert batch.n == len(s["t"]) > 1000
        assert np.array_equal(np.round(np.array(s["t"]) * 1e9).astype(np.int64) + T0, batch.t_ns)
        assert list(s["channels"]) == [n for n in rest_order() if n in batch.columns]
        for name, values in s["channels"].items():
            assert same(values, batch.columns[name]), name
    assert None in body["streams"][0]["channels"]["speed"]


async def test_frames_selects_streams_and_channels_in_the_order_asked():
    """streams= and channels= select and order what is answered; a stream lacking a channel
    just lacks it in JSON."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        r = await get(
            srv.url, "/api/sessions/loop/frames?from=0&to=5&streams=car-3,car-1&channels=rpm,x"
        )
    body = r.json()
    assert [s["stream_id"] for s in body["streams"]] == ["car-3", "car-1"]
    assert list(body["streams"][0]["channels"]) == ["x"]
    assert list(body["streams"][1]["channels"]) == ["rpm", "x"]


async def test_frames_csv_round_trip():
    """format=csv streams a header stream_id,t,<channels> and one row per frame, empty cells
    for NaN and channels a stream lacks, as an attachment; values read back equal
    read_window's."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        r = await get(srv.url, "/api/sessions/loop/frames?from=0&to=60&format=csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == "attachment; filename=loop_0-60.csv"
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["stream_id", "t", *rest_order()]
    expected = await window(store, 0, 60)
    assert len(rows) - 1 == sum(b.n for b in expected.values())
    by_stream: dict[str, list[list[str]]] = {}
    for row in rows[1:]:
        by_stream.setdefault(row[0], []).append(row)
    assert list(by_stream) == list(expected)
    for stream, stream_rows in by_stream.items():
        batch = expected[stream]
        t = np.array([float(row[1]) for row in stream_rows])
        assert np.array_equal(np.round(t * 1e9).astype(np.int64) + T0, batch.t_ns)
        for i, name in enumerate(rest_order(), start=2):
            cells = [row[i] for row in stream_rows]
            if name not in batch.columns:
                assert set(cells) == {""}, (stream, name)
                continue
            assert same([float(v) if v else None for v in cells], batch.columns[name])
    assert "" in [row[2] for row in by_stream["car-1"]]  # a NaN speed


async def test_frames_bin_round_trip(monkeypatch):
    """format=bin is records of u32 LE length + one DATA frame per stream (split past
    BIN_MAX_FRAMES), group = index in X-Pitwire-Streams, channel id = index in the session's
    channel table (X-Pitwire-Channels); read back they equal read_window's frames."""
    monkeypatch.setattr(ranges, "BIN_MAX_FRAMES", 500)
    store = await loop_store()
    async with running_server(store=store) as srv:
        r = await get(srv.url, "/api/sessions/loop/frames?from=10&to=70&format=bin")
        detail = (await get(srv.url, "/api/sessions/loop")).json()
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    streams = r.headers["x-pitwire-streams"].split(",")
    table = r.headers["x-pitwire-channels"].split(",")
    assert table == [c["name"] for c in detail["channels"]]
    assert int(r.headers["x-pitwire-t0-ns"]) == T0
    records = read_bin(r.content)
    expected = await window(store, 10, 70)
    assert streams == list(expected)
    assert len(records) == sum(-(-b.n // 500) for b in expected.values())
    for group, stream in enumerate(streams):
        mine = [f for f in records if f.group == group]
        assert [f.seq for f in mine] == list(range(0, expected[stream].n, 500))
        t_ns = np.concatenate([f.t_ns() for f in mine])
        assert np.array_equal(t_ns, expected[stream].t_ns)
        columns = {
            table[cid]: np.concatenate([f.columns[cid] for f in mine]) for cid in mine[0].columns
        }
        assert list(columns) == list(expected[stream].columns)
        for name, values in columns.items():
            assert values.dtype == expected[stream].columns[name].dtype
            assert np.array_equal(values, expected[stream].columns[name], equal_nan=True)


async def test_frames_ranges_are_half_open_and_default_to_the_session_end():
    """from is included and to excluded, so adjacent ranges join without a repeated frame;
    without to the range runs to the session's last frame."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        parts = [
            (
                await get(
                    srv.url, f"/api/sessions/loop/frames?from={a}&to={a + 0.05}&streams=car-1"
                )
            ).json()["streams"][0]["t"]
            for a in (1.0, 1.05)
        ]
        tail = (await get(srv.url, "/api/sessions/loop/frames?from=200&channels=lap")).json()
    assert parts == [[1.0], [1.05]]  # frames at 1.00, 1.05 and 1.10 s: 1.10 is in neither
    ends = await window(store, 0, 1000)
    last = max(int(b.t_ns[-1]) for b in ends.values())
    assert tail["to"] == (last - T0 + 1) / 1e9
    assert max(s["t"][-1] for s in tail["streams"]) == (last - T0) / 1e9


async def test_frames_max_span(monkeypatch):
    """A range of MAX_SPAN_S is answered; a longer one is refused with 400 naming the limit;
    without to, the range stops MAX_SPAN_S after from."""
    monkeypatch.setattr(ranges, "MAX_SPAN_S", 60.0)
    store = await loop_store()
    async with running_server(store=store) as srv:
        ok = await get(srv.url, "/api/sessions/loop/frames?from=10&to=70&channels=lap")
        long = await get(srv.url, "/api/sessions/loop/frames?from=10&to=70.5")
        default = await get(srv.url, "/api/sessions/loop/frames?from=10&channels=lap")
    assert ok.status_code == 200
    assert long.status_code == 400
    assert long.json() == {
        "error": "the range 10-70.5 s spans 60.5 s; at most 60 s per request",
        "limit": 60.0,
    }
    assert default.json()["to"] == 70.0
    assert default.json()["streams"][0]["t"][-1] < 70.0


async def test_frames_refuses_more_values_than_the_limit(monkeypatch):
    """A range holding more than MAX_VALUES values (frames x channels) is refused with 400
    naming the count and the limit, also when only the read shows it."""
    store = await counting_loop_store()
    async with running_server(store=store) as srv:
        monkeypatch.setattr(ranges, "MAX_VALUES", 10_000)
        big = await get(srv.url, "/api/sessions/loop/frames?from=0&to=100")
        assert big.status_code == 400 and big.json()["limit"] == 10_000
        assert "values (frames x channels); at most 10,000 per request" in big.json()["error"]
        assert store.reads == 0  # refused from the chunk index, before reading
        # 1 s of 3 cars at 20 Hz x 7, 7, 6 channels: no chunk wholly inside, the read shows it.
        monkeypatch.setattr(ranges, "MAX_VALUES", 300)
        small = await get(srv.url, "/api/sessions/loop/frames?from=1&to=2")
        assert small.status_code == 400 and "holds 400 values" in small.json()["error"]
        assert (await get(srv.url, "/api/sessions/loop/frames?from=1&to=1.5")).status_code == 200


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("from=5&to=5", 400, "to (5) must be after from (5)"),
        ("from=5&to=2", 400, "to (2) must be after from (5)"),
        ("from=abc", 400, "query.from: Input should be a valid number"),
        ("from=1&to=later", 400, "query.to: Input should be a valid number"),
        ("from=nan", 400, "from must be a number of seconds >= 0, not nan"),
        ("from=-1", 400, "from must be a number of seconds >= 0, not -1.0"),
        ("to=inf", 400, "to must be a number of seconds, not inf"),
        ("from=1e308", 400, "from (1e+308 s) is beyond any session: at most 1e+09 s"),
        ("from=0&to=1e300", 400, "to (1e+300 s) is beyond any session"),
        ("streams=car-1,car-9", 400, "unknown stream 'car-9' in session 'loop'"),
        ("channels=speed,boost", 400, "unknown channel 'boost': none of the streams"),
        ("streams=car-3&channels=rpm", 400, "unknown channel 'rpm'"),
        ("format=xml", 400, "unknown format 'xml': use json, csv or bin"),
        ("from=0&to=601", 400, "spans 601 s; at most 600 s per request"),
    ],
)
async def test_frames_errors(query, status, error):
    """Each bad /frames request gets its status and a JSON error naming the problem."""
    store = await loop_store()
    async with running_server(store=store) as srv:
        r = await get(srv.url, f"/api/sessions/loop/frames?{query}")
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    assert error in r.json()["error"]


async def test_frames_of_an_unknown_session_is_404(server):
    """/frames of a session that does not exist answers 404 naming it."""
    r = await get(server.url, "/api/sessions/nope/frames?from=0&to=1")
    assert r.status_code == 404 and r.json() == {"error": "no session 'nope'"}


async def test_frames_past_the_session_end_are_empty_without_a_read():
    """A range after the last frame (even from=1e9, the largest accepted) answers every
    stream with no frames and its channels empty, without reading the store."""
    store = await counting_loop_store()
    async with running_server(store=store) as srv:
        for query in ("from=1e9", "from=5000&to=5010", "from=1e9&format=csv"):
            r = await get(srv.url, f"/api/sessions/loop/frames?{query}&streams=car-3")
            assert r.status_code == 200, query
        body = (await get(srv.url, "/api/sessions/loop/frames?from=5000&streams=car-3")).json()
        text = (await get(srv.url, "/api/sessions/loop/frames?from=5000&format=csv")).text
        binary = (await get(srv.url, "/api/sessions/loop/frames?from=5000&format=bin")).content
        assert store.reads == 0
    (stream,) = body["streams"]
    assert stream["t"] == [] and stream["channels"] == {n: [] for n in rest_order() if n != "rpm"}
    assert text == "stream_id,t," + ",".join(rest_order()) + "\n"
    assert binary == b""
